package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/pomdev/pomdev/internal/toolrule"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pomdev/pomdev/internal/mcpwire"
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

	// Method and Tool are the first message's method and tool as the
	// enforcement read them, which the audit names ("" when it read none).
	Method, Tool string
}

type message = mcpwire.Message

// Enforce serves r with next under the tool rules ts: a tools/call of a
// denied tool never reaches next and is answered with a JSON-RPC error
// naming the rule; tools/list answers (JSON or SSE, on the POST that asked
// or a GET stream that replays one) lose the denied tools; a POST body that
// cannot be read as JSON-RPC is refused. ts must not be empty.
func Enforce(w http.ResponseWriter, r *http.Request, ts toolrule.ToolSet, next http.Handler) Decision {
	var d Decision
	if why := refusedShape(r); why != "" {
		d.Rule = why
		status := http.StatusBadRequest
		switch {
		case strings.HasPrefix(why, "the method"):
			status = http.StatusMethodNotAllowed
			w.Header().Set("Allow", "GET, POST, DELETE, OPTIONS, HEAD")
		case strings.HasPrefix(why, "the body is"):
			status = http.StatusUnsupportedMediaType
		}
		refuse(w, status, nil, codeInvalidRequest, "this tunnel has a tool policy: the relay reads every request the app could take as MCP, and "+why, "")
		return d
	}
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
		// DELETE, OPTIONS and HEAD without a body carry no message.
		next.ServeHTTP(w, r)
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
	if !utf8.Valid(body) {
		d.Rule = "the body is not valid UTF-8"
		refuse(w, http.StatusBadRequest, nil, codeParse, "this tunnel has a tool policy and the request body is not valid UTF-8", "")
		return d
	}
	msgs, batch, err := parseMessages(body)
	if err == nil {
		err = idsMatchable(msgs)
	}
	if len(msgs) > 0 {
		c := mcpwire.CallOf(msgs[0])
		d.Method, d.Tool = c.Method, c.Tool
	}
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
	var lists, others map[string]bool
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
			continue
		}
		if others == nil {
			others = map[string]bool{}
		}
		others[idKey(m.ID)] = true
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
	fw.others = others
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

// unmarshalMessage reads a message as every app would (mcpwire.Decode):
// exact keys, none repeated, none differing from a JSON-RPC key only by
// case.
func unmarshalMessage(raw []byte, m *message) error {
	var err error
	*m, err = mcpwire.Decode(raw)
	return err
}

// idsMatchable refuses a request whose id the relay could not match to its
// answer by value (mcpwire.IDKey).
func idsMatchable(msgs []message) error {
	for _, m := range msgs {
		if m.Method == nil || m.ID == nil {
			continue // a notification, or a response to the server
		}
		if _, ok := mcpwire.IDKey(m.ID); !ok {
			return fmt.Errorf("the id %.40s is not a string or an integer of at most 2^53 (the relay matches answers to requests by id)", m.ID)
		}
	}
	return nil
}

// toolName is params.name of a tools/call (exact key, as above).
func toolName(params json.RawMessage) (string, bool) {
	return mcpwire.StringKey(params, "name")
}

func stringKey(obj json.RawMessage, key string) (string, bool) {
	return mcpwire.StringKey(obj, key)
}

// allowedMethods are the methods a route with tool rules passes: exactly
// these spellings (an app's HTTP parser may read "post" or "Post" as POST,
// or route PUT to its MCP handler).
var allowedMethods = map[string]bool{
	http.MethodPost: true, http.MethodGet: true, http.MethodDelete: true, http.MethodOptions: true, http.MethodHead: true,
}

// refusedShape says why a request on a route with tool rules is refused
// before its body is read, or "" when its shape is one the relay reads as
// the app will: one of allowedMethods, a body only on POST, no upgrade
// (a WebSocket would carry messages the relay never reads), and on a POST
// a single Content-Type of application/json in UTF-8 (body-parser, behind
// express.json() and the TypeScript SDK's Express app, decodes other
// charsets such as UTF-7, which the relay would read as UTF-8) with no
// Content-Encoding (which body-parser inflates).
func refusedShape(r *http.Request) string {
	if !allowedMethods[r.Method] {
		return fmt.Sprintf("the method %.20q is not one of GET, POST, DELETE, OPTIONS and HEAD", r.Method)
	}
	if r.Header.Get("Upgrade") != "" || headerHasToken(r.Header, "Connection", "upgrade") {
		return "an upgrade (" + strconv.Quote(r.Header.Get("Upgrade")) + ") carries messages the relay cannot read"
	}
	if r.Method != http.MethodPost {
		if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
			return "a " + r.Method + " request carries a body, which only a POST may"
		}
		return ""
	}
	cts := r.Header.Values("Content-Type")
	if len(cts) != 1 {
		return fmt.Sprintf("the body is not application/json (%d Content-Type headers)", len(cts))
	}
	mt, params, err := mime.ParseMediaType(cts[0])
	if err != nil || mt != "application/json" || strings.Contains(cts[0], ";") && len(params) == 0 {
		return "the body is not application/json (Content-Type " + strconv.Quote(cts[0]) + ")"
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return "the body is not application/json in UTF-8 (Content-Type " + strconv.Quote(cts[0]) + ")"
		}
	}
	if ce := r.Header.Values("Content-Encoding"); len(ce) > 0 && !(len(ce) == 1 && strings.EqualFold(strings.TrimSpace(ce[0]), "identity")) {
		return "the body is encoded (Content-Encoding " + strconv.Quote(strings.Join(ce, ", ")) + ")"
	}
	return ""
}

// headerHasToken reports whether a comma-separated header has token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
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

// idKey is a JSON-RPC id as a map key, by its decoded value; an id with
// no such key (Enforce refuses those in requests) is "?" plus its bytes.
func idKey(id json.RawMessage) string {
	if k, ok := mcpwire.IDKey(id); ok {
		return k
	}
	return "?" + string(id)
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
	w      http.ResponseWriter
	ts     toolrule.ToolSet
	lists  map[string]bool // ids of tools/list requests; nil: any result with tools
	others map[string]bool // ids of the request's other messages, whose results are left alone
	d      *Decision

	mode   int // 0 before WriteHeader, then modePass, modeJSON, modeSSE, modeBroken
	status int
	buf    bytes.Buffer // JSON: the whole answer; SSE: the partial line
	event  [][]byte     // SSE: the lines of the current event
	size   int          // SSE: bytes in the current event
	prevCR bool         // SSE: the last byte written was a CR
}

const (
	modePass = iota + 1
	modeJSON
	modeSSE
	modeBroken
)

var errTooLarge = errors.New("policy: answer too large to filter")

func newFilter(w http.ResponseWriter, ts toolrule.ToolSet, lists map[string]bool, d *Decision) *filter {
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
	// SSE: split into lines; an event ends at a blank line. A line ends
	// at CRLF, LF or a lone CR (the SSE specification's three endings),
	// each passed on as LF.
	n := len(p)
	p = f.normalizeEOL(p)
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

// normalizeEOL turns the SSE line endings in p into LF, remembering a CR
// at the end of p so that a CRLF cut between two writes is one ending.
func (f *filter) normalizeEOL(p []byte) []byte {
	if bytes.IndexByte(p, '\r') < 0 && !(f.prevCR && len(p) > 0 && p[0] == '\n') {
		f.prevCR = false
		return p
	}
	out := make([]byte, 0, len(p))
	for _, b := range p {
		switch {
		case b == '\r':
			out = append(out, '\n')
			f.prevCR = true
			continue
		case b == '\n' && f.prevCR:
			// the LF of a CRLF, already ended
		default:
			out = append(out, b)
		}
		f.prevCR = false
	}
	return out
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
	if k := idKey(m["id"]); f.lists != nil && !f.lists[k] && f.others[k] {
		// The answer to another of the request's messages. Any other
		// result with tools (an id the app spelt in a way the relay cannot
		// match) is filtered.
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
