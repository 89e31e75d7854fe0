package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// Limits of what the enforcement reads whole.
const (
	// MaxBody bounds a request body on a route with tool rules: it is read
	// whole before anything reaches the app.
	MaxBody = 8 << 20
	// MaxAnswer bounds a JSON answer to tools/list and one SSE event that
	// may carry one, which are read whole to be filtered.
	MaxAnswer = 16 << 20
)

// JSON-RPC error codes the enforcement answers with.
const (
	codeParse          = -32700
	codeInvalidRequest = -32600
	codeInvalidParams  = -32602 // a denied tool is, to the host, one that does not exist
	codeHeaderMismatch = -32020 // MCP 2026-07-28: headers and body disagree
)

// Decision is what Enforce did with a request, for the audit log.
type Decision struct {
	Denied string // the tool refused ("" when none)
	Rule   string // the rule that refused it, or why the request was refused
	Hidden int    // tools removed from tools/list answers
}

// message is the part of a JSON-RPC message the enforcement reads.
type message struct {
	ID     json.RawMessage
	Method *string
	Params json.RawMessage
}

// Enforce serves r with next under the tool rules ts: a tools/call of a
// denied tool never reaches next and is answered with a JSON-RPC error
// naming the rule; tools/list answers (JSON or SSE, on the POST that asked
// or a GET stream that replays one) lose the denied tools; a POST body that
// cannot be read as JSON-RPC is refused. ts must not be empty.
func Enforce(w http.ResponseWriter, r *http.Request, ts ToolSet, next http.Handler) Decision {
	var d Decision
	switch r.Method {
	case http.MethodPost:
	case http.MethodGet:
		// A GET stream carries server messages, and on resumption
		// (Last-Event-ID) the replayed answers of earlier POSTs: any
		// tools/list result on it is filtered.
		fw := newFilter(w, ts, nil, &d)
		r.Header.Del("Accept-Encoding")
		next.ServeHTTP(fw, r)
		fw.finish()
		return d
	default:
		next.ServeHTTP(w, r)
		return d
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		d.Rule = "the body is not application/json"
		refuse(w, http.StatusUnsupportedMediaType, nil, codeInvalidRequest, "this tunnel has a tool policy: the relay reads every request, and this one is not JSON (Content-Type "+strconv.Quote(r.Header.Get("Content-Type"))+")", "")
		return d
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		d.Rule = "the body could not be read"
		refuse(w, http.StatusBadRequest, nil, codeParse, "the request body could not be read: "+err.Error(), "")
		return d
	}
	if len(body) > MaxBody {
		d.Rule = "the body is too large"
		refuse(w, http.StatusRequestEntityTooLarge, nil, codeInvalidRequest, fmt.Sprintf("this tunnel has a tool policy: request bodies are limited to %d bytes", MaxBody), "")
		return d
	}
	msgs, batch, err := parseMessages(body)
	if err != nil {
		d.Rule = "the body is not JSON-RPC"
		refuse(w, http.StatusBadRequest, nil, codeParse, "this tunnel has a tool policy and the request is not JSON-RPC the relay can read: "+err.Error(), "")
		return d
	}
	if msg, bad := headersAgree(r.Header, msgs, batch); bad != "" {
		d.Rule = bad
		refuse(w, http.StatusBadRequest, msg.ID, codeHeaderMismatch, bad, "")
		return d
	}
	var lists map[string]bool
	type refusal struct {
		id         json.RawMessage
		tool, rule string
	}
	var denied []refusal
	for _, m := range msgs {
		if m.Method == nil {
			continue // a response (to a server request) or a malformed message
		}
		switch *m.Method {
		case "tools/call":
			name, ok := toolName(m.Params)
			if !ok {
				d.Rule = "tools/call without a tool name"
				refuse(w, http.StatusOK, m.ID, codeInvalidParams, "tools/call needs params.name, a string", "")
				return d
			}
			if allowed, rule := ts.Decide(name); !allowed {
				denied = append(denied, refusal{m.ID, name, rule})
			}
		case "tools/list":
			if lists == nil {
				lists = map[string]bool{}
			}
			lists[idKey(m.ID)] = true
		}
	}
	if len(denied) > 0 {
		d.Denied, d.Rule = denied[0].tool, denied[0].rule
		if !batch {
			answer(w, http.StatusOK, rpcError(denied[0].id, codeInvalidParams, deniedMsg(denied[0].tool, denied[0].rule), denied[0].rule))
			return d
		}
		// A batch with a denied call is refused whole: every request in
		// it gets an error, so none runs without the others.
		byID := map[string]refusal{}
		for _, x := range denied {
			byID[idKey(x.id)] = x
		}
		var out [][]byte
		for _, m := range msgs {
			if m.Method == nil || len(m.ID) == 0 {
				continue
			}
			if x, ok := byID[idKey(m.ID)]; ok {
				out = append(out, rpcError(m.ID, codeInvalidParams, deniedMsg(x.tool, x.rule), x.rule))
			} else {
				out = append(out, rpcError(m.ID, codeInvalidRequest, "not run: the batch also calls a tool this tunnel's policy denies ("+denied[0].tool+")", denied[0].rule))
			}
		}
		answer(w, http.StatusOK, append(append([]byte{'['}, bytes.Join(out, []byte{','})...), ']'))
		return d
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	if lists == nil {
		next.ServeHTTP(w, r)
		return d
	}
	r.Header.Del("Accept-Encoding")
	fw := newFilter(w, ts, lists, &d)
	next.ServeHTTP(fw, r)
	fw.finish()
	return d
}

func deniedMsg(tool, rule string) string {
	return fmt.Sprintf("tool %q is not available on this tunnel: the relay's policy refuses it (%s)", tool, rule)
}

// parseMessages reads a JSON-RPC message or batch.
func parseMessages(body []byte) ([]message, bool, error) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var raws []json.RawMessage
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, true, err
		}
		if len(raws) == 0 {
			return nil, true, errors.New("an empty batch")
		}
		msgs := make([]message, len(raws))
		for i, raw := range raws {
			if err := unmarshalMessage(raw, &msgs[i]); err != nil {
				return nil, true, fmt.Errorf("batch item %d: %w", i, err)
			}
		}
		return msgs, true, nil
	}
	var m message
	if err := unmarshalMessage(body, &m); err != nil {
		return nil, false, err
	}
	return []message{m}, false, nil
}

// unmarshalMessage reads the keys the enforcement needs. Keys are matched
// exactly, as the app's JSON parser matches them (encoding/json's struct
// decoding would also take "Method" or "NAME" for them), and of repeated
// keys the last wins, as in JavaScript's JSON.parse.
func unmarshalMessage(raw []byte, m *message) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return errors.New("a JSON-RPC message is an object")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return err
	}
	m.ID, m.Params = obj["id"], obj["params"]
	if v, ok := obj["method"]; ok {
		var method string
		if err := json.Unmarshal(v, &method); err != nil {
			return errors.New("method is not a string")
		}
		m.Method = &method
	}
	return nil
}

// toolName is params.name of a tools/call (exact key, as above).
func toolName(params json.RawMessage) (string, bool) {
	return stringKey(params, "name")
}

func stringKey(obj json.RawMessage, key string) (string, bool) {
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

// headersAgree checks the MCP 2026-07-28 routing headers against the
// body, which is what the relay decides on: a header that names another
// method or tool is refused rather than passed to an app that might route
// on it.
func headersAgree(h http.Header, msgs []message, batch bool) (message, string) {
	method, hasMethod := h["Mcp-Method"]
	name, hasName := h["Mcp-Name"]
	if !hasMethod && !hasName {
		return message{}, ""
	}
	if batch {
		return message{}, "Mcp-Method/Mcp-Name headers on a batch"
	}
	m := msgs[0]
	bodyMethod := ""
	if m.Method != nil {
		bodyMethod = *m.Method
	}
	if hasMethod && (len(method) != 1 || method[0] != bodyMethod) {
		return m, fmt.Sprintf("the Mcp-Method header (%s) does not match the body's method (%q)", strings.Join(method, ", "), bodyMethod)
	}
	if hasName && bodyMethod == "tools/call" {
		tool, _ := toolName(m.Params)
		if len(name) != 1 || name[0] != tool {
			return m, fmt.Sprintf("the Mcp-Name header (%s) does not match the tool the body calls (%q)", strings.Join(name, ", "), tool)
		}
	}
	return message{}, ""
}

// idKey is a JSON-RPC id as a map key (compact JSON).
func idKey(id json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, id) != nil {
		return string(id)
	}
	return b.String()
}

func rpcError(id json.RawMessage, code int, msg, rule string) []byte {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	e := map[string]any{"code": code, "message": msg}
	if rule != "" {
		e["data"] = map[string]string{"policy": rule}
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": e})
	return b
}

func refuse(w http.ResponseWriter, status int, id json.RawMessage, code int, msg, rule string) {
	answer(w, status, rpcError(id, code, msg, rule))
}

func answer(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// filter rewrites an answer so tools/list results lose denied tools. It
// decides at WriteHeader from the Content-Type: JSON is read whole and
// filtered; SSE is filtered event by event, each written and flushed as
// soon as its blank line arrives; anything else passes unchanged.
type filter struct {
	w     http.ResponseWriter
	ts    ToolSet
	lists map[string]bool // ids of tools/list requests; nil: any result with tools
	d     *Decision

	mode   int // 0 before WriteHeader, then modePass, modeJSON, modeSSE, modeBroken
	status int
	buf    bytes.Buffer // JSON: the whole answer; SSE: the partial line
	event  [][]byte     // SSE: the lines of the current event
	size   int          // SSE: bytes in the current event
}

const (
	modePass = iota + 1
	modeJSON
	modeSSE
	modeBroken
)

var errTooLarge = errors.New("policy: answer too large to filter")

func newFilter(w http.ResponseWriter, ts ToolSet, lists map[string]bool, d *Decision) *filter {
	return &filter{w: w, ts: ts, lists: lists, d: d}
}

func (f *filter) Header() http.Header { return f.w.Header() }

func (f *filter) Unwrap() http.ResponseWriter { return f.w }

func (f *filter) WriteHeader(status int) {
	if f.mode != 0 {
		return
	}
	if status >= 100 && status < 200 {
		f.w.WriteHeader(status)
		return
	}
	f.status = status
	h := f.w.Header()
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	enc := h.Get("Content-Encoding")
	switch {
	case mt != "application/json" && mt != "text/event-stream":
		f.mode = modePass
		f.w.WriteHeader(status)
	case enc != "" && enc != "identity":
		// Asked without Accept-Encoding, the app still compressed: what
		// cannot be read cannot be filtered.
		f.mode = modeBroken
		f.d.Rule = "the app's answer is compressed (" + enc + ") and cannot be filtered"
		h.Del("Content-Encoding")
		refuse(f.w, http.StatusBadGateway, nil, codeInvalidRequest, "this tunnel has a tool policy and its app answered tools/list compressed ("+enc+"): the relay cannot filter it", "")
	case mt == "application/json":
		f.mode = modeJSON
		if f.lists == nil {
			// A JSON answer on a GET carries no stream to filter.
			f.mode = modePass
			f.w.WriteHeader(status)
		}
	default:
		f.mode = modeSSE
		h.Del("Content-Length")
		f.w.WriteHeader(status)
	}
}

func (f *filter) Write(p []byte) (int, error) {
	if f.mode == 0 {
		f.WriteHeader(http.StatusOK)
	}
	switch f.mode {
	case modePass:
		return f.w.Write(p)
	case modeBroken:
		return len(p), nil
	case modeJSON:
		if f.buf.Len()+len(p) > MaxAnswer {
			f.mode = modeBroken
			f.d.Rule = "the tools/list answer is too large to filter"
			f.w.Header().Del("Content-Length")
			refuse(f.w, http.StatusBadGateway, nil, codeInvalidRequest, fmt.Sprintf("this tunnel has a tool policy and its app's tools/list answer is over %d bytes: the relay cannot filter it", MaxAnswer), "")
			return 0, errTooLarge
		}
		return f.buf.Write(p)
	}
	// SSE: split into lines; an event ends at a blank line.
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if f.size+f.buf.Len()+len(p) > MaxAnswer {
				return 0, f.tooLarge()
			}
			f.buf.Write(p)
			break
		}
		var line []byte
		if f.buf.Len() > 0 {
			f.buf.Write(p[:i+1])
			line = bytes.Clone(f.buf.Bytes())
			f.buf.Reset()
		} else {
			line = p[:i+1]
		}
		p = p[i+1:]
		if err := f.line(line); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func (f *filter) tooLarge() error {
	f.mode = modeBroken
	f.d.Rule = "an SSE event is too large to filter"
	return errTooLarge
}

// line takes one SSE line (with its newline).
func (f *filter) line(line []byte) error {
	content := bytes.TrimRight(line, "\r\n")
	if len(content) > 0 {
		if f.size+len(line) > MaxAnswer {
			return f.tooLarge()
		}
		f.size += len(line)
		f.event = append(f.event, bytes.Clone(line))
		return nil
	}
	// The blank line: the event is complete.
	var out bytes.Buffer
	var data [][]byte
	dataAt := -1
	for i, l := range f.event {
		c := bytes.TrimRight(l, "\r\n")
		if v, ok := bytes.CutPrefix(c, []byte("data:")); ok {
			if dataAt < 0 {
				dataAt = i
			}
			data = append(data, bytes.TrimPrefix(v, []byte(" ")))
		}
	}
	var rewritten []byte
	if dataAt >= 0 {
		if b, changed := f.filterJSON(bytes.Join(data, []byte("\n"))); changed {
			rewritten = b
		}
	}
	for i, l := range f.event {
		if rewritten != nil && bytes.HasPrefix(l, []byte("data:")) {
			if i == dataAt {
				out.WriteString("data: ")
				out.Write(rewritten)
				out.WriteByte('\n')
			}
			continue
		}
		out.Write(l)
	}
	out.Write(line)
	f.event, f.size = f.event[:0], 0
	if _, err := f.w.Write(out.Bytes()); err != nil {
		return err
	}
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return nil
}

func (f *filter) Flush() {
	// Complete SSE events are flushed as they end; a JSON answer is sent
	// whole at the end.
	if f.mode == modePass || f.mode == modeSSE {
		if fl, ok := f.w.(http.Flusher); ok {
			fl.Flush()
		}
	}
}

// finish sends what is held back once next has returned.
func (f *filter) finish() {
	switch f.mode {
	case modeJSON:
		body := f.buf.Bytes()
		if b, changed := f.filterJSON(body); changed {
			body = b
		}
		f.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		f.w.WriteHeader(f.status)
		_, _ = f.w.Write(body)
	case modeSSE:
		if len(f.event) > 0 || f.buf.Len() > 0 {
			// An event the app never ended is passed as it came.
			for _, l := range f.event {
				_, _ = f.w.Write(l)
			}
			_, _ = f.w.Write(f.buf.Bytes())
		}
	}
}

// filterJSON removes denied tools from the tools/list results in msg (one
// JSON-RPC message or a batch of them).
func (f *filter) filterJSON(msg []byte) ([]byte, bool) {
	trimmed := bytes.TrimSpace(msg)
	if !bytes.Contains(trimmed, []byte(`"tools"`)) {
		return nil, false
	}
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var items []json.RawMessage
		if json.Unmarshal(trimmed, &items) != nil {
			return nil, false
		}
		changed := false
		for i, it := range items {
			if b, ok := f.filterOne(it); ok {
				items[i], changed = b, true
			}
		}
		if !changed {
			return nil, false
		}
		b, err := json.Marshal(items)
		return b, err == nil
	}
	return f.filterOne(trimmed)
}

func (f *filter) filterOne(msg []byte) ([]byte, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(msg, &m) != nil {
		return nil, false
	}
	res, ok := m["result"]
	if !ok {
		return nil, false
	}
	if f.lists != nil && !f.lists[idKey(m["id"])] {
		return nil, false
	}
	var result map[string]json.RawMessage
	if json.Unmarshal(res, &result) != nil {
		return nil, false
	}
	var tools []json.RawMessage
	if json.Unmarshal(result["tools"], &tools) != nil || tools == nil {
		return nil, false
	}
	kept := tools[:0:0]
	for _, t := range tools {
		name, ok := stringKey(t, "name")
		if !ok {
			continue // not a tool the host could call
		}
		if ok, _ := f.ts.Decide(name); ok {
			kept = append(kept, t)
		}
	}
	if len(kept) == len(tools) {
		return nil, false
	}
	f.d.Hidden += len(tools) - len(kept)
	var err error
	if result["tools"], err = json.Marshal(kept); err != nil {
		return nil, false
	}
	if m["result"], err = json.Marshal(result); err != nil {
		return nil, false
	}
	b, err := json.Marshal(m)
	return b, err == nil
}
