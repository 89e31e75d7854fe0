package access

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// client is an OAuth client as op sees it: registered dynamically (an
// opaque ID) or identified by the HTTPS URL of its metadata document.
type client struct {
	id        string
	name      string
	redirects []string
	method    oidc.AuthMethod
	loginURL  string
	// A metadata document's client with private_key_jwt: its keys, inline
	// or at jwksURI, and the one algorithm it signs with ("" any of
	// AssertionAlgs).
	jwks    []jose.JSONWebKey
	jwksURI string
	signAlg string
	// source is the address a dynamically registered client came from.
	source string
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                    { return c.id }
func (c *client) RedirectURIs() []string           { return c.redirects }
func (c *client) PostLogoutRedirectURIs() []string { return nil }

// ApplicationType is native so that custom-scheme redirects (desktop
// hosts) pass op's checks; serveAuthorize has already required an exact
// match, so op's loopback port leniency never applies.
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeNative }
func (c *client) AuthMethod() oidc.AuthMethod         { return c.method }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *client) LoginURL(id string) string            { return c.loginURL + "?id=" + url.QueryEscape(id) }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration       { return time.Hour }
func (c *client) DevMode() bool                        { return false }
func (c *client) IsScopeAllowed(scope string) bool     { return scope == Scope }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// isDynamic tells a registered client's ID from a metadata document URL.
func isDynamic(id string) bool {
	return !strings.HasPrefix(id, "https://") && !strings.HasPrefix(id, "http://")
}

func (s *Server) client(ctx context.Context, id string) (*client, error) {
	login := s.cfg.Issuer + PathApprove
	if !isDynamic(id) {
		c, err := s.fetch.get(ctx, id)
		if err != nil {
			return nil, err
		}
		cc := *c
		cc.loginURL = login
		return &cc, nil
	}
	row, err := s.st.client(ctx, id)
	if errors.Is(err, errNotFound) {
		// The client's own mistake (401 invalid_client), not the
		// relay's (500); the ID is the caller's, so only its head is
		// echoed.
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client %q", clip(id, 64))
	}
	if err != nil {
		return nil, fmt.Errorf("client %q: %w", clip(id, 64), err)
	}
	c := &client{id: row.ID, name: row.Name, redirects: row.RedirectURIs, loginURL: login, source: row.Source}
	if err := c.setKeys(row.AuthMethod, row.Keys.JWKS, row.Keys.JWKSURI, row.Keys.Alg); err != nil {
		return nil, fmt.Errorf("client %q: %w", id, err)
	}
	return c, nil
}

// checkRedirect accepts https URLs, http URLs on loopback (native apps,
// RFC 8252 §7.3) and private-use schemes (§7.1), never script or data
// schemes; no fragments.
func checkRedirect(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Fragment != "" || strings.ContainsAny(raw, " \t\r\n") {
		return fmt.Errorf("redirect URI %q is not an absolute URI without a fragment", raw)
	}
	switch s := strings.ToLower(u.Scheme); s {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("redirect URI %q has no host", raw)
		}
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("redirect URI %q: plain http is allowed only on loopback", raw)
		}
	case "javascript", "data", "file", "vbscript", "about", "blob", "ftp", "ws", "wss":
		return fmt.Errorf("redirect URI %q: scheme %s is not allowed", raw, s)
	}
	return nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

// registrar bounds dynamic client registration per source address.
type registrar struct {
	mu    sync.Mutex
	now   func() time.Time
	perIP map[string]*rate.Limiter
}

// MaxUnusedClientsPerSource bounds the registrations of one address that
// have not been used for a token yet: one address cannot fill the relay's
// MaxClients within the rate limit.
const MaxUnusedClientsPerSource = 20

// Registrations: 10 a minute per address, bursts of 5.
const (
	registerRate  = rate.Limit(10.0 / 60)
	registerBurst = 5
	maxLimiters   = 10_000
)

func newRegistrar(now func() time.Time) *registrar {
	return &registrar{now: now, perIP: map[string]*rate.Limiter{}}
}

func (g *registrar) allow(ip string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.perIP[ip]
	if l == nil {
		if len(g.perIP) >= maxLimiters {
			clear(g.perIP) // a flood of addresses resets everyone's budget, never grows memory
		}
		l = rate.NewLimiter(registerRate, registerBurst)
		g.perIP[ip] = l
	}
	return l.AllowN(g.now(), 1)
}

func (s *Server) serveRegister(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "registration is a POST of JSON client metadata")
		return
	}
	if !s.dcr.allow(sourceIP(r)) {
		w.Header().Set("Retry-After", "60")
		oauthError(w, http.StatusTooManyRequests, "invalid_request", "too many registrations from this address; retry in a minute")
		return
	}
	var body struct {
		oauthex.ClientRegistrationMetadata
		JWKS       json.RawMessage `json:"jwks"`
		SigningAlg string          `json:"token_endpoint_auth_signing_alg"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&body); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", "the body is not client metadata JSON: "+err.Error())
		return
	}
	meta := body.ClientRegistrationMetadata
	if err := validateMetadata(&meta); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_redirect_uri", err.Error())
		return
	}
	var keyed client
	if err := keyed.setKeys(meta.TokenEndpointAuthMethod, body.JWKS, meta.JWKSURI, body.SigningAlg); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", err.Error())
		return
	}
	ctx := r.Context()
	src := sourceIP(r)
	n, err := s.st.countUnusedFrom(ctx, src)
	if err == nil && n >= MaxUnusedClientsPerSource {
		_ = s.st.sweep(ctx, s.cfg.Now())
		n, err = s.st.countUnusedFrom(ctx, src)
	}
	if err == nil && n >= MaxUnusedClientsPerSource {
		w.Header().Set("Retry-After", "3600")
		oauthError(w, http.StatusTooManyRequests, "invalid_request", fmt.Sprintf("%d registrations from this address are not used yet; use one (or wait an hour)", n))
		return
	}
	if err == nil {
		if n, err = s.st.countClients(ctx); err == nil && n >= s.cfg.MaxClients {
			_ = s.st.sweep(ctx, s.cfg.Now())
			n, err = s.st.countClients(ctx)
		}
		if err == nil && n >= s.cfg.MaxClients {
			w.Header().Set("Retry-After", "3600")
			oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "this relay holds as many client registrations as it allows")
			return
		}
	}
	if err != nil {
		s.log.Warn("cannot count registrations", "err", err)
		oauthError(w, http.StatusInternalServerError, "server_error", "cannot count the registrations")
		return
	}
	now := s.cfg.Now()
	row := clientRow{ID: random(16), Name: meta.ClientName, RedirectURIs: meta.RedirectURIs, AuthMethod: meta.TokenEndpointAuthMethod, Created: now, Source: src}
	if keyed.method == oidc.AuthMethodPrivateKeyJWT {
		row.Keys = clientKeys{JWKS: body.JWKS, JWKSURI: keyed.jwksURI, Alg: keyed.signAlg}
	}
	meta.JWKS = "" // echoed as registered, an object (registrationResponse)
	resp := oauthex.ClientRegistrationResponse{ClientRegistrationMetadata: meta, ClientID: row.ID, ClientIDIssuedAt: now}
	if row.AuthMethod == string(oidc.AuthMethodBasic) || row.AuthMethod == string(oidc.AuthMethodPost) {
		resp.ClientSecret = random(32)
		row.SecretHash = hashSecret(resp.ClientSecret)
	}
	if err := s.st.addClient(ctx, row); err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "cannot store the registration")
		return
	}
	s.log.Info("client registered", "client", row.ID, "name", row.Name, "source", sourceIP(r))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(registrationResponse(&resp, row.Keys))
}

// registrationResponse is resp as JSON with the keys of a private_key_jwt
// client as registered (oauthex has jwks as a string).
func registrationResponse(resp *oauthex.ClientRegistrationResponse, k clientKeys) []byte {
	b, err := json.Marshal(resp)
	if err != nil || (len(k.JWKS) == 0 && k.Alg == "") {
		return b
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return b
	}
	if len(k.JWKS) > 0 {
		m["jwks"] = k.JWKS
	}
	if k.Alg != "" {
		m["token_endpoint_auth_signing_alg"], _ = json.Marshal(k.Alg)
	}
	out, _ := json.Marshal(m)
	return out
}

// validateMetadata checks and completes client metadata (registration and
// metadata documents alike).
func validateMetadata(m *oauthex.ClientRegistrationMetadata) error {
	if len(m.RedirectURIs) == 0 || len(m.RedirectURIs) > 10 {
		return errors.New("redirect_uris must list 1 to 10 URIs")
	}
	for _, u := range m.RedirectURIs {
		if len(u) > 2000 {
			return errors.New("a redirect URI is longer than 2000 characters")
		}
		if err := checkRedirect(u); err != nil {
			return err
		}
	}
	switch m.TokenEndpointAuthMethod {
	case "":
		m.TokenEndpointAuthMethod = string(oidc.AuthMethodBasic) // RFC 7591 §2
	case string(oidc.AuthMethodNone), string(oidc.AuthMethodBasic), string(oidc.AuthMethodPost), string(oidc.AuthMethodPrivateKeyJWT):
	default:
		return fmt.Errorf("token_endpoint_auth_method %q is not supported (none, client_secret_basic, client_secret_post, private_key_jwt)", m.TokenEndpointAuthMethod)
	}
	for _, g := range m.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return fmt.Errorf("grant type %q is not supported", g)
		}
	}
	for _, t := range m.ResponseTypes {
		if t != "code" {
			return fmt.Errorf("response type %q is not supported", t)
		}
	}
	if len(m.ClientName) > 200 {
		m.ClientName = m.ClientName[:200]
	}
	return nil
}

// setKeys sets the authentication of c from client metadata: method,
// and for private_key_jwt its keys (jwks, inline, or jwks_uri: exactly one)
// and signing algorithm. Keys are read whatever the method: metadata that
// publishes a private or symmetric key is refused even where it would not
// be used.
func (c *client) setKeys(method string, jwks json.RawMessage, jwksURI, alg string) error {
	c.method = oidc.AuthMethod(method)
	if len(jwks) > 0 && string(jwks) != "null" {
		keys, err := parseJWKS(jwks)
		if err != nil {
			return err
		}
		c.jwks = keys
	}
	if c.method != oidc.AuthMethodPrivateKeyJWT {
		return nil
	}
	switch {
	case (c.jwks != nil) == (jwksURI != ""):
		return errors.New("private_key_jwt needs exactly one of jwks and jwks_uri")
	case jwksURI != "":
		if err := checkJWKSURI(jwksURI); err != nil {
			return err
		}
		c.jwksURI = jwksURI
	}
	if alg != "" {
		if !slices.Contains(AssertionAlgs, jose.SignatureAlgorithm(alg)) {
			return fmt.Errorf("token_endpoint_auth_signing_alg %q is not supported (RS256, PS256, ES256, EdDSA)", alg)
		}
		c.signAlg = alg
	}
	return nil
}

// cimd fetches and caches client ID metadata documents.
type cimd struct {
	hc      *http.Client
	now     func() time.Time
	timeout time.Duration // of one fetch, all of it
	flight  singleflight.Group

	mu    sync.Mutex
	cache map[string]cimdEntry
	keys  map[string]keySet // by jwks_uri
}

type cimdEntry struct {
	c       *client
	err     error
	expires time.Time
}

const (
	cimdMaxBytes = 64 << 10
	cimdTTL      = 5 * time.Minute
	cimdErrTTL   = 30 * time.Second
	cimdMaxCache = 1000
)

func newCIMD(allowPrivate bool, roots *x509.CertPool, now func() time.Time) *cimd {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if !allowPrivate {
		d.Control = publicOnly
	}
	tr := &http.Transport{
		DialContext:           d.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 5 * time.Second,
		MaxIdleConns:          16,
		IdleConnTimeout:       30 * time.Second,
	}
	return &cimd{
		hc: &http.Client{
			Transport:     tr,
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now:     now,
		timeout: 10 * time.Second,
		cache:   map[string]cimdEntry{},
		keys:    map[string]keySet{},
	}
}

// notPublic is every range of the IANA special-purpose address registries
// (IPv4 and IPv6) that is not globally reachable, plus the translation
// and tunnelling prefixes that embed such an address (NAT64, 6to4,
// Teredo): a client metadata document is fetched only from the public
// internet.
var notPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		// IPv4 (RFC 6890 and the registry since)
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24", "192.88.99.0/24", "192.168.0.0/16",
		"192.175.48.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"255.255.255.255/32",
		// IPv6
		"::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
		"2001::/32", "2001:2::/48", "2001:db8::/32", "2001:10::/28", "2001:20::/28", "2002::/16", "3fff::/20",
		"5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// isPublic reports whether ip is a globally reachable unicast address.
func isPublic(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// publicOnly refuses connections to any address that is not public
// (isPublic), checked on the resolved address, so DNS cannot point a
// document at the relay's own network.
func publicOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return err
	}
	if !isPublic(ip) {
		return fmt.Errorf("client metadata document at %s: address not public", ip.Unmap())
	}
	return nil
}

// checkCIMDURL applies the client ID metadata document rules to a
// client_id: https, a path, no fragment, no credentials, no dot segments.
func checkCIMDURL(id string) error {
	u, err := url.Parse(id)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" || u.RawQuery != "" ||
		u.Path == "" || u.Path == "/" || strings.Contains(u.Path, "/./") || strings.Contains(u.Path, "/../") ||
		strings.HasSuffix(u.Path, "/.") || strings.HasSuffix(u.Path, "/..") || len(id) > 2000 {
		return fmt.Errorf("client_id %q is neither a registered client nor an https metadata document URL with a path", id)
	}
	return nil
}

func (m *cimd) get(ctx context.Context, id string) (*client, error) {
	if err := checkCIMDURL(id); err != nil {
		return nil, err
	}
	now := m.now()
	m.mu.Lock()
	e, ok := m.cache[id]
	m.mu.Unlock()
	if ok && e.expires.After(now) {
		return e.c, e.err
	}
	// Concurrent requests for one document share one fetch, on a context
	// of its own (the first requester leaving does not fail the others).
	v, err, _ := m.flight.Do(id, func() (any, error) { return m.load(context.WithoutCancel(ctx), id) })
	c, _ := v.(*client)
	e = cimdEntry{c: c, err: err, expires: now.Add(cimdTTL)}
	if err != nil {
		e.expires = now.Add(cimdErrTTL)
	}
	m.mu.Lock()
	putBounded(m.cache, id, e, cimdMaxCache, now, func(e cimdEntry) time.Time { return e.expires })
	m.mu.Unlock()
	return c, err
}

// putBounded stores v in a map a peer can grow: at max entries, the
// expired ones go, and if that is not enough, all of them (a flood never
// grows memory; callers recompute what they lose).
func putBounded[V any](m map[string]V, k string, v V, max int, now time.Time, expires func(V) time.Time) {
	if len(m) >= max {
		for key, old := range m {
			if !expires(old).After(now) {
				delete(m, key)
			}
		}
		if len(m) >= max {
			clear(m)
		}
	}
	m[k] = v
}

func (m *cimd) load(ctx context.Context, id string) (*client, error) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := m.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client metadata document %s: %w", id, err)
	}
	defer resp.Body.Close()
	// What the document's server answers is not echoed (its status text
	// and content type are its own words, and pages show these errors).
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("client metadata document %s: its server answered with an error, not the document", id)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil, fmt.Errorf("client metadata document %s: not JSON (its content type must be application/json)", id)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, cimdMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("client metadata document %s: %w", id, err)
	}
	if len(body) > cimdMaxBytes {
		return nil, fmt.Errorf("client metadata document %s is larger than %d bytes", id, cimdMaxBytes)
	}
	var doc struct {
		oauthex.ClientRegistrationMetadata
		ClientID     string          `json:"client_id"`
		ClientSecret string          `json:"client_secret"`
		JWKS         json.RawMessage `json:"jwks"`
		SigningAlg   string          `json:"token_endpoint_auth_signing_alg"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("client metadata document %s: %w", id, err)
	}
	if doc.ClientID != id {
		return nil, fmt.Errorf("client metadata document %s names client_id %q", id, doc.ClientID)
	}
	if doc.ClientSecret != "" {
		return nil, fmt.Errorf("client metadata document %s carries a client_secret", id)
	}
	if m := doc.TokenEndpointAuthMethod; m != "" && m != string(oidc.AuthMethodNone) && m != string(oidc.AuthMethodPrivateKeyJWT) {
		// Shared secrets are what a public document cannot hold (the
		// draft forbids client_secret_*); a signed assertion proves
		// possession of a key the document only names.
		return nil, fmt.Errorf("client metadata document %s: token_endpoint_auth_method %q is not supported (none, private_key_jwt)", id, m)
	}
	if doc.TokenEndpointAuthMethod == "" {
		doc.TokenEndpointAuthMethod = string(oidc.AuthMethodNone)
	}
	if err := validateMetadata(&doc.ClientRegistrationMetadata); err != nil {
		return nil, fmt.Errorf("client metadata document %s: %w", id, err)
	}
	c := &client{id: id, method: oidc.AuthMethodNone}
	if err := c.setKeys(doc.TokenEndpointAuthMethod, doc.JWKS, doc.JWKSURI, doc.SigningAlg); err != nil {
		return nil, fmt.Errorf("client metadata document %s: %w", id, err)
	}
	c.name = doc.ClientName
	if c.name == "" {
		c.name = id
	}
	c.redirects = slices.Clone(doc.RedirectURIs)
	return c, nil
}

// sourceIP is the request's remote address without its port.
func sourceIP(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// clip is s's first n bytes, on a rune boundary, for messages that echo
// what a caller sent.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
