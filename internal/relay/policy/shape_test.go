package policy

import (
	"github.com/pomdev/pomdev/internal/toolrule"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// enforceOnce sends one request through Enforce with a deny rule for
// exec_*; it returns the status, the body and whether the app saw it.
func enforceOnce(t *testing.T, req *http.Request, answer func(w http.ResponseWriter, r *http.Request)) (int, string, bool) {
	t.Helper()
	ts := toolrule.ToolSet{{Deny: []toolrule.Glob{{Text: "exec_*", Where: "p:1"}}}}
	called := false
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called = true
		if answer != nil {
			answer(w, r)
		}
	})
	rec := httptest.NewRecorder()
	Enforce(rec, req, ts, origin)
	return rec.Code, rec.Body.String(), called
}

// A request the app could read otherwise than the relay does is refused
// before it reaches the app: a charset other than UTF-8 (body-parser
// decodes UTF-7, in which +AGU-xec_cmd is exec_cmd), media type variants,
// an encoded body, invalid UTF-8.
func TestEnforceContentType(t *testing.T) {
	utf7 := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"+AGU-xec_cmd"}}`
	for _, tt := range []struct {
		ct, enc string
		body    string
		status  int
	}{
		{"application/json; charset=utf-7", "", utf7, http.StatusUnsupportedMediaType},
		{"application/json; charset=UTF-16", "", utf7, http.StatusUnsupportedMediaType},
		{"application/json; charset=latin1", "", utf7, http.StatusUnsupportedMediaType},
		{"application/json; charset=utf-8; charset=utf-7", "", utf7, http.StatusUnsupportedMediaType},
		{"application/json; boundary=x", "", utf7, http.StatusUnsupportedMediaType},
		{"application/json;", "", utf7, http.StatusUnsupportedMediaType},
		{"application/vnd.api+json", "", utf7, http.StatusUnsupportedMediaType},
		{"text/json", "", utf7, http.StatusUnsupportedMediaType},
		{"application/json", "gzip", utf7, http.StatusUnsupportedMediaType},
		{"application/json", "", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"e\xffxec\"}}", http.StatusBadRequest},
	} {
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(tt.body))
		req.Header.Set("Content-Type", tt.ct)
		if tt.enc != "" {
			req.Header.Set("Content-Encoding", tt.enc)
		}
		status, body, called := enforceOnce(t, req, nil)
		if called || status != tt.status {
			t.Errorf("Content-Type %q, Content-Encoding %q: %d (app called: %v), want %d\n%s", tt.ct, tt.enc, status, called, tt.status, body)
		}
	}
	// Two Content-Type headers.
	req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(utf7))
	req.Header["Content-Type"] = []string{"application/json", "application/json; charset=utf-7"}
	if status, _, called := enforceOnce(t, req, nil); called || status != http.StatusUnsupportedMediaType {
		t.Errorf("two Content-Type headers: %d (app called %v)", status, called)
	}
	// UTF-8, spelt any way, passes.
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON; Charset=\"UTF-8\""} {
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		req.Header.Set("Content-Type", ct)
		if _, body, called := enforceOnce(t, req, nil); !called {
			t.Errorf("Content-Type %q refused: %s", ct, body)
		}
	}
}

// Only GET, POST, DELETE, OPTIONS and HEAD in those spellings pass, a body
// only on POST, and no upgrade.
func TestEnforceMethods(t *testing.T) {
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"exec_cmd"}}`
	for _, m := range []string{"post", "Post", "PUT", "PATCH", "PROPFIND", "CONNECT"} {
		req := httptest.NewRequest(m, "/mcp", strings.NewReader(call))
		req.Header.Set("Content-Type", "application/json")
		if status, _, called := enforceOnce(t, req, nil); called || status != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d (app called %v), want 405", m, status, called)
		}
	}
	for _, m := range []string{http.MethodGet, http.MethodDelete, http.MethodOptions} {
		req := httptest.NewRequest(m, "/mcp", strings.NewReader(call))
		req.Header.Set("Content-Type", "application/json")
		if status, _, called := enforceOnce(t, req, nil); called || status != http.StatusBadRequest {
			t.Errorf("%s with a body: %d (app called %v), want 400", m, status, called)
		}
		req = httptest.NewRequest(m, "/mcp", nil)
		if _, body, called := enforceOnce(t, req, nil); !called {
			t.Errorf("%s without a body refused: %s", m, body)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/mcp", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	if status, _, called := enforceOnce(t, req, nil); called || status != http.StatusBadRequest {
		t.Errorf("a WebSocket upgrade: %d (app called %v), want 400", status, called)
	}
}

// Answers are matched to requests by the id's value: whatever spelling of
// the id the request used and the app normalised, the tools/list answer
// is filtered. Ids the relay cannot match are refused.
func TestEnforceIDForms(t *testing.T) {
	for _, tt := range []struct{ id, answerID string }{
		{`1.0`, `1`}, {`1e0`, `1`}, {`"\u0031"`, `"1"`}, {`"\u0061"`, `"a"`}, {`10E-1`, `1`}, {`-0`, `0`},
		{`1`, `1.0`}, {`"a"`, `"\u0061"`},
	} {
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":`+tt.id+`,"method":"tools/list"}`))
		req.Header.Set("Content-Type", "application/json")
		_, body, called := enforceOnce(t, req, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"jsonrpc":"2.0","id":`+tt.answerID+`,"result":{"tools":[{"name":"exec_cmd"},{"name":"echo"}]}}`)
		})
		if !called || strings.Contains(body, "exec_cmd") || !strings.Contains(body, "echo") {
			t.Errorf("id %s answered as %s: %s", tt.id, tt.answerID, body)
		}
	}
	for _, id := range []string{`1.5`, `9007199254740993`, `1e300`, `null`, `true`, `{}`, `[1]`} {
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":`+id+`,"method":"tools/list"}`))
		req.Header.Set("Content-Type", "application/json")
		if status, _, called := enforceOnce(t, req, nil); called || status != http.StatusBadRequest {
			t.Errorf("id %s: %d (app called %v), want 400", id, status, called)
		}
	}
}

// An SSE answer with CR-only or CRLF line endings is filtered as one with
// LF endings.
func TestEnforceSSELineEndings(t *testing.T) {
	for _, eol := range []string{"\r", "\r\n", "\n"} {
		event := "event: message" + eol + `data: {"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"exec_cmd"},{"name":"echo"}]}}` + eol + eol
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		req.Header.Set("Content-Type", "application/json")
		_, body, _ := enforceOnce(t, req, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			// Written in pieces, a CRLF cut between two writes.
			for i := 0; i < len(event); i += 7 {
				io.WriteString(w, event[i:min(i+7, len(event))])
			}
		})
		if strings.Contains(body, "exec_cmd") || !strings.Contains(body, "echo") {
			t.Errorf("line ending %q: %q", eol, body)
		}
	}
}
