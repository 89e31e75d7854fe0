package access

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// oneRoute is a resolver with one route, owned by one key.
type oneRoute struct{}

func (oneRoute) RouteOf(res string) (string, bool) {
	return "r", strings.HasPrefix(res, "https://r.relay.example")
}
func (oneRoute) Resource(string) string { return "https://r.relay.example/mcp" }
func (oneRoute) Owner(string) string    { return "SHA256:owner" }
func (oneRoute) Notify(Request)         {}

func newTestServer(tb testing.TB) *Server {
	tb.Helper()
	s, err := New(Config{Issuer: "https://relay.example", StateDir: tb.TempDir(), Resolver: oneRoute{}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkGate is the gate's cost per request with a valid token (its
// verdict cached after the first), against a request passed straight on:
// the relay's share of the OAuth check.
//
//	go test -run XXX -bench Gate -benchmem ./internal/relay/access
func BenchmarkGate(b *testing.B) {
	s := newTestServer(b)
	tok, _, err := s.MintOwner(context.Background(), "r", "SHA256:owner")
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "https://r.relay.example/mcp", nil)
	w := httptest.NewRecorder()
	served := 0
	next := func(*http.Request, Caller) { served++ }
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			req.Header.Set("Authorization", "Bearer "+tok)
			next(req, Caller{})
		}
	})
	b.Run("token", func(b *testing.B) {
		for b.Loop() {
			req.Header.Set("Authorization", "Bearer "+tok)
			s.Gate(w, req, "r", "SHA256:owner", next)
		}
	})
	if served == 0 || w.Code != 200 {
		b.Fatalf("served %d, status %d", served, w.Code)
	}
}
