package front

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A handler's panic is logged at error with the request, and the request
// is aborted as net/http aborts it.
func TestRecoverPanicLogs(t *testing.T) {
	var buf bytes.Buffer
	r := New(Config{Log: slog.New(slog.NewTextHandler(&buf, nil))})
	req := httptest.NewRequest(http.MethodGet, "http://localhost/oauth/authorize?x=1", nil)
	var got any
	func() {
		defer func() { got = recover() }()
		defer r.recoverPanic(req)
		panic("boom")
	}()
	if got != http.ErrAbortHandler {
		t.Fatalf("re-panicked with %v, want http.ErrAbortHandler", got)
	}
	out := buf.String()
	for _, want := range []string{"level=ERROR", "panic serving a request", "panic=boom", "path=/oauth/authorize", "host=localhost"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
