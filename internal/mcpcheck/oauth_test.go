package mcpcheck

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/peertest"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// authServer is an OAuth 2.1 authorization server for the test: metadata,
// dynamic registration, authorize (approving at once), token with PKCE
// and refresh.
type authServer struct {
	*httptest.Server
	mu        sync.Mutex
	clients   map[string]string // client_id -> redirect
	challenge string
	resource  string
	issued    []string
}

func newAuthServer(t *testing.T) *authServer {
	a := &authServer{clients: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": a.URL, "authorization_endpoint": a.URL + "/authorize",
			"token_endpoint": a.URL + "/token", "registration_endpoint": a.URL + "/register",
			"code_challenge_methods_supported": []string{"S256"}})
	})
	mux.HandleFunc("/register", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			RedirectURIs []string `json:"redirect_uris"`
			AuthMethod   string   `json:"token_endpoint_auth_method"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		if len(req.RedirectURIs) != 1 || !strings.HasPrefix(req.RedirectURIs[0], "http://127.0.0.1:") || req.AuthMethod != "none" {
			http.Error(w, "bad registration", http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		id := fmt.Sprintf("client-%d", len(a.clients)+1)
		a.clients[id] = req.RedirectURIs[0]
		a.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]string{"client_id": id})
	})
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		a.mu.Lock()
		redirect, ok := a.clients[q.Get("client_id")]
		a.challenge, a.resource = q.Get("code_challenge"), q.Get("resource")
		a.mu.Unlock()
		if !ok || q.Get("redirect_uri") != redirect || q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" {
			http.Error(w, "bad authorize request", http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, redirect+"?code=the-code&state="+q.Get("state"), http.StatusFound)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		a.mu.Lock()
		defer a.mu.Unlock()
		switch r.Form.Get("grant_type") {
		case "authorization_code":
			sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
			if r.Form.Get("code") != "the-code" || base64.RawURLEncoding.EncodeToString(sum[:]) != a.challenge || r.Form.Get("resource") != a.resource {
				http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
				return
			}
			a.issued = append(a.issued, "at-1")
			json.NewEncoder(w).Encode(map[string]any{"access_token": "at-1", "token_type": "Bearer", "refresh_token": "rt-1", "expires_in": 1})
		case "refresh_token":
			if r.Form.Get("refresh_token") != "rt-1" {
				http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
				return
			}
			a.issued = append(a.issued, "at-2")
			json.NewEncoder(w).Encode(map[string]any{"access_token": "at-2", "token_type": "Bearer", "refresh_token": "rt-1", "expires_in": 3600})
		default:
			http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
		}
	})
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json") // as a real server answers
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(a.Close)
	return a
}

// protected serves a go-sdk MCP server that wants a bearer the auth server
// issued, with RFC 9728 metadata naming it.
func protected(t *testing.T, as *authServer) string {
	s := mcp.NewServer(&mcp.Implementation{Name: "protected", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "ping", Description: "ping", InputSchema: objectSchema}, echoHandler)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	var base string
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"resource": base + "/mcp", "authorization_servers": []string{as.URL}})
	})
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		as.mu.Lock()
		ok := false
		for _, i := range as.issued {
			ok = ok || i == tok
		}
		as.mu.Unlock()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+base+`/.well-known/oauth-protected-resource/mcp"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base = srv.URL
	return srv.URL + "/mcp"
}

// authError checks endpoint without a token and returns the 401's details.
func authError(t *testing.T, ctx context.Context, endpoint string) *AuthError {
	t.Helper()
	_, err := Run(ctx, Options{URL: endpoint})
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("want an auth error, got %v", err)
	}
	return ae
}

// browserFollowing is a "browser" that follows the authorization URL to
// the loopback redirect, counting how often it was opened.
type browserFollowing struct{ opened atomic.Int32 }

func (b *browserFollowing) open(u string) error {
	b.opened.Add(1)
	go func() {
		resp, err := http.Get(u)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	return nil
}

// --login with the go-sdk's OAuth client: discovery from the 401,
// registration, PKCE, the resource parameter, the loopback redirect; the
// token is cached (0600, never printed) and the next check uses and
// refreshes it without a browser.
func TestLogin(t *testing.T) {
	as := newAuthServer(t)
	endpoint := protected(t, as)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	authError(t, ctx, endpoint) // without --login: exit 3
	dir := t.TempDir()
	var shown peertest.SyncBuffer
	b := &browserFollowing{}
	login := &Login{Dir: dir, Out: &shown, OpenBrowser: b.open}
	h, done, err := login.Handler(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(ctx, Options{URL: endpoint, OAuthHandler: h})
	done()
	if err != nil || len(rep.Tools) != 1 {
		t.Fatalf("check with --login: %v\n%s", err, shown.String())
	}
	as.mu.Lock()
	resource := as.resource
	as.mu.Unlock()
	if resource != endpoint {
		t.Errorf("resource parameter %q, want %q", resource, endpoint)
	}
	if strings.Contains(shown.String(), "at-1") || strings.Contains(shown.String(), "at-2") {
		t.Error("a token was printed")
	}
	st, err := os.Stat(filepath.Join(dir, TokensFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token cache: %v %v", st, err)
	}
	// at-1 expired at once (expires_in 1): the cache holds its refresh.
	if ct := login.load()[endpoint]; ct.Token == nil || ct.Token.AccessToken != "at-2" || ct.ClientID == "" {
		t.Fatalf("cached %+v", ct)
	}
	// The next check starts from the cache: no browser.
	h, done, err = login.Handler(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if rep, err := Run(ctx, Options{URL: endpoint, OAuthHandler: h}); err != nil || len(rep.Tools) != 1 {
		t.Fatalf("second check: %v", err)
	}
	if n := b.opened.Load(); n != 1 {
		t.Fatalf("the browser was opened %d times, want 1", n)
	}
	if _, ok := login.load()["http://other/mcp"]; ok {
		t.Fatal("a token for another resource")
	}
}

// Without a browser the URL is printed for the user to open.
func TestLoginPrintsURLWithoutBrowser(t *testing.T) {
	as := newAuthServer(t)
	endpoint := protected(t, as)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out := &peertest.SyncBuffer{}
	login := &Login{Dir: t.TempDir(), Out: out}
	h, stop, err := login.Handler(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	done := make(chan error, 1)
	go func() { _, err := Run(ctx, Options{URL: endpoint, OAuthHandler: h}); done <- err }()
	var authURL string
	for authURL == "" {
		if i := strings.Index(out.String(), as.URL+"/authorize?"); i >= 0 {
			authURL = strings.Fields(out.String()[i:])[0]
		}
		select {
		case err := <-done:
			t.Fatalf("login ended early: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	resp, err := http.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The headless stand-in (POMDEV_LOGIN_BROWSER=follow) follows the URL
// itself; an authorization URL that is not https (or loopback http) is
// never opened or followed.
func TestLoginFollowAndRefusal(t *testing.T) {
	as := newAuthServer(t)
	endpoint := protected(t, as)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	login := &Login{Dir: t.TempDir(), Out: io.Discard, Follow: true}
	h, stop, err := login.Handler(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if rep, err := Run(ctx, Options{URL: endpoint, OAuthHandler: h}); err != nil || len(rep.Tools) != 1 {
		t.Fatalf("follow: %v", err)
	}
	opened := false
	f := (&Login{OpenBrowser: func(string) error { opened = true; return nil }}).fetcher(make(chan callback))
	if _, err := f(ctx, &auth.AuthorizationArgs{URL: "http://auth.example.com/authorize?x=1"}); err == nil || opened {
		t.Fatalf("plain http to another machine: %v, opened %v", err, opened)
	}
}
