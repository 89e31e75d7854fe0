package access

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// keyHost serves client metadata documents and their JWKS over TLS, as a
// host such as chatgpt.com does: documents by path, keys at /jwks.json
// (replaceable), and it counts the fetches of the keys.
type keyHost struct {
	*httptest.Server
	mu    sync.Mutex
	docs  map[string]string // path -> document (SELF: the document's URL, JWKS: the keys' URL)
	jwks  string
	ctype string
	hits  int
	stall chan struct{} // closed when a stalled JWKS fetch may end
}

func newKeyHost(t testing.TB) *keyHost {
	h := &keyHost{docs: map[string]string{}, ctype: "application/json", stall: make(chan struct{})}
	h.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		doc, isDoc := h.docs[r.URL.Path]
		jwks, ctype := h.jwks, h.ctype
		if r.URL.Path == "/jwks.json" || r.URL.Path == "/slow-jwks.json" {
			h.hits++
		}
		h.mu.Unlock()
		switch {
		case isDoc:
			w.Header().Set("Content-Type", "application/json")
			base := "https://" + r.Host
			doc = strings.ReplaceAll(doc, "SELF", base+r.URL.Path)
			_, _ = w.Write([]byte(strings.ReplaceAll(doc, "JWKS", base+"/jwks.json")))
		case r.URL.Path == "/jwks.json":
			w.Header().Set("Content-Type", ctype)
			_, _ = w.Write([]byte(jwks))
		case r.URL.Path == "/slow-jwks.json":
			select {
			case <-h.stall:
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(func() { close(h.stall); h.Close() })
	return h
}

func (h *keyHost) set(f func(h *keyHost)) { h.mu.Lock(); f(h); h.mu.Unlock() }
func (h *keyHost) fetches() int           { h.mu.Lock(); defer h.mu.Unlock(); return h.hits }
func (h *keyHost) roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(h.Certificate())
	return p
}

// publicJWKS is the JWKS of the public halves of keys, by kid.
func publicJWKS(t testing.TB, keys map[string]any) string {
	t.Helper()
	var set jose.JSONWebKeySet
	for kid, k := range keys {
		var pub any
		switch k := k.(type) {
		case *rsa.PrivateKey:
			pub = &k.PublicKey
		case *ecdsa.PrivateKey:
			pub = &k.PublicKey
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: pub, KeyID: kid, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertion signs claims with key as kid.
func assertion(t testing.TB, key any, alg jose.SignatureAlgorithm, kid string, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unsigned is a JWT with header and claims as given and signature sig,
// made by hand: what an attacker sends (alg none, HS256 keyed with the
// public key).
func unsigned(t *testing.T, header map[string]string, claims any, sign func(input string) string) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return input + "." + sign(input)
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// assertionServer is a Server that fetches documents from host, with a
// settable clock.
func assertionServer(t *testing.T, host *keyHost) (*Server, *clock) {
	t.Helper()
	clk := &clock{t: time.Now()}
	s, err := New(Config{Issuer: "https://relay.example", StateDir: t.TempDir(), Resolver: oneRoute{}, Now: clk.now,
		AllowPrivateFetch: true, FetchRoots: host.roots()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.fetch.timeout = time.Second
	return s, clk
}

const chatGPTDoc = `{"client_id":"SELF","client_name":"ChatGPT","redirect_uris":["https://chatgpt.com/connector_platform_oauth_redirect"],
"grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"private_key_jwt",
"token_endpoint_auth_signing_alg":"RS256","jwks_uri":"JWKS"}`

// TestClientAssertionRefusals: every way an assertion can be wrong is
// refused with invalid_client, and a good one authenticates once.
func TestClientAssertionRefusals(t *testing.T) {
	host := newKeyHost(t)
	key := rsaKey(t)
	host.set(func(h *keyHost) {
		h.docs["/chatgpt.json"] = chatGPTDoc
		h.docs["/none.json"] = `{"client_id":"SELF","client_name":"Claude","redirect_uris":["https://claude.ai/api/mcp/auth_callback"],"token_endpoint_auth_method":"none"}`
		h.jwks = publicJWKS(t, map[string]any{"k1": key})
	})
	s, clk := assertionServer(t, host)
	id := host.URL + "/chatgpt.json"
	tokenURL := "https://relay.example" + PathToken
	now := clk.now()
	claims := func(mod func(c *jwt.Claims)) *jwt.Claims {
		c := &jwt.Claims{Issuer: id, Subject: id, Audience: jwt.Audience{tokenURL}, ID: random(12),
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute))}
		if mod != nil {
			mod(c)
		}
		return c
	}
	verify := func(a string) error {
		_, err := s.verifyAssertion(context.Background(), a, tokenURL)
		return err
	}

	good := assertion(t, key, jose.RS256, "k1", claims(nil))
	c, err := s.verifyAssertion(context.Background(), good, tokenURL)
	if err != nil || c.id != id {
		t.Fatalf("a good assertion: %v", err)
	}
	// aud may be the issuer too; PS256 with the same RSA key is not the
	// document's RS256.
	if err := verify(assertion(t, key, jose.RS256, "k1", claims(func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://relay.example"} }))); err != nil {
		t.Fatalf("aud = issuer: %v", err)
	}

	hs256 := func(secret []byte) func(string) string {
		return func(in string) string {
			m := hmac.New(sha256.New, secret)
			m.Write([]byte(in))
			return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
		}
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	other := rsaKey(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	for _, tc := range []struct {
		name, assertion, want string
	}{
		{"replayed jti", good, "used before"},
		{"wrong aud", assertion(t, key, jose.RS256, "k1", claims(func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://other.example/token"} })), "aud"},
		{"expired", assertion(t, key, jose.RS256, "k1", claims(func(c *jwt.Claims) {
			c.IssuedAt = jwt.NewNumericDate(now.Add(-10 * time.Minute))
			c.Expiry = jwt.NewNumericDate(now.Add(-time.Minute))
		})), "expired"},
		{"lives an hour", assertion(t, key, jose.RS256, "k1", claims(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(time.Hour)) })), "longer than"},
		{"no exp", assertion(t, key, jose.RS256, "k1", claims(func(c *jwt.Claims) { c.Expiry = nil })), "no exp"},
		{"no jti", assertion(t, key, jose.RS256, "k1", claims(func(c *jwt.Claims) { c.ID = "" })), "jti"},
		{"sub is not iss", assertion(t, key, jose.RS256, "k1", claims(func(c *jwt.Claims) { c.Subject = "someone" })), "sub"},
		{"alg none", unsigned(t, map[string]string{"alg": "none", "typ": "JWT"}, claims(nil), func(string) string { return "" }), "not a JWT signed"},
		{"HS256 keyed with the public key", unsigned(t, map[string]string{"alg": "HS256", "kid": "k1"}, claims(nil), hs256(pubPEM)), "not a JWT signed"},
		{"HS256 keyed with the modulus", unsigned(t, map[string]string{"alg": "HS256", "kid": "k1"}, claims(nil), hs256(key.N.Bytes())), "not a JWT signed"},
		{"kid not in the JWKS", assertion(t, key, jose.RS256, "k9", claims(nil)), `kid "k9"`},
		{"another key with the right kid", assertion(t, other, jose.RS256, "k1", claims(nil)), "verifies"},
		{"ES256 where the document says RS256", assertion(t, ec, jose.ES256, "k1", claims(nil)), "document says RS256"},
		{"client with method none", assertion(t, key, jose.RS256, "k1", claims(func(c *jwt.Claims) {
			c.Issuer, c.Subject = host.URL+"/none.json", host.URL+"/none.json"
		})), "not private_key_jwt"},
		{"unknown registration", assertion(t, key, jose.RS256, "k1", claims(func(c *jwt.Claims) { c.Issuer, c.Subject = "abc", "abc" })), "unknown client"},
		{"not a JWT", "a.b.c", "not a JWT signed"},
		{"too big", strings.Repeat("a", maxAssertionBytes+1), "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verify(tc.assertion)
			if _, ok := err.(*clientAuthError); !ok || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want invalid_client with %q", err, tc.want)
			}
		})
	}

	// The unknown kid fetched the keys once more; another within 30 s does
	// not (anyone can send made-up kids).
	fetched := host.fetches()
	if err := verify(assertion(t, key, jose.RS256, "k8", claims(nil))); err == nil {
		t.Fatal("unknown kid accepted")
	}
	if n := host.fetches(); n != fetched {
		t.Fatalf("a second unknown kid within %s fetched the keys again (%d -> %d)", jwksMinRefresh, fetched, n)
	}
	// The client rotates its key: once the spacing has passed, the new kid
	// is fetched and verifies.
	rotated := rsaKey(t)
	host.set(func(h *keyHost) { h.jwks = publicJWKS(t, map[string]any{"k2": rotated}) })
	clk.add(jwksMinRefresh + time.Second)
	now = clk.now()
	if err := verify(assertion(t, rotated, jose.RS256, "k2", claims(nil))); err != nil {
		t.Fatalf("a rotated key: %v", err)
	}
}

// TestClientKeysRules: what a document or a key set may hold and where
// keys may come from.
func TestClientKeysRules(t *testing.T) {
	host := newKeyHost(t)
	key := rsaKey(t)
	priv, _ := json.Marshal(jose.JSONWebKey{Key: key, KeyID: "k1"})
	sym, _ := json.Marshal(jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "s", Algorithm: "HS256"})
	host.set(func(h *keyHost) {
		h.docs["/private-inline.json"] = `{"client_id":"SELF","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[` + string(priv) + `]}}`
		h.docs["/private-none.json"] = `{"client_id":"SELF","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none","jwks":{"keys":[` + string(priv) + `]}}`
		h.docs["/symmetric.json"] = `{"client_id":"SELF","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[` + string(sym) + `]}}`
		h.docs["/both.json"] = `{"client_id":"SELF","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"JWKS","jwks":` + publicJWKS(t, map[string]any{"k": key}) + `}`
		h.docs["/neither.json"] = `{"client_id":"SELF","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`
		h.docs["/hs-alg.json"] = `{"client_id":"SELF","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"JWKS","token_endpoint_auth_signing_alg":"HS256"}`
		h.docs["/http-jwks.json"] = `{"client_id":"SELF","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"http://a.example/jwks"}`
		h.docs["/secret.json"] = `{"client_id":"SELF","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}`
		h.docs["/inline.json"] = `{"client_id":"SELF","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":` + publicJWKS(t, map[string]any{"k": key}) + `}`
	})
	m := newCIMD(true, host.roots(), time.Now)
	for path, want := range map[string]string{
		"/private-inline.json": "private key", "/private-none.json": "private key", "/symmetric.json": "symmetric key",
		"/both.json": "exactly one", "/neither.json": "exactly one", "/hs-alg.json": "not supported",
		"/http-jwks.json": "https URL", "/secret.json": "not supported",
	} {
		if _, err := m.get(context.Background(), host.URL+path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", path, err, want)
		}
	}
	c, err := m.get(context.Background(), host.URL+"/inline.json")
	if err != nil || len(c.jwks) != 1 || c.method != "private_key_jwt" {
		t.Fatalf("inline keys: %v %+v", err, c)
	}

	keysAt := func(m *cimd, uri string) error {
		_, err := m.keysOf(context.Background(), &client{id: "x", method: "private_key_jwt", jwksURI: uri}, false)
		return err
	}
	// A key set larger than the limit, or holding a private key, or not
	// JSON, is refused.
	for name, tc := range map[string]struct{ jwks, ctype, want string }{
		"too big":     {`{"keys":[],"x":"` + strings.Repeat("a", jwksMaxBytes) + `"}`, "application/json", "larger than"},
		"private key": {`{"keys":[` + string(priv) + `]}`, "application/jwk-set+json", "private key"},
		"html":        {`{"keys":[]}`, "text/html", "not JSON"},
		"empty":       {`{"keys":[]}`, "application/json", "1 to 20 keys"},
	} {
		host.set(func(h *keyHost) { h.jwks, h.ctype = tc.jwks, tc.ctype })
		if err := keysAt(newCIMD(true, host.roots(), time.Now), host.URL+"/jwks.json"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
	// Slower than the fetch timeout: refused, in about that time.
	slow := newCIMD(true, host.roots(), time.Now)
	slow.timeout = 300 * time.Millisecond
	start := time.Now()
	if err := keysAt(slow, host.URL+"/slow-jwks.json"); err == nil {
		t.Fatal("a JWKS that never arrives was accepted")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a stalled JWKS fetch took %s (timeout %s)", d, slow.timeout)
	}
	// On a private address, with a relay that is not on loopback: never
	// dialled.
	before := host.fetches()
	host.set(func(h *keyHost) { h.jwks, h.ctype = publicJWKS(t, map[string]any{"k": key}), "application/json" })
	if err := keysAt(newCIMD(false, host.roots(), time.Now), host.URL+"/jwks.json"); err == nil || !strings.Contains(err.Error(), "not public") {
		t.Fatalf("a JWKS on loopback for a public relay: %v", err)
	}
	if host.fetches() != before {
		t.Fatal("the private JWKS server was reached")
	}
}

// A flood of valid assertions from one site fills its own share of the
// spent-jti table, not everyone's, and a replay is never let through to
// make room.
func TestSpentJTIBounds(t *testing.T) {
	j := newSpentJTIs()
	now := time.Now()
	exp := now.Add(time.Minute)
	for i := range maxJTIPerSite {
		if ok, err := j.spend(fmt.Sprintf("https://a%d.evil.example/c", i%7), fmt.Sprint(i), exp, now); !ok || err != nil {
			t.Fatalf("spend %d: %v %v", i, ok, err)
		}
	}
	if _, err := j.spend("https://b.evil.example/c", "new", exp, now); err != errJTIFull {
		t.Fatalf("a full site's next assertion: %v", err)
	}
	if ok, err := j.spend("https://chatgpt.com/c", "1", exp, now); !ok || err != nil {
		t.Fatalf("another site: %v %v", ok, err)
	}
	if ok, _ := j.spend("https://chatgpt.com/c", "1", exp, now); ok {
		t.Fatal("a replayed jti was accepted")
	}
	// Once they expire, the site's share is free again.
	if ok, err := j.spend("https://b.evil.example/c", "new", exp, exp.Add(time.Second)); !ok || err != nil {
		t.Fatalf("after expiry: %v %v", ok, err)
	}
}

// authenticateClient: a private_key_jwt client without an assertion, or
// with one and a secret too, gets invalid_client; with a good one, op's
// view is a request authenticated for that client alone.
func TestAuthenticateClient(t *testing.T) {
	host := newKeyHost(t)
	key := rsaKey(t)
	host.set(func(h *keyHost) {
		h.docs["/chatgpt.json"] = chatGPTDoc
		h.jwks = publicJWKS(t, map[string]any{"k1": key})
	})
	s, clk := assertionServer(t, host)
	id := host.URL + "/chatgpt.json"
	tokenURL := "https://relay.example" + PathToken
	good := func() string {
		now := clk.now()
		return assertion(t, key, jose.RS256, "k1", &jwt.Claims{Issuer: id, Subject: id, Audience: jwt.Audience{tokenURL}, ID: random(12),
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))})
	}
	req := func(form url.Values, basic bool) (*http.Request, *reqInfo, error) {
		r := httptest.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			r.SetBasicAuth(url.QueryEscape(id), "s")
		}
		if err := r.ParseForm(); err != nil {
			t.Fatal(err)
		}
		info := &reqInfo{}
		return r, info, s.authenticateClient(r, info, tokenURL)
	}
	for name, tc := range map[string]struct {
		form  url.Values
		basic bool
		want  string
	}{
		"no assertion":        {url.Values{"client_id": {id}}, false, "send client_assertion_type"},
		"basic, no assertion": {url.Values{}, true, "send client_assertion_type"},
		"wrong type":          {url.Values{"client_assertion_type": {"urn:x"}, "client_assertion": {good()}}, false, "client_assertion_type must be"},
		"assertion and basic": {url.Values{"client_assertion_type": {ClientAssertionType}, "client_assertion": {good()}}, true, "one method"},
		"other client_id":     {url.Values{"client_id": {"https://other.example/c"}, "client_assertion_type": {ClientAssertionType}, "client_assertion": {good()}}, false, "differs"},
	} {
		if _, _, err := req(tc.form, tc.basic); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
	r, info, err := req(url.Values{"client_id": {id}, "client_assertion_type": {ClientAssertionType}, "client_assertion": {good()}}, false)
	if err != nil {
		t.Fatal(err)
	}
	u, p, ok := r.BasicAuth()
	if !ok || r.Form.Has("client_assertion") || r.Form.Has("client_id") || info.asserted == nil {
		t.Fatalf("op's view: basic %v, form %v", ok, r.Form)
	}
	ctx := context.WithValue(context.Background(), ctxKey{}, info)
	uid, _ := url.QueryUnescape(u)
	if !assertedSecretOK(ctx, uid, p) || assertedSecretOK(ctx, uid, p+"x") || assertedSecretOK(context.Background(), uid, p) {
		t.Fatal("the request's credential is not exactly the one made for it")
	}
	if err := (&opStorage{s: s}).AuthorizeClientIDSecret(ctx, uid, p); err != nil {
		t.Fatalf("op's check of the request's credential: %v", err)
	}
}

// BenchmarkVerifyAssertion: what a token request with private_key_jwt
// costs the relay (keys cached): RS256 verification, claims, jti.
func BenchmarkVerifyAssertion(b *testing.B) {
	t := b
	host := newKeyHost(t)
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	host.set(func(h *keyHost) {
		h.docs["/chatgpt.json"] = chatGPTDoc
		h.jwks = publicJWKS(t, map[string]any{"k1": key})
	})
	s, err := New(Config{Issuer: "https://relay.example", StateDir: b.TempDir(), Resolver: oneRoute{}, AllowPrivateFetch: true, FetchRoots: host.roots()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	id := host.URL + "/chatgpt.json"
	tokenURL := "https://relay.example" + PathToken
	now := time.Now()
	as := make([]string, b.N)
	for i := range as {
		as[i] = assertion(t, key, jose.RS256, "k1", &jwt.Claims{Issuer: id, Subject: id, Audience: jwt.Audience{tokenURL}, ID: fmt.Sprint(i),
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute))})
	}
	if _, err := s.verifyAssertion(context.Background(), assertion(t, key, jose.RS256, "k1", &jwt.Claims{Issuer: id, Subject: id,
		Audience: jwt.Audience{tokenURL}, ID: "warm", Expiry: jwt.NewNumericDate(now.Add(time.Minute))}), tokenURL); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.verifyAssertion(context.Background(), as[i], tokenURL); err != nil {
			b.Fatal(err)
		}
	}
}
