package access

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
)

// clock is a settable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// An access token stops working when it expires, cached verdict or not,
// with a 401 that says invalid_token.
func TestGateExpiredToken(t *testing.T) {
	clk := &clock{t: time.Now()}
	s, err := New(Config{Issuer: "https://relay.example", StateDir: t.TempDir(), Resolver: oneRoute{}, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok, _, err := s.MintOwner(context.Background(), "r", "SHA256:owner")
	if err != nil {
		t.Fatal(err)
	}
	serve := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "https://r.relay.example/mcp", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		s.Gate(w, req, "r", "SHA256:owner", func(r *http.Request, c Caller) {
			if r.Header.Get("Authorization") != "" || r.Header.Get(IdentityHeader) == "" || c.Owner != "SHA256:owner" {
				t.Errorf("forwarded headers %v, caller %+v", r.Header, c)
			}
		})
		return w
	}
	if w := serve(); w.Code != http.StatusOK {
		t.Fatalf("fresh token: %d", w.Code)
	}
	clk.add(59 * time.Minute)
	if w := serve(); w.Code != http.StatusOK {
		t.Fatalf("token at 59 min: %d", w.Code)
	}
	clk.add(2 * time.Minute)
	w := serve()
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("expired token: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	// And straight from the store, without the cache.
	s.forgetVerdicts()
	if _, err := s.verify(context.Background(), tok, "r"); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("expired token from the store: %v", err)
	}
}

// A token of one owner dies once the route's name belongs to another key.
func TestGateRouteChangedOwner(t *testing.T) {
	res := &movable{owner: "SHA256:first"}
	s, err := New(Config{Issuer: "https://relay.example", StateDir: t.TempDir(), Resolver: res})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok, _, err := s.MintOwner(context.Background(), "r", "SHA256:first")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.verify(context.Background(), tok, "r"); err != nil {
		t.Fatal(err)
	}
	res.set("SHA256:second")
	if _, err := s.verify(context.Background(), tok, "r"); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("token of the route's previous owner: %v", err)
	}
	if _, _, err := s.MintOwner(context.Background(), "r", "SHA256:first"); err == nil {
		t.Fatal("minted a token for a route the key no longer holds")
	}
}

type movable struct {
	mu    sync.Mutex
	owner string
}

func (m *movable) set(o string)                  { m.mu.Lock(); m.owner = o; m.mu.Unlock() }
func (m *movable) RouteOf(string) (string, bool) { return "r", true }
func (m *movable) Resource(string) string        { return "https://r.relay.example/mcp" }
func (m *movable) Owner(string) string           { m.mu.Lock(); defer m.mu.Unlock(); return m.owner }
func (m *movable) Notify(Request)                {}
