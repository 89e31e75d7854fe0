// Package mcpwire reads what pomdev shows about MCP traffic in flight: the
// JSON-RPC method, id and tool name at the head of a POST body, without
// consuming the body that is forwarded.
package mcpwire

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pomdev/pomdev/internal/event"
)

// WholeLimit is the largest body read whole (by Decode, the strict reader
// the tool policy uses): nearly every MCP message.
const WholeLimit = 64 << 10

// PeekLimit is how much of a larger body is looked at.
const PeekLimit = 4096

// Call is what PeekRequest found.
type Call struct {
	Method string
	ID     string
	Tool   string
	// Partial marks a call read from the head of a body larger than
	// WholeLimit: what comes after the head could name other values for
	// the apps that read it (a repeated key), so they are unverified.
	Partial bool
}

// PeekRequest reads an MCP POST body (only JSON bodies of known size, so
// a streaming upload is never delayed) and puts what it read back in front
// of the rest. A body of up to WholeLimit bytes is read whole and decoded
// strictly (Parse); of a larger one (up to 1 MiB), the first PeekLimit
// bytes are read by ParseHead. It returns the zero Call when there is
// nothing to read.
func PeekRequest(r *http.Request) Call {
	if r.Method != http.MethodPost || r.Body == nil || r.ContentLength <= 0 || r.ContentLength > 1<<20 {
		return Call{}
	}
	if !strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "application/json") {
		return Call{}
	}
	whole := r.ContentLength <= WholeLimit
	n := r.ContentLength
	if !whole {
		n = PeekLimit
	}
	head := make([]byte, n)
	read, err := io.ReadFull(r.Body, head)
	head = head[:read]
	r.Body = &prefixed{Reader: io.MultiReader(bytes.NewReader(head), r.Body), closer: r.Body}
	if err != nil {
		return Call{}
	}
	if whole {
		return Parse(head)
	}
	return ParseHead(head)
}

type prefixed struct {
	io.Reader
	closer io.Closer
}

func (p *prefixed) Close() error { return p.closer.Close() }

// Parse is the method, id and tool name of a whole JSON-RPC message or
// of the first message of a batch, decoded by Decode: nothing when it is
// not a message every app reads alike.
func Parse(body []byte) Call {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		dec := json.NewDecoder(bytes.NewReader(body))
		var raw json.RawMessage
		if _, err := dec.Token(); err != nil || dec.Decode(&raw) != nil {
			return Call{}
		}
		body = raw
	}
	m, err := Decode(body)
	if err != nil {
		return Call{}
	}
	return CallOf(m)
}

// ParseHead reads method, id and tool name from the head of a message cut
// off at some point (the first message of a batch), by Decode's rules as
// far as the head goes: a repeated key, a key that differs from a JSON-RPC
// or params key only by case, or a method that is not a string gives
// nothing. The Call is Partial: the cut-off rest is unseen.
func ParseHead(head []byte) Call {
	head = bytes.TrimSpace(head)
	if len(head) > 0 && head[0] == '[' {
		head = bytes.TrimSpace(head[1:])
	}
	c, ok := parseTruncated(head)
	if !ok {
		return Call{Partial: true}
	}
	if c.Method != "tools/call" && c.Method != "prompts/get" {
		c.Tool = ""
	}
	c.Partial = true
	return c
}

// keyCheck reports whether key may join the keys seen of an object
// whose known keys are known: not repeated, not a case variant of one.
func keyCheck(seen map[string]bool, key string, known []string) bool {
	if seen[key] {
		return false
	}
	seen[key] = true
	for _, k := range known {
		if key != k && strings.EqualFold(key, k) {
			return false
		}
	}
	return true
}

// CallOf is what pomdev shows of m: its method, id and, for tools/call
// and prompts/get, params.name.
func CallOf(m Message) Call {
	var c Call
	if m.Method != nil {
		c.Method = *m.Method
	}
	c.ID = rawID(m.ID)
	if c.Method == "tools/call" || c.Method == "prompts/get" {
		c.Tool, _ = StringKey(m.Params, "name")
	}
	return c
}

// StringKey is the string member key of the JSON object obj (exact key).
func StringKey(obj json.RawMessage, key string) (string, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil {
		return "", false
	}
	v, ok := m[key]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

func rawID(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// parseTruncated walks the top-level members of a cut-off object to find
// method, id and params.name, holding them to Decode's rules as far as it
// reads; ok is false when a rule is broken (the message is not one every
// app reads alike). The end of the head ends the walk with what was read.
func parseTruncated(head []byte) (c Call, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(head))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return c, true
	}
	seen := map[string]bool{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return c, true
		}
		key, _ := kt.(string)
		if !keyCheck(seen, key, wireKeys) {
			return Call{}, false
		}
		switch key {
		case "method":
			v, err := dec.Token()
			if err != nil {
				return c, true
			}
			m, isString := v.(string)
			if !isString {
				return Call{}, false
			}
			c.Method = m
		case "id":
			v, err := dec.Token()
			if err != nil {
				return c, true
			}
			switch v := v.(type) {
			case string:
				c.ID = v
			case float64:
				c.ID = strconv.FormatFloat(v, 'f', -1, 64)
			}
		case "params":
			// The tool name usually comes before the (large) arguments.
			t, err := dec.Token()
			if err != nil || t != json.Delim('{') {
				return c, true
			}
			pseen := map[string]bool{}
			for dec.More() {
				pk, err := dec.Token()
				if err != nil {
					return c, true
				}
				name, _ := pk.(string)
				if !keyCheck(pseen, name, paramKeys) {
					return Call{}, false
				}
				if name == "name" {
					v, err := dec.Token()
					if err != nil {
						return c, true
					}
					c.Tool, _ = v.(string)
					continue
				}
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return c, true
				}
			}
			if _, err := dec.Token(); err != nil {
				return c, true
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return c, true
			}
		}
	}
	return c, true
}

// Observe serves r with h in full-duplex mode (an MCP server may answer
// with SSE before it has read the whole body) and returns the request's
// event: method, path, status, size, duration and the JSON-RPC call. A
// request whose client left before any answer has status 499.
func Observe(w http.ResponseWriter, r *http.Request, h http.Handler) event.Request {
	_ = http.NewResponseController(w).EnableFullDuplex()
	call := PeekRequest(r)
	rec := &event.Recorder{ResponseWriter: w}
	start := time.Now()
	h.ServeHTTP(rec, r)
	ev := event.Request{Time: start, Method: r.Method, Path: r.URL.RequestURI(), Status: rec.Status,
		Bytes: rec.Bytes, Duration: time.Since(start), RPCMethod: call.Method, RPCID: call.ID, Tool: call.Tool,
		Partial: call.Partial && call.Method != ""}
	if ev.Status == 0 {
		ev.Status = 499
	}
	return ev
}
