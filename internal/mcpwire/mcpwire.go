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

// PeekLimit is how much of a body is looked at.
const PeekLimit = 4096

// Call is what PeekRequest found.
type Call struct {
	Method string
	ID     string
	Tool   string
}

// PeekRequest reads up to PeekLimit bytes of an MCP POST body (only for
// JSON bodies of known, small size, so a streaming upload is never
// delayed), parses them, and puts them back in front of the rest of the
// body. It returns the zero Call when there is nothing to read.
func PeekRequest(r *http.Request) Call {
	if r.Method != http.MethodPost || r.Body == nil || r.ContentLength <= 0 || r.ContentLength > 1<<20 {
		return Call{}
	}
	if !strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "application/json") {
		return Call{}
	}
	n := min(r.ContentLength, PeekLimit)
	head := make([]byte, n)
	read, err := io.ReadFull(r.Body, head)
	head = head[:read]
	r.Body = &prefixed{Reader: io.MultiReader(bytes.NewReader(head), r.Body), closer: r.Body}
	if err != nil && err != io.ErrUnexpectedEOF {
		return Call{}
	}
	return Parse(head)
}

type prefixed struct {
	io.Reader
	closer io.Closer
}

func (p *prefixed) Close() error { return p.closer.Close() }

// Parse extracts method, id and tool name from a (possibly truncated)
// JSON-RPC message or the first message of a batch, reading keys as Decode
// does. Truncated input gives what could be read before the cut.
func Parse(head []byte) Call {
	head = bytes.TrimSpace(head)
	first := head
	if len(head) > 0 && head[0] == '[' {
		dec := json.NewDecoder(bytes.NewReader(head))
		var raw json.RawMessage
		if _, err := dec.Token(); err == nil && dec.Decode(&raw) == nil {
			first = raw
		} else {
			first = bytes.TrimSpace(head[1:])
		}
	}
	if m, err := Decode(first); err == nil {
		return CallOf(m)
	}
	c := parseTruncated(first)
	if c.Method != "tools/call" && c.Method != "prompts/get" {
		c.Tool = ""
	}
	return c
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

// parseTruncated walks top-level tokens of a cut-off object to find
// "method" and "id" when the full decode fails.
func parseTruncated(head []byte) Call {
	var c Call
	dec := json.NewDecoder(bytes.NewReader(head))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return c
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return c
		}
		key, _ := kt.(string)
		switch key {
		case "method":
			if v, err := dec.Token(); err == nil {
				c.Method, _ = v.(string)
			}
		case "id":
			v, err := dec.Token()
			if err != nil {
				return c
			}
			switch v := v.(type) {
			case string:
				c.ID = v
			case float64:
				c.ID = strconv.FormatFloat(v, 'f', -1, 64)
			}
		case "params":
			// The tool name usually comes before the (large) arguments.
			if t, err := dec.Token(); err != nil || t != json.Delim('{') {
				return c
			}
			for dec.More() {
				pk, err := dec.Token()
				if err != nil {
					return c
				}
				if pk == "name" {
					if v, err := dec.Token(); err == nil {
						c.Tool, _ = v.(string)
					}
					continue
				}
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return c
				}
			}
			if _, err := dec.Token(); err != nil {
				return c
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return c
			}
		}
	}
	return c
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
		Bytes: rec.Bytes, Duration: time.Since(start), RPCMethod: call.Method, RPCID: call.ID, Tool: call.Tool}
	if ev.Status == 0 {
		ev.Status = 499
	}
	return ev
}
