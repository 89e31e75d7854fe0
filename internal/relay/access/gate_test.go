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

// clockedServer is a Server on route "r" of SHA256:owner with a settable
// clock, and an owner token for it.
func clockedServer(t *testing.T) (*Server, *clock, string) {
	t.Helper()
	clk := &clock{t: time.Now()}
	s, err := New(Config{Issuer: "https://relay.example", StateDir: t.TempDir(), Resolver: oneRoute{}, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tok, _, err := s.MintOwner(context.Background(), "r", "SHA256:owner")
	if err != nil {
		t.Fatal(err)
	}
	return s, clk, tok
}

// An access token stops working when it expires, cached verdict or not,
// with a 401 that says invalid_token.
func TestGateExpiredToken(t *testing.T) {
	s, clk, tok := clockedServer(t)
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

// A token the gate let through once takes the cached path after: the same
// request reaches the app the same way, and the cache lets nothing through
// that a fresh verification would refuse.
func TestGateCachedVerdict(t *testing.T) {
	s, clk, tok := clockedServer(t)
	type seen struct {
		auth, identity string
		caller         Caller
	}
	serve := func(authz, route, owner string) (*httptest.ResponseRecorder, *seen) {
		req := httptest.NewRequest(http.MethodPost, "https://r.relay.example/mcp", nil)
		req.Header.Set("Authorization", authz)
		w := httptest.NewRecorder()
		var got *seen
		s.Gate(w, req, route, owner, func(r *http.Request, c Caller) {
			got = &seen{r.Header.Get("Authorization"), r.Header.Get(IdentityHeader), c}
		})
		return w, got
	}
	_, first := serve("Bearer "+tok, "r", "SHA256:owner")
	if first == nil || first.auth != "" || first.identity == "" || first.caller.Owner != "SHA256:owner" {
		t.Fatalf("first request: %+v", first)
	}
	s.mu.Lock()
	cached := s.verdicts[tok] != nil
	s.mu.Unlock()
	if !cached {
		t.Fatal("the verdict was not cached")
	}
	for _, authz := range []string{"Bearer " + tok, "bearer " + tok} {
		if _, again := serve(authz, "r", "SHA256:owner"); again == nil || *again != *first {
			t.Fatalf("%.10s…: the cached path gave %+v, the first request %+v", authz, again, first)
		}
	}
	refused := func(what, authz, route, owner string) {
		t.Helper()
		w, got := serve(authz, route, owner)
		if got != nil || w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("%s: status %d, %q, reached the app: %v", what, w.Code, w.Header().Get("WWW-Authenticate"), got != nil)
		}
	}
	refused("cached token on another route", "Bearer "+tok, "other", "SHA256:owner")
	refused("cached token, the route's owner changed", "Bearer "+tok, "r", "SHA256:else")
	refused("another token", "Bearer x"+tok, "r", "SHA256:owner")
	if w, got := serve("Basic "+tok, "r", "SHA256:owner"); got != nil || w.Code != http.StatusUnauthorized {
		t.Fatalf("another scheme: %d, reached the app: %v", w.Code, got != nil)
	}
	// Revoked: what revocation does, then the same request.
	plain, err := s.provider.Crypto().Decrypt(tok)
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := strings.Cut(plain, ":")
	if err := s.st.revokeToken(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	s.forgetVerdicts()
	refused("revoked token", "Bearer "+tok, "r", "SHA256:owner")
	// Expired while cached.
	tok2, _, err := s.MintOwner(context.Background(), "r", "SHA256:owner")
	if err != nil {
		t.Fatal(err)
	}
	if _, got := serve("Bearer "+tok2, "r", "SHA256:owner"); got == nil {
		t.Fatal("second token refused")
	}
	clk.add(2 * time.Hour)
	refused("expired cached token", "Bearer "+tok2, "r", "SHA256:owner")
}
