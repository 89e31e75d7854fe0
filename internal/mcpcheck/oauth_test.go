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
	"testing"
	"time"

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
	a.Server = httptest.NewServer(mux)
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

func TestLogin(t *testing.T) {
	as := newAuthServer(t)
	endpoint := protected(t, as)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	ae := authError(t, ctx, endpoint)
	dir := t.TempDir()
	var shown strings.Builder
	login := &Login{Dir: dir, Out: &shown, OpenBrowser: func(u string) error {
		// The "browser": follow the authorization URL to the loopback redirect.
		go func() {
			resp, err := http.Get(u)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
		return nil
	}}
	tok, err := login.Run(ctx, endpoint, ae)
	if err != nil || tok != "at-1" {
		t.Fatalf("login: %q %v", tok, err)
	}
	if as.resource != endpoint {
		t.Errorf("resource parameter %q, want %q", as.resource, endpoint)
	}
	if strings.Contains(shown.String(), "at-1") {
		t.Error("the token was printed")
	}
	st, err := os.Stat(filepath.Join(dir, TokensFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token cache: %v %v", st, err)
	}
	// The token expires at once (expires_in 1): the cache refreshes it.
	if got := login.Cached(ctx, endpoint); got != "at-2" {
		t.Fatalf("cached after refresh = %q, want at-2", got)
	}
	if got := login.Cached(ctx, endpoint); got != "at-2" {
		t.Fatalf("second read %q", got)
	}
	rep, err := Run(ctx, Options{URL: endpoint, Headers: map[string]string{"Authorization": "Bearer at-2"}})
	if err != nil || len(rep.Tools) != 1 {
		t.Fatalf("authorized check: %v", err)
	}
	if login.Cached(ctx, "http://other/mcp") != "" {
		t.Fatal("a token for another resource")
	}
}

// Without a browser the URL is printed for the user to open.
func TestLoginPrintsURLWithoutBrowser(t *testing.T) {
	as := newAuthServer(t)
	endpoint := protected(t, as)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ae := authError(t, ctx, endpoint)
	out := &syncBuilder{}
	login := &Login{Dir: t.TempDir(), Out: out}
	done := make(chan error, 1)
	go func() { _, err := login.Run(ctx, endpoint, ae); done <- err }()
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

type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuilder) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
