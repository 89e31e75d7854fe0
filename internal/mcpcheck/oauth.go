package mcpcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/pomdev/pomdev/internal/loopback"
	"github.com/pomdev/pomdev/internal/safeurl"
	"golang.org/x/oauth2"
)

// TokensFile caches OAuth tokens per resource in pomdev's config dir (0600).
const TokensFile = "tokens.json"

// EnvLoginBrowser set to "follow" makes --login follow the authorization
// URL with plain HTTP requests instead of opening a browser: a headless
// stand-in for authorization servers that approve at once (the MCP
// conformance suite's), for tests and CI.
const EnvLoginBrowser = "POMDEV_LOGIN_BROWSER"

// Login configures `pomdev inspect --login`. The OAuth client itself is
// the official go-sdk's (auth.AuthorizationCodeHandler): protected
// resource and authorization server discovery with their checks (RFC 9728
// resource, RFC 8414 issuer, RFC 9207 iss), scopes from the challenge and
// the metadata, step-up on 403 insufficient_scope, client ID metadata
// documents, dynamic registration, PKCE S256, refresh. Login adds the
// loopback redirect, the browser and the token cache.
type Login struct {
	// Dir is pomdev's config dir, where tokens are cached.
	Dir string
	// OpenBrowser opens the authorization URL; nil (or an error) prints it.
	OpenBrowser func(string) error
	// Out is where the URL and progress are shown.
	Out io.Writer
	// HTTPClient talks to the authorization server (tests).
	HTTPClient *http.Client
	// Follow follows the authorization URL over HTTP instead of a browser
	// (EnvLoginBrowser=follow).
	Follow bool
	// ClientIDMetadataURL is an https URL of a client ID metadata document
	// for pomdev, used first when the authorization server supports them.
	ClientIDMetadataURL string
	// ClientID (and ClientSecret, for a confidential client) are a
	// registration made beforehand with the authorization server, used
	// before dynamic registration.
	ClientID, ClientSecret string
}

type cachedToken struct {
	ClientID     string           `json:"client_id"`
	ClientSecret string           `json:"client_secret,omitempty"`
	TokenURL     string           `json:"token_url"`
	AuthStyle    oauth2.AuthStyle `json:"auth_style,omitempty"`
	Token        *oauth2.Token    `json:"token"`
}

var tokensMu sync.Mutex

func (l *Login) path() string { return filepath.Join(l.Dir, TokensFile) }

func (l *Login) load() map[string]cachedToken {
	tokensMu.Lock()
	defer tokensMu.Unlock()
	return l.loadLocked()
}

func (l *Login) loadLocked() map[string]cachedToken {
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
	m := l.loadLocked()
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

// client is the HTTP client for the authorization server: loopback names
// dialled at loopback, answers bounded.
func (l *Login) client() *http.Client {
	if l.HTTPClient != nil {
		return l.HTTPClient
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: limitBodies{loopback.Transport()}}
}

// limitBodies bounds every answer of the authorization server.
type limitBodies struct{ base http.RoundTripper }

func (t limitBodies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err == nil {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, 1<<20), resp.Body}
	}
	return resp, err
}

// savingSource saves every new token it gets (refreshed ones too).
type savingSource struct {
	mu       sync.Mutex
	src      oauth2.TokenSource
	last     string
	save     func(*oauth2.Token)
	resource string
}

func (s *savingSource) Token() (*oauth2.Token, error) {
	t, err := s.src.Token()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.AccessToken != s.last {
		s.last = t.AccessToken
		s.save(t)
	}
	return t, nil
}

// Handler returns the OAuth handler for the MCP endpoint resource: the
// cached token first (refreshed when it expired), else, on a 401, the
// authorization code flow through the browser and a loopback redirect on
// 127.0.0.1. done releases the redirect's listener.
func (l *Login) Handler(resource string) (h auth.OAuthHandler, done func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	redirect := "http://" + ln.Addr().String() + "/callback"
	answers, stop := serveCallback(ln)
	hc := l.client()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
	persist := func(cfg *oauth2.Config) func(*oauth2.Token) {
		return func(t *oauth2.Token) {
			if err := l.save(resource, cachedToken{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
				TokenURL: cfg.Endpoint.TokenURL, AuthStyle: cfg.Endpoint.AuthStyle, Token: t}); err != nil && l.Out != nil {
				fmt.Fprintf(l.Out, "cannot cache the token: %v\n", err)
			}
		}
	}
	config := &auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: "pomdev", RedirectURIs: []string{redirect}, TokenEndpointAuthMethod: "none",
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		}},
		RedirectURL:              redirect,
		AuthorizationCodeFetcher: l.fetcher(answers),
		RequestRefreshToken:      true,
		Client:                   hc,
		NewTokenSource: func(ctx context.Context, cfg *oauth2.Config, t *oauth2.Token) (oauth2.TokenSource, error) {
			s := &savingSource{src: cfg.TokenSource(ctx, t), save: persist(cfg), resource: resource}
			_, err := s.Token() // saves the first
			return s, err
		},
	}
	if l.ClientID != "" {
		config.PreregisteredClient = &oauthex.ClientCredentials{ClientID: l.ClientID}
		if l.ClientSecret != "" {
			config.PreregisteredClient.ClientSecretAuth = &oauthex.ClientSecretAuth{ClientSecret: l.ClientSecret}
		}
	}
	if l.ClientIDMetadataURL != "" {
		config.ClientIDMetadataDocumentConfig = &auth.ClientIDMetadataDocumentConfig{URL: l.ClientIDMetadataURL}
	}
	if ct, ok := l.load()[resource]; ok && ct.Token != nil && (ct.Token.Valid() || ct.Token.RefreshToken != "") {
		cfg := &oauth2.Config{ClientID: ct.ClientID, ClientSecret: ct.ClientSecret,
			Endpoint: oauth2.Endpoint{TokenURL: ct.TokenURL, AuthStyle: ct.AuthStyle}}
		config.InitialTokenSource = &savingSource{src: cfg.TokenSource(ctx, ct.Token), save: persist(cfg), resource: resource, last: ct.Token.AccessToken}
	}
	handler, err := auth.NewAuthorizationCodeHandler(config)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return handler, stop, nil
}

// callback is one answer on the loopback redirect.
type callback struct {
	result *auth.AuthorizationResult
	err    error
}

// serveCallback serves the loopback redirect on ln until stop: each
// answer goes to the channel (the latest one waits; older ones are
// dropped).
func serveCallback(ln net.Listener) (answers <-chan callback, stop func()) {
	ch := make(chan callback, 1)
	send := func(c callback) {
		select {
		case <-ch: // an answer nobody waited for
		default:
		}
		ch <- c
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		if e := q.Get("error"); e != "" {
			http.Error(w, "authorization failed: "+e, http.StatusBadRequest)
			send(callback{err: fmt.Errorf("authorization failed: %s %s", e, q.Get("error_description"))})
			return
		}
		fmt.Fprintln(w, "pomdev is logged in. You can close this tab.")
		send(callback{result: &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}})
	})}
	go func() { _ = srv.Serve(ln) }()
	return ch, func() { _ = srv.Close() }
}

// fetcher shows the user the authorization URL (a browser, else the URL
// printed) and waits for the loopback redirect. The go-sdk handler
// checks state and iss.
func (l *Login) fetcher(answers <-chan callback) auth.AuthorizationCodeFetcher {
	return func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		// Only https, or http to this machine, is opened or followed: an
		// authorization server cannot send the browser anywhere else.
		if err := safeurl.ForBrowser(args.URL); err != nil {
			return nil, fmt.Errorf("refusing the authorization URL: %w", err)
		}
		select {
		case <-answers: // left from an earlier flow
		default:
		}
		failed := make(chan error, 1)
		switch {
		case l.Follow:
			go follow(ctx, args.URL, failed)
		case l.OpenBrowser != nil && l.OpenBrowser(args.URL) == nil:
			if l.Out != nil {
				fmt.Fprintln(l.Out, "Logging in through your browser...")
			}
		default:
			if l.Out != nil {
				fmt.Fprintf(l.Out, "Open this URL to log in:\n\n    %s\n\n", args.URL)
			}
		}
		select {
		case a := <-answers:
			return a.result, a.err
		case err := <-failed:
			return nil, err
		case <-ctx.Done():
			return nil, fmt.Errorf("no login within the time allowed: %w", ctx.Err())
		}
	}
}

// follow GETs the authorization URL and its redirects, as a browser of a
// user who approves would, until the loopback redirect has been reached.
func follow(ctx context.Context, u string, errs chan<- error) {
	c := &http.Client{Transport: loopback.Transport(), CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > 10 {
			return errors.New("more than 10 redirects")
		}
		return safeurl.ForBrowser(req.URL.String())
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err == nil {
		var resp *http.Response
		if resp, err = c.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return
			}
			err = fmt.Errorf("the authorization page answered %s", resp.Status)
		}
	}
	select {
	case errs <- fmt.Errorf("following the authorization URL: %w", err):
	default:
	}
}
