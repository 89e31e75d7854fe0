package mcpcheck

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pomdev/pomdev/internal/loopback"

	"golang.org/x/oauth2"
)

// TokensFile caches OAuth tokens per resource in pomdev's config dir (0600).
const TokensFile = "tokens.json"

// Login configures `pomdev inspect --login`.
type Login struct {
	// Dir is pomdev's config dir, where tokens are cached.
	Dir string
	// OpenBrowser opens the authorization URL; nil (or an error) prints it.
	OpenBrowser func(string) error
	// Out is where the URL and progress are shown.
	Out io.Writer
	// HTTPClient talks to the authorization server (tests).
	HTTPClient *http.Client
}

type cachedToken struct {
	ClientID string        `json:"client_id"`
	TokenURL string        `json:"token_url"`
	Token    *oauth2.Token `json:"token"`
}

var tokensMu sync.Mutex

func (l *Login) path() string { return filepath.Join(l.Dir, TokensFile) }

func (l *Login) load() map[string]cachedToken {
	m := map[string]cachedToken{}
	data, err := os.ReadFile(l.path())
	if err == nil {
		_ = json.Unmarshal(data, &m)
	}
	return m
}

func (l *Login) save(resource string, ct cachedToken) error {
	tokensMu.Lock()
	defer tokensMu.Unlock()
	m := l.load()
	m[resource] = ct
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return err
	}
	tmp := l.path() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, l.path())
}

func (l *Login) ctx(ctx context.Context) context.Context {
	if l.HTTPClient != nil {
		return context.WithValue(ctx, oauth2.HTTPClient, l.HTTPClient)
	}
	return ctx
}

// Cached returns a valid access token for resource from the cache,
// refreshing it when it expired ("" when there is none). Tokens are never
// printed or logged.
func (l *Login) Cached(ctx context.Context, resource string) string {
	ct, ok := l.load()[resource]
	if !ok || ct.Token == nil {
		return ""
	}
	if ct.Token.Valid() {
		return ct.Token.AccessToken
	}
	if ct.Token.RefreshToken == "" {
		return ""
	}
	cfg := &oauth2.Config{ClientID: ct.ClientID, Endpoint: oauth2.Endpoint{TokenURL: ct.TokenURL, AuthStyle: oauth2.AuthStyleInParams}}
	tok, err := cfg.TokenSource(l.ctx(ctx), ct.Token).Token()
	if err != nil {
		return ""
	}
	ct.Token = tok
	_ = l.save(resource, ct)
	return tok.AccessToken
}

type asMetadata struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	RegistrationEndpoint  string   `json:"registration_endpoint"`
	CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
}

func (l *Login) getJSON(ctx context.Context, u string, v any) error {
	hc := l.HTTPClient
	if hc == nil {
		hc = loopback.Client()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

// metadata fetches RFC 8414 metadata, then OpenID discovery.
func (l *Login) metadata(ctx context.Context, issuer string) (*asMetadata, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, err
	}
	path := strings.TrimSuffix(u.Path, "/")
	root := u.Scheme + "://" + u.Host
	var last error
	for _, c := range []string{root + "/.well-known/oauth-authorization-server" + path, root + "/.well-known/openid-configuration" + path, strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"} {
		var md asMetadata
		if err := l.getJSON(ctx, c, &md); err != nil {
			last = err
			continue
		}
		if md.AuthorizationEndpoint == "" || md.TokenEndpoint == "" {
			last = fmt.Errorf("%s lacks endpoints", c)
			continue
		}
		return &md, nil
	}
	return nil, fmt.Errorf("authorization server %s: no metadata (%v)", issuer, last)
}

func randomString() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Run logs in for resource with the authorization server named in ae:
// authorization code with PKCE S256, dynamic client registration, the
// resource parameter, a loopback redirect on 127.0.0.1. The token is cached.
func (l *Login) Run(ctx context.Context, resource string, ae *AuthError) (string, error) {
	if len(ae.AuthorizationServers) == 0 {
		return "", errors.New("the server's metadata names no authorization server; pass --token instead")
	}
	md, err := l.metadata(ctx, ae.AuthorizationServers[0])
	if err != nil {
		return "", err
	}
	if !slices.Contains(md.CodeChallengeMethods, "S256") {
		return "", fmt.Errorf("authorization server %s does not support PKCE S256; refusing to log in", ae.AuthorizationServers[0])
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	redirect := "http://" + ln.Addr().String() + "/callback"

	if md.RegistrationEndpoint == "" {
		return "", fmt.Errorf("authorization server %s offers no dynamic client registration; pass --token instead", ae.AuthorizationServers[0])
	}
	clientID, err := l.register(ctx, md.RegistrationEndpoint, redirect)
	if err != nil {
		return "", err
	}
	cfg := &oauth2.Config{ClientID: clientID, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: md.AuthorizationEndpoint, TokenURL: md.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	state := randomString()
	authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", resource))

	codes := make(chan string, 1)
	errs := make(chan error, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		switch {
		case q.Get("state") != state:
			http.Error(w, "state mismatch", http.StatusBadRequest)
			errs <- errors.New("the authorization answer had the wrong state; try again")
		case q.Get("error") != "":
			http.Error(w, "authorization failed: "+q.Get("error"), http.StatusBadRequest)
			errs <- fmt.Errorf("authorization failed: %s %s", q.Get("error"), q.Get("error_description"))
		default:
			fmt.Fprintln(w, "pomdev is logged in. You can close this tab.")
			codes <- q.Get("code")
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	if l.OpenBrowser == nil || l.OpenBrowser(authURL) != nil {
		fmt.Fprintf(l.Out, "Open this URL to log in:\n\n    %s\n\n", authURL)
	} else {
		fmt.Fprintln(l.Out, "Logging in through your browser...")
	}
	var code string
	select {
	case code = <-codes:
	case err := <-errs:
		return "", err
	case <-ctx.Done():
		return "", fmt.Errorf("no login within the time allowed: %w", ctx.Err())
	}
	tok, err := cfg.Exchange(l.ctx(ctx), code, oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", resource))
	if err != nil {
		return "", fmt.Errorf("token request to %s failed: %w", md.TokenEndpoint, err)
	}
	if err := l.save(resource, cachedToken{ClientID: clientID, TokenURL: md.TokenEndpoint, Token: tok}); err != nil {
		return "", fmt.Errorf("cannot cache the token: %w", err)
	}
	return tok.AccessToken, nil
}

// register performs RFC 7591 dynamic client registration for a public
// client with the loopback redirect.
func (l *Login) register(ctx context.Context, endpoint, redirect string) (string, error) {
	body, _ := json.Marshal(map[string]any{
		"client_name":                "pomdev",
		"redirect_uris":              []string{redirect},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	})
	hc := l.HTTPClient
	if hc == nil {
		hc = loopback.Client()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("client registration: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		ClientID string `json:"client_id"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil || out.ClientID == "" || resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("client registration at %s failed (%s)", endpoint, resp.Status)
	}
	return out.ClientID, nil
}
