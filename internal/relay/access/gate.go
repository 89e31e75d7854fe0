package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// IdentityHeader carries the relay's signed assertion of who a request
// comes from; it replaces the Authorization header on the way to the app.
const IdentityHeader = "X-Pomdev-Identity"

// verdict is a verified access token, cached until it expires or anything
// is revoked.
type verdict struct {
	route, owner, client, grant string
	sub, email                  string // the person, with an identity provider
	scopes                      []string
	expires                     time.Time
	identity                    string
}

// maxTokenLen bounds the tokens looked at; this relay's are about 255
// bytes.
const maxTokenLen = 1024

// maxVerdicts bounds the cache; past it, expired entries go, then all.
const maxVerdicts = 8192

// forgetVerdicts drops the cached verdicts after tokens were revoked here,
// and tells the other relays of the store.
func (s *Server) forgetVerdicts() {
	s.ForgetVerdicts()
	if s.cfg.Revoked != nil {
		s.cfg.Revoked()
	}
}

// ForgetVerdicts drops the cached verdicts: every token is verified
// against the store again (another relay revoked some).
func (s *Server) ForgetVerdicts() {
	s.mu.Lock()
	clear(s.verdicts)
	s.mu.Unlock()
}

// trustCache reports whether cached verdicts may be used.
func (s *Server) trustCache() bool { return s.cfg.TrustCache == nil || s.cfg.TrustCache() }

// ErrStoreDown is a token that could not be checked: the store did not
// answer. The gate answers 503, not 401: the token may be good.
var ErrStoreDown = errors.New("the relay cannot reach its store to check the token; retry shortly")

func (s *Server) dropExpiredVerdicts() {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.verdicts {
		if !v.expires.After(now) {
			delete(s.verdicts, k)
		}
	}
}

// PRMPath reports whether path is a protected-resource metadata document.
func PRMPath(path string) bool {
	return path == PathPRM || strings.HasPrefix(path, PathPRM+"/")
}

// ServePRM serves RFC 9728 metadata for route.
func (s *Server) ServePRM(w http.ResponseWriter, r *http.Request, route string) {
	auth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
		Resource:               s.cfg.Resolver.Resource(route),
		AuthorizationServers:   []string{s.cfg.Issuer},
		ScopesSupported:        []string{Scope},
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "pomdev tunnel " + route,
	}).ServeHTTP(w, r)
}

// Gate lets a request on route through to next only with a valid access
// token for it: no token, or one that is invalid, expired, revoked, for
// another route or from the route's previous owner, gets 401 with the
// challenge that leads a client to this relay's authorization server.
// next sees the request without Authorization and with the identity
// assertion.
//
// owner is the fingerprint of the key holding route now (the caller has
// the live route at hand); "" asks the Resolver.
func (s *Server) Gate(w http.ResponseWriter, r *http.Request, route, owner string, next func(*http.Request, Caller)) {
	if owner == "" {
		owner = s.cfg.Resolver.Owner(route)
	}
	if v := s.cached(r, route, owner); v != nil {
		pass(r, v, next)
		return
	}
	opts := s.bearerOptions(route)
	cw := &challengeWriter{ResponseWriter: w, hadToken: r.Header.Get("Authorization") != ""}
	var v *verdict // what verify found, for the handler below
	verify := func(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		var err error
		if v, err = s.verifyFor(ctx, token, route, owner); err != nil {
			cw.why = err.Error()
			cw.storeDown = errors.Is(err, ErrStoreDown)
			return nil, err
		}
		return &auth.TokenInfo{Scopes: v.scopes, Expiration: v.expires, UserID: v.owner}, nil
	}
	auth.RequireBearerToken(verify, opts)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		pass(r, v, next)
	})).ServeHTTP(cw, r)
	if cw.code == http.StatusUnauthorized || cw.code == http.StatusForbidden {
		why := cw.why
		if why == "" {
			why = "no bearer token"
		}
		s.audit.add(Entry{Kind: "refused", Route: route, Decision: "deny", Status: cw.code, Reason: why, Source: sourceIP(r)})
	}
}

// cached is the verdict on the request's token when the go-sdk middleware
// already let the same token through and nothing has changed since: the
// token is in the cache (verified, and nothing revoked since), written as
// "Bearer <token>", not expired, for this route and its present owner,
// with the scope. Anything else (a new token, one that fails, another
// spelling of the header) goes through the middleware, which verifies it
// and writes the challenge.
func (s *Server) cached(r *http.Request, route, owner string) *verdict {
	h := r.Header["Authorization"]
	if len(h) == 0 {
		return nil
	}
	scheme, token, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > maxTokenLen {
		return nil
	}
	if !s.trustCache() {
		return nil
	}
	s.mu.Lock()
	v := s.verdicts[token]
	s.mu.Unlock()
	if v == nil || !v.expires.After(s.cfg.Now()) || v.route != route || v.owner != owner || !slices.Contains(v.scopes, Scope) {
		return nil
	}
	return v
}

// pass hands a request with a valid token on: without Authorization, with
// the identity assertion.
func pass(r *http.Request, v *verdict, next func(*http.Request, Caller)) {
	r.Header.Del("Authorization")
	r.Header.Set(IdentityHeader, v.identity)
	c := Caller{Route: v.route, Client: v.client, Grant: v.grant, Owner: v.owner}
	if v.sub != "" {
		c.Person = Person{Sub: v.sub, Email: v.email}.String()
	}
	next(r, c)
}

// bearerOptions are the go-sdk middleware's options for route (its
// challenge names the route's metadata), made once per route name.
func (s *Server) bearerOptions(route string) *auth.RequireBearerTokenOptions {
	if o, ok := s.bearer.Load(route); ok {
		return o.(*auth.RequireBearerTokenOptions)
	}
	prm := strings.TrimSuffix(s.cfg.Resolver.Resource(route), "/mcp")
	o := &auth.RequireBearerTokenOptions{ResourceMetadataURL: prm + PathPRM + "/mcp", Scopes: []string{Scope}}
	if s.bearerN.Add(1) > maxVerdicts {
		// Route names are many only under a flood: start over.
		s.bearer.Clear()
		s.bearerN.Store(1)
	}
	s.bearer.Store(route, o)
	return o
}

// challengeWriter adds the RFC 6750 error code to the go-sdk's challenge
// when a token was presented.
type challengeWriter struct {
	http.ResponseWriter
	hadToken  bool
	storeDown bool
	code      int
	why       string
}

func (c *challengeWriter) WriteHeader(code int) {
	if c.storeDown && code == http.StatusInternalServerError {
		code = http.StatusServiceUnavailable
		c.Header().Set("Retry-After", "2")
	}
	c.code = code
	h := c.Header()
	if v := h.Get("WWW-Authenticate"); strings.HasPrefix(v, "Bearer ") {
		switch {
		case code == http.StatusUnauthorized && c.hadToken:
			h.Set("WWW-Authenticate", `Bearer error="invalid_token", `+v[len("Bearer "):])
		case code == http.StatusForbidden:
			h.Set("WWW-Authenticate", `Bearer error="insufficient_scope", `+v[len("Bearer "):])
		}
	}
	c.ResponseWriter.WriteHeader(code)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", auth.ErrInvalidToken, fmt.Sprintf(format, args...))
}

func (s *Server) verify(ctx context.Context, token, route string) (*verdict, error) {
	return s.verifyFor(ctx, token, route, "")
}

// verifyFor is verify with the route's current owner known ("" to look it
// up).
func (s *Server) verifyFor(ctx context.Context, token, route, owner string) (*verdict, error) {
	now := s.cfg.Now()
	var v *verdict
	if s.trustCache() {
		s.mu.Lock()
		v = s.verdicts[token]
		s.mu.Unlock()
	}
	if v == nil {
		var err error
		if v, err = s.load(ctx, token, now); err != nil {
			return nil, err
		}
	}
	if !v.expires.After(now) {
		return nil, invalid("token expired")
	}
	if v.route != route {
		return nil, invalid("token is for another tunnel")
	}
	if owner == "" {
		owner = s.cfg.Resolver.Owner(route)
	}
	if owner != v.owner {
		return nil, invalid("the tunnel's address belongs to another key now")
	}
	return v, nil
}

// load verifies a token not in the cache: op's sealing (AES-GCM), then the
// store.
func (s *Server) load(ctx context.Context, token string, now time.Time) (*verdict, error) {
	if len(token) > maxTokenLen {
		return nil, invalid("token too long")
	}
	plain, err := s.provider.Crypto().Decrypt(token)
	if err != nil {
		return nil, invalid("token not issued by this relay")
	}
	id, _, ok := strings.Cut(plain, ":")
	if !ok {
		return nil, invalid("token not issued by this relay")
	}
	t, err := s.st.token(ctx, id)
	if err != nil && !errors.Is(err, errNotFound) {
		s.log.Warn("cannot check a token: the store did not answer", "err", err)
		return nil, ErrStoreDown
	}
	if err != nil || t.Kind != kindAccess {
		return nil, invalid("unknown token")
	}
	if t.Revoked {
		return nil, invalid("token revoked")
	}
	if !t.Expires.After(now) {
		return nil, invalid("token expired")
	}
	v := &verdict{route: t.Route, owner: t.Owner, client: t.ClientID, grant: t.Grant, scopes: t.Scopes, expires: t.Expires, sub: t.Sub, email: t.Email}
	if v.identity, err = s.identity(v, now); err != nil {
		return nil, err
	}
	s.mu.Lock()
	putBounded(s.verdicts, token, v, maxVerdicts, now, func(v *verdict) time.Time { return v.expires })
	s.mu.Unlock()
	return v, nil
}

// Identity is the claims of the assertion an app receives.
type Identity struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Owner    string `json:"owner"` // the route owner's key fingerprint, who approved
	Grant    string `json:"grant"`
	Route    string `json:"route"`
	// User and Email are the person who signed in at the relay's identity
	// provider (--http-auth oidc), their subject there and verified email.
	User  string `json:"user,omitempty"`
	Email string `json:"email,omitempty"`
}

// identity signs the assertion for v, valid as long as its token.
func (s *Server) identity(v *verdict, now time.Time) (string, error) {
	sig, err := s.keys.signer()
	if err != nil {
		return "", err
	}
	c := Identity{
		Claims: jwt.Claims{
			Issuer:   s.cfg.Issuer,
			Subject:  v.client,
			Audience: jwt.Audience{s.cfg.Resolver.Resource(v.route)},
			IssuedAt: jwt.NewNumericDate(now),
			Expiry:   jwt.NewNumericDate(v.expires),
		},
		ClientID: v.client, Owner: v.owner, Grant: v.grant, Route: v.route, User: v.sub, Email: v.email,
	}
	return jwt.Signed(sig).Claims(c).Serialize()
}

// VerifyIdentity checks an assertion against this relay's key (tests and
// apps in Go; others use the JWKS).
func (s *Server) VerifyIdentity(raw, audience string) (*Identity, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, err
	}
	var c Identity
	if err := tok.Claims(&s.keys.signing.PublicKey, &c); err != nil {
		return nil, err
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: s.cfg.Issuer, AnyAudience: jwt.Audience{audience}, Time: s.cfg.Now()}, time.Minute); err != nil {
		return nil, err
	}
	return &c, nil
}

// MarshalRequest is a Request as a JSON line.
func MarshalRequest(r Request) []byte {
	b, _ := json.Marshal(r)
	return b
}

// OwnerClient is the client of tokens minted for a route's owner (pomdev
// checking its own tunnel).
const OwnerClient = "pomdev (owner)"

// MintOwner issues an access token for route to its owner, with no
// approval: the owner proves the key over SSH. It is not tied to any
// grant and lives AccessTTL.
func (s *Server) MintOwner(ctx context.Context, route, owner string) (string, time.Time, error) {
	if owner == "" || s.cfg.Resolver.Owner(route) != owner {
		return "", time.Time{}, fmt.Errorf("route %s does not belong to this key", route)
	}
	now := s.cfg.Now()
	id := random(18)
	t := tokenRow{Kind: kindAccess, Grant: "owner", Family: random(12), Route: route, Owner: owner, ClientID: OwnerClient,
		Scopes: []string{Scope}, AuthTime: now, Expires: now.Add(s.cfg.AccessTTL)}
	tx, err := s.st.db.BeginTx(ctx, nil)
	if err != nil {
		return "", time.Time{}, err
	}
	defer tx.Rollback()
	if err := s.st.addToken(ctx, tx, id, t); err != nil {
		return "", time.Time{}, err
	}
	if err := tx.Commit(); err != nil {
		return "", time.Time{}, err
	}
	tok, err := op.CreateBearerToken(id, subjectOf(owner), s.provider.Crypto())
	return tok, t.Expires, err
}
