package access

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/net/publicsuffix"
)

// Client authentication with a signed assertion (private_key_jwt, RFC 7523
// §2.2 and §3) for clients identified by a metadata document: ChatGPT's
// document names this method, an RS256 key and a jwks_uri. The assertion is
// verified here (go-jose) under rules stricter than op's own (an algorithm
// allowlist, the token endpoint as audience, a ten-minute lifetime, jti
// used once); op then sees a client authenticated for this one request
// (assertedSecret), so its code, refresh, revocation and introspection
// logic stays its own.

// AssertionAlgs are the signature algorithms accepted in client assertions:
// asymmetric only (never none or an HMAC, whose "secret" would be the
// client's public key).
var AssertionAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

const (
	// AssertionMaxLifetime is the longest an assertion may live, from its
	// iat (or from now, without one) to its exp.
	AssertionMaxLifetime = 10 * time.Minute
	// AssertionLeeway is the clock skew allowed on exp, nbf and iat.
	AssertionLeeway = 30 * time.Second

	maxAssertionBytes = 8 << 10
	maxJTIBytes       = 256
	jwksMaxBytes      = 64 << 10
	jwksMaxKeys       = 20
	// jwksMinRefresh spaces the fetches of one jwks_uri that an unknown
	// kid may cause: anyone can send an assertion with a made-up kid.
	jwksMinRefresh = 30 * time.Second
	// Bounds of the spent assertion IDs kept until their exp: per site (the
	// registrable domain of the client_id: a host's many documents count
	// together) and in all. Full, new assertions are refused until the
	// oldest expire (within AssertionMaxLifetime): a replay is never let
	// through to make room.
	maxJTIPerSite = 5_000
	maxJTI        = 200_000
)

// ClientAssertionType is the client_assertion_type of a JWT assertion.
const ClientAssertionType = oidc.ClientAssertionTypeJWTAssertion

// keySet is a client's public keys.
type keySet struct {
	keys    []jose.JSONWebKey
	fetched time.Time
	expires time.Time
}

// parseJWKS reads a JSON Web Key Set a client publishes: public
// asymmetric keys only. A set holding a private or a symmetric key is
// refused whole: its owner has published what must stay secret, and
// nothing it signs can be trusted.
func parseJWKS(raw []byte) ([]jose.JSONWebKey, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("its JWKS is not a JSON Web Key Set: %w", err)
	}
	if len(set.Keys) == 0 || len(set.Keys) > jwksMaxKeys {
		return nil, fmt.Errorf("its JWKS must hold 1 to %d keys, not %d", jwksMaxKeys, len(set.Keys))
	}
	for _, k := range set.Keys {
		switch k.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		case []byte:
			return nil, errors.New("its JWKS holds a symmetric key (key material must never be published)")
		default:
			if !k.IsPublic() {
				return nil, errors.New("its JWKS holds a private key (key material must never be published)")
			}
			return nil, fmt.Errorf("its JWKS holds a key of an unsupported type (%T)", k.Key)
		}
	}
	return set.Keys, nil
}

// checkJWKSURI applies the document fetch rules to a jwks_uri: https, no
// credentials, no fragment.
func checkJWKSURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" || len(raw) > 2000 {
		return fmt.Errorf("jwks_uri %q is not an https URL without credentials or fragment", raw)
	}
	return nil
}

// keysOf is client c's keys: its inline jwks, or its jwks_uri's, cached
// like documents; refresh fetches them again (an unknown kid: the client
// may have rotated), at most once per jwksMinRefresh.
func (m *cimd) keysOf(ctx context.Context, c *client, refresh bool) ([]jose.JSONWebKey, error) {
	if c.jwks != nil {
		return c.jwks, nil
	}
	if c.jwksURI == "" {
		return nil, errors.New("the client's metadata document has neither jwks nor jwks_uri")
	}
	now := m.now()
	m.mu.Lock()
	e, ok := m.keys[c.jwksURI]
	m.mu.Unlock()
	if ok && e.expires.After(now) && (!refresh || now.Sub(e.fetched) < jwksMinRefresh) {
		return e.keys, nil
	}
	v, err, _ := m.flight.Do("jwks "+c.jwksURI, func() (any, error) { return m.loadJWKS(context.WithoutCancel(ctx), c.jwksURI) })
	if err != nil {
		if ok && e.expires.After(now) {
			return e.keys, nil // a failed refresh keeps the keys that work
		}
		return nil, err
	}
	keys := v.([]jose.JSONWebKey)
	m.mu.Lock()
	putBounded(m.keys, c.jwksURI, keySet{keys: keys, fetched: now, expires: now.Add(cimdTTL)}, cimdMaxCache, now,
		func(k keySet) time.Time { return k.expires })
	m.mu.Unlock()
	return keys, nil
}

func (m *cimd) loadJWKS(ctx context.Context, uri string) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := m.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client JWKS %s: %w", uri, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("client JWKS %s: its server answered with an error, not the keys", uri)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil, fmt.Errorf("client JWKS %s: not JSON (its content type must be application/json or application/jwk-set+json)", uri)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("client JWKS %s: %w", uri, err)
	}
	if len(body) > jwksMaxBytes {
		return nil, fmt.Errorf("client JWKS %s is larger than %d bytes", uri, jwksMaxBytes)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("client JWKS %s: %s", uri, strings.TrimPrefix(err.Error(), "its JWKS "))
	}
	return keys, nil
}

// fits reports whether key k may verify a signature made with alg.
func fits(k jose.JSONWebKey, kid string, alg jose.SignatureAlgorithm) bool {
	if (kid != "" && k.KeyID != kid) || (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != string(alg)) {
		return false
	}
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		return (alg == jose.RS256 || alg == jose.PS256) && key.N.BitLen() >= 2048
	case *ecdsa.PublicKey:
		return alg == jose.ES256 && key.Curve == elliptic.P256()
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// spentJTIs are the IDs of assertions already presented, until they
// expire: an assertion authenticates one request.
type spentJTIs struct {
	mu     sync.Mutex
	bySite map[string]map[string]time.Time // site -> jti hash -> expiry
	n      int
}

func newSpentJTIs() *spentJTIs { return &spentJTIs{bySite: map[string]map[string]time.Time{}} }

var errJTIFull = errors.New("too many client assertions are in use right now; retry in a few minutes")

// spend records client's jti until exp; false when it was spent before.
func (j *spentJTIs) spend(client, jti string, exp, now time.Time) (bool, error) {
	site := siteOf(client)
	sum := sha256.Sum256([]byte(client + "\x00" + jti))
	key := hex.EncodeToString(sum[:16])
	j.mu.Lock()
	defer j.mu.Unlock()
	m := j.bySite[site]
	if old, ok := m[key]; ok && old.After(now) {
		return false, nil
	}
	if len(m) >= maxJTIPerSite || j.n >= maxJTI {
		j.sweepLocked(now)
		m = j.bySite[site]
		if len(m) >= maxJTIPerSite || j.n >= maxJTI {
			return false, errJTIFull
		}
	}
	if m == nil {
		m = map[string]time.Time{}
		j.bySite[site] = m
	}
	if _, ok := m[key]; !ok {
		j.n++
	}
	m[key] = exp
	return true, nil
}

func (j *spentJTIs) sweepLocked(now time.Time) {
	for site, m := range j.bySite {
		for k, exp := range m {
			if !exp.After(now) {
				delete(m, k)
				j.n--
			}
		}
		if len(m) == 0 {
			delete(j.bySite, site)
		}
	}
}

func (j *spentJTIs) sweep(now time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.sweepLocked(now)
}

// siteOf is the registrable domain of a client_id URL's host (its eTLD+1),
// or the host itself when it has none (an address, localhost).
func siteOf(id string) string {
	if isDynamic(id) {
		return "registered " + id
	}
	u, err := url.Parse(id)
	if err != nil {
		return id
	}
	h := strings.ToLower(u.Hostname())
	if s, err := publicsuffix.EffectiveTLDPlusOne(h); err == nil {
		return s
	}
	return h
}

// clientAuthError is an invalid_client answer (RFC 6749 §5.2: 401).
type clientAuthError struct{ msg string }

func (e *clientAuthError) Error() string { return e.msg }

func invalidClient(format string, a ...any) error {
	return &clientAuthError{msg: fmt.Sprintf(format, a...)}
}

// verifyAssertion checks a client assertion presented at endpoint (a URL
// of the relay) and returns the client it authenticates.
func (s *Server) verifyAssertion(ctx context.Context, assertion, endpoint string) (*client, error) {
	if len(assertion) > maxAssertionBytes {
		return nil, invalidClient("the client assertion is larger than %d bytes", maxAssertionBytes)
	}
	tok, err := jwt.ParseSigned(assertion, AssertionAlgs)
	if err != nil {
		return nil, invalidClient("the client assertion is not a JWT signed with RS256, PS256, ES256 or EdDSA: %v", err)
	}
	if len(tok.Headers) != 1 {
		return nil, invalidClient("the client assertion must carry one signature")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, invalidClient("the client assertion's claims: %v", err)
	}
	id := unverified.Issuer
	if id == "" {
		return nil, invalidClient("the client assertion has no iss (it must be the client_id)")
	}
	c, err := s.client(ctx, id)
	if err != nil {
		return nil, invalidClient("%v", err)
	}
	if c.method != oidc.AuthMethodPrivateKeyJWT {
		return nil, invalidClient("the client authenticates with %q, not private_key_jwt", c.method)
	}
	h := tok.Headers[0]
	alg := jose.SignatureAlgorithm(h.Algorithm)
	if c.signAlg != "" && alg != jose.SignatureAlgorithm(c.signAlg) {
		return nil, invalidClient("the client assertion is signed with %s; the client's document says %s", alg, c.signAlg)
	}
	var claims jwt.Claims
	verified := false
	for attempt := 0; attempt < 2 && !verified; attempt++ {
		keys, err := s.fetch.keysOf(ctx, c, attempt == 1)
		if err != nil {
			return nil, invalidClient("%v", err)
		}
		for _, k := range keys {
			if fits(k, h.KeyID, alg) && tok.Claims(k.Key, &claims) == nil {
				verified = true
				break
			}
		}
		if c.jwks != nil {
			break // inline keys do not change until the document does
		}
	}
	if !verified {
		if h.KeyID != "" {
			return nil, invalidClient("no key of the client (kid %q, %s) verifies the client assertion", h.KeyID, alg)
		}
		return nil, invalidClient("no key of the client verifies the client assertion (%s)", alg)
	}
	now := s.cfg.Now()
	switch {
	case claims.Issuer != id || claims.Subject != id:
		return nil, invalidClient("the client assertion's iss and sub must both be the client_id")
	case claims.Expiry == nil:
		return nil, invalidClient("the client assertion has no exp")
	case claims.ID == "" || len(claims.ID) > maxJTIBytes:
		return nil, invalidClient("the client assertion needs a jti of at most %d bytes (it is used once)", maxJTIBytes)
	}
	aud := []string{s.cfg.Issuer + PathToken, s.cfg.Issuer, s.cfg.Issuer + "/"}
	if endpoint != s.cfg.Issuer+PathToken {
		aud = append(aud, endpoint)
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{AnyAudience: aud, Time: now}, AssertionLeeway); err != nil {
		return nil, invalidClient("the client assertion: %v (its aud must be %s)", err, s.cfg.Issuer+PathToken)
	}
	exp := claims.Expiry.Time()
	start := now
	if claims.IssuedAt != nil {
		start = claims.IssuedAt.Time()
	}
	if exp.Sub(start) > AssertionMaxLifetime+AssertionLeeway {
		return nil, invalidClient("the client assertion lives longer than %s", AssertionMaxLifetime)
	}
	fresh, err := s.jtis.spend(id, claims.ID, exp.Add(AssertionLeeway), now)
	if err != nil {
		return nil, err
	}
	if !fresh {
		s.audit.add(Entry{Kind: "token", Client: id, Decision: "refused", Reason: "client assertion replayed (jti used before)"})
		return nil, invalidClient("the client assertion was used before (its jti is spent)")
	}
	return c, nil
}

// authenticateClient enforces the client's own authentication method on
// a request to an endpoint that authenticates clients (token, revocation,
// introspection), before op sees it. An assertion is verified here and
// replaced by a credential good for this request only (the context's
// reqInfo), which op checks through storage as it would a secret. A
// client whose document says private_key_jwt gets nothing without one.
func (s *Server) authenticateClient(r *http.Request, info *reqInfo, endpoint string) error {
	f := r.Form
	assertion, atype := f.Get("client_assertion"), f.Get("client_assertion_type")
	if assertion == "" && atype == "" {
		id := f.Get("client_id")
		if u, _, ok := r.BasicAuth(); ok {
			if d, err := url.QueryUnescape(u); err == nil {
				id = d
			}
		}
		if id == "" {
			return nil // op answers that the client is missing
		}
		c, err := s.client(r.Context(), id)
		if err != nil {
			if isDynamic(id) {
				return nil // op answers for an unknown registration
			}
			return invalidClient("%v", err)
		}
		if c.method == oidc.AuthMethodPrivateKeyJWT {
			return invalidClient("this client authenticates with private_key_jwt: send client_assertion_type %s and a client_assertion", ClientAssertionType)
		}
		return nil
	}
	if atype != ClientAssertionType {
		return invalidClient("client_assertion_type must be %s", ClientAssertionType)
	}
	if assertion == "" {
		return invalidClient("client_assertion is missing")
	}
	if _, _, ok := r.BasicAuth(); ok || f.Get("client_secret") != "" {
		return invalidClient("a client authenticates with one method per request (RFC 6749 §2.3)")
	}
	c, err := s.verifyAssertion(r.Context(), assertion, endpoint)
	if err != nil {
		return err
	}
	if id := f.Get("client_id"); id != "" && id != c.id {
		return invalidClient("client_id differs from the client assertion's iss")
	}
	// op authenticates the request with a secret made for it alone.
	secret := random(24)
	info.asserted, info.assertedSecret = c, secret
	for _, k := range []string{"client_assertion", "client_assertion_type", "client_id", "client_secret"} {
		f.Del(k)
		r.PostForm.Del(k)
	}
	r.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(secret))
	return nil
}

// assertedSecretOK reports whether secret is the one-request credential of
// an assertion verified for id.
func assertedSecretOK(ctx context.Context, id, secret string) bool {
	info := infoFrom(ctx)
	return info != nil && info.asserted != nil && info.asserted.id == id &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(info.assertedSecret)) == 1
}
