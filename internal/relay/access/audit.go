package access

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// AuditFile is the audit trail in the state directory: one JSON object
// per line, appended; at AuditMaxBytes it moves to AuditFile + ".1", the
// older generations to ".2" and on, AuditGenerations kept.
const AuditFile = "audit.jsonl"

// DecisionsFile keeps the trail's decisions apart (authorization
// requests, approvals and denials, tokens issued, refreshed and revoked):
// requests through gated routes, which any caller can send by the
// thousand, never push them out. It rotates as AuditFile does, at
// DecisionsMaxBytes.
const DecisionsFile = "decisions.jsonl"

// Sizes and generations of the trails.
const (
	AuditMaxBytes     = 64 << 20
	DecisionsMaxBytes = 16 << 20
	AuditGenerations  = 4 // old files kept besides the current one
)

// Caps of an audit line's fields, in bytes: a field from the network
// (a method, a tool name, a client id) never makes a line long.
const (
	auditFieldMax  = 256
	auditReasonMax = 1024
)

// Entry is one line of the audit trail.
type Entry struct {
	Time time.Time `json:"time"`
	// Kind: authorize (a request arrived), decision (approved, denied,
	// remembered), token (issued, refreshed, reuse, revoked), request (a
	// request through a gated route), refused (a request the gate stopped).
	Kind     string `json:"kind"`
	Route    string `json:"route,omitempty"`
	Client   string `json:"client,omitempty"`
	Grant    string `json:"grant,omitempty"`
	Owner    string `json:"owner,omitempty"`
	Method   string `json:"method,omitempty"` // JSON-RPC method
	Tool     string `json:"tool,omitempty"`
	Decision string `json:"decision,omitempty"` // allow, deny, approved, denied, remembered, …
	Status   int    `json:"status,omitempty"`
	By       string `json:"by,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Source   string `json:"source,omitempty"` // the client's address
}

// audit is the trail (every entry) and the decisions (every entry but
// requests and refusals).
type audit struct {
	all, decisions *trail
	table          *tableTrail // with a PostgreSQL store
	now            func() time.Time
}

func openAudit(dir string, now func() time.Time) (*audit, error) {
	all, err := openTrail(filepath.Join(dir, AuditFile), AuditMaxBytes)
	if err != nil {
		return nil, err
	}
	dec, err := openTrail(filepath.Join(dir, DecisionsFile), DecisionsMaxBytes)
	if err != nil {
		all.close()
		return nil, err
	}
	return &audit{all: all, decisions: dec, now: now}, nil
}

func (a *audit) add(e Entry) {
	if e.Time.IsZero() {
		e.Time = a.now()
	}
	e.capFields()
	line := e.appendJSON(make([]byte, 0, 256))
	a.all.add(line)
	if e.Kind != "request" && e.Kind != "refused" {
		a.decisions.add(line)
	}
	if a.table != nil {
		a.table.add(e, line)
	}
}

func (a *audit) flush() error {
	err := a.all.flush()
	if derr := a.decisions.flush(); err == nil {
		err = derr
	}
	if a.table != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if terr := a.table.flush(ctx); err == nil && terr != nil {
			err = fmt.Errorf("the store's audit table: %w", terr)
		}
	}
	return err
}

func (a *audit) close() error {
	err := a.all.close()
	if derr := a.decisions.close(); err == nil {
		err = derr
	}
	return err
}

// capFields cuts each field to its cap, at a character boundary, with a
// mark.
func (e *Entry) capFields() {
	for _, f := range []*string{&e.Kind, &e.Route, &e.Client, &e.Grant, &e.Owner, &e.Method, &e.Tool, &e.Decision, &e.By, &e.Source} {
		*f = capString(*f, auditFieldMax)
	}
	e.Reason = capString(e.Reason, auditReasonMax)
}

func capString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// trail appends lines to one file through a buffer flushed each second
// and on close: a request costs a memory copy, not a write.
type trail struct {
	path     string
	maxBytes int64

	mu   sync.Mutex
	f    *os.File
	w    *bufio.Writer
	size int64
	err  error // the last write error, reported once
}

func openTrail(path string, maxBytes int64) (*trail, error) {
	a := &trail{path: path, maxBytes: maxBytes}
	if err := a.open(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *trail) open() error {
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	a.f, a.w, a.size = f, bufio.NewWriterSize(f, 64<<10), st.Size()
	return nil
}

func (a *trail) add(line []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return
	}
	if a.size+int64(len(line))+1 > a.maxBytes {
		a.rotate()
	}
	n, _ := a.w.Write(append(line, '\n'))
	a.size += int64(n)
}

// rotate moves the full trail aside, shifting the older generations
// (.1 to .2, …) and dropping the oldest past AuditGenerations; the caller
// holds mu.
func (a *trail) rotate() {
	_ = a.w.Flush()
	_ = a.f.Close()
	for i := AuditGenerations - 1; i >= 1; i-- {
		_ = os.Rename(a.path+"."+strconv.Itoa(i), a.path+"."+strconv.Itoa(i+1))
	}
	_ = os.Rename(a.path, a.path+".1")
	if err := a.open(); err != nil {
		a.f, a.err = nil, err
	}
}

func (a *trail) flush() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return a.err
	}
	return a.w.Flush()
}

func (a *trail) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.w.Flush()
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	a.f = nil
	return err
}

// appendJSON encodes e as encoding/json would (the same keys, omitempty),
// without reflection: one line per gated request stays cheap.
func (e *Entry) appendJSON(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","kind":`...)
	b = appendJSONString(b, e.Kind)
	for _, f := range [...]struct{ k, v string }{
		{"route", e.Route}, {"client", e.Client}, {"grant", e.Grant}, {"owner", e.Owner}, {"method", e.Method},
		{"tool", e.Tool}, {"decision", e.Decision},
	} {
		if f.v != "" {
			b = append(append(append(b, ',', '"'), f.k...), '"', ':')
			b = appendJSONString(b, f.v)
		}
	}
	if e.Status != 0 {
		b = strconv.AppendInt(append(b, `,"status":`...), int64(e.Status), 10)
	}
	for _, f := range [...]struct{ k, v string }{{"by", e.By}, {"reason", e.Reason}, {"source", e.Source}} {
		if f.v != "" {
			b = append(append(append(b, ',', '"'), f.k...), '"', ':')
			b = appendJSONString(b, f.v)
		}
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// Caller is who a request through the gate comes from.
type Caller struct {
	Route, Client, Grant, Owner string
	// Email (or the provider's subject) of the person, with --http-auth oidc.
	Person string
	// Public: a public asset path of the route, served without a token.
	Public bool
}

// AuditRequest records a request that went through the gate, with the
// tool policy's decision (allow or deny) and its reason.
func (s *Server) AuditRequest(c Caller, method, tool string, status int, source, decision, reason string) {
	s.audit.add(Entry{Kind: "request", Route: c.Route, Client: c.Client, Grant: c.Grant, Owner: c.Owner,
		Method: method, Tool: tool, Decision: decision, Status: status, Source: source, Reason: reason, By: c.Person})
}

// FlushAudit writes out the buffered audit trail (it is also flushed
// each second and on Close).
func (s *Server) FlushAudit() error { return s.audit.flush() }
