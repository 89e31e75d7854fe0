package access

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/pomdev/pomdev/internal/fuzzwatch"
)

// FuzzClientMetadata: registration bodies from the network are checked
// without panics, runaway time or memory; what is accepted has only
// allowed redirect URIs and a supported auth method.
func FuzzClientMetadata(f *testing.F) {
	f.Add(`{"client_name":"A","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"}`)
	f.Add(`{"redirect_uris":["http://127.0.0.1:9/cb","cursor://cb"],"grant_types":["authorization_code"]}`)
	f.Add(`{"redirect_uris":["javascript:alert(1)"]}`)
	f.Add(`{"redirect_uris":[]}`)
	f.Fuzz(func(t *testing.T, body string) {
		fuzzwatch.Run(t, fuzzwatch.Limits{}, func() {
			var m oauthex.ClientRegistrationMetadata
			if json.Unmarshal([]byte(body), &m) != nil {
				return
			}
			if validateMetadata(&m) != nil {
				return
			}
			for _, u := range m.RedirectURIs {
				lower := strings.ToLower(u)
				if strings.HasPrefix(lower, "javascript:") || strings.HasPrefix(lower, "data:") || strings.Contains(u, "#") {
					t.Fatalf("accepted redirect %q", u)
				}
			}
			switch m.TokenEndpointAuthMethod {
			case "none", "client_secret_basic", "client_secret_post", "private_key_jwt":
			default:
				t.Fatalf("accepted auth method %q", m.TokenEndpointAuthMethod)
			}
		})
	})
}

// FuzzAuthorize: any query on the authorize endpoint answers an error
// page or a redirect to a registered URI, never a panic, and parks a
// request only with S256 PKCE and a resource of a route.
func FuzzAuthorize(f *testing.F) {
	s := newTestServer(f)
	// Metadata documents named by fuzzed client IDs are never fetched.
	s.fetch.hc.Transport = &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no network in the fuzzer")
	}}
	f.Add("response_type=code&client_id=x&redirect_uri=https%3A%2F%2Fa%2Fcb&code_challenge=abc&code_challenge_method=S256&resource=https%3A%2F%2Fr.relay.example%2Fmcp")
	f.Add("client_id=https%3A%2F%2F127.0.0.1%2Fc&redirect_uri=x")
	f.Add("%zz&&==;")
	f.Fuzz(func(t *testing.T, query string) {
		fuzzwatch.Run(t, fuzzwatch.Limits{}, func() {
			req := httptest.NewRequest(http.MethodGet, "https://relay.example/oauth/authorize", nil)
			req.URL.RawQuery = query
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if loc := w.Header().Get("Location"); loc != "" {
				u, err := url.Parse(loc)
				if err != nil || (!strings.HasPrefix(loc, "https://relay.example/") && u.Query().Get("error") == "") {
					t.Fatalf("redirect %q for %q", loc, query)
				}
			}
			if qs, _ := s.Pending(context.Background(), ""); len(qs) > 0 {
				t.Fatalf("a request was parked from %q", query)
			}
		})
	})
}

// FuzzNormalizeCode: what a person types becomes a code or stays wrong,
// without panics.
func FuzzNormalizeCode(f *testing.F) {
	f.Add("kq4m-7txd")
	f.Add(" KQ4M 7TXD ")
	f.Add("ÖÖÖÖ-ÖÖÖÖ")
	f.Fuzz(func(t *testing.T, s string) {
		fuzzwatch.Run(t, fuzzwatch.Limits{}, func() { _ = NormalizeCode(s) })
	})
}

// FuzzGate: whatever a request's Authorization header holds, the gate lets
// it through only with the route's own token written as a bearer token
// (either by the cached path or the go-sdk middleware), hands the app no
// Authorization, and stays within time and memory.
func FuzzGate(f *testing.F) {
	s := newTestServer(f)
	tok, _, err := s.MintOwner(context.Background(), "r", "SHA256:owner")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("Bearer "+tok, false)
	f.Add("bearer  "+tok, false)
	f.Add("Bearer "+tok+" x", false)
	f.Add("Bearer "+tok, true)
	f.Add("Basic "+tok, false)
	f.Add("Bearer \t"+tok+"\r\n", false)
	f.Fuzz(func(t *testing.T, authz string, otherRoute bool) {
		fuzzwatch.Run(t, fuzzwatch.Limits{}, func() {
			route := "r"
			if otherRoute {
				route = "other"
			}
			// The first request may fill the cache; the second may take
			// the cached path.
			for range 2 {
				req := httptest.NewRequest(http.MethodPost, "https://r.relay.example/mcp", nil)
				req.Header["Authorization"] = []string{authz}
				w := httptest.NewRecorder()
				passed := false
				s.Gate(w, req, route, "SHA256:owner", func(r *http.Request, _ Caller) {
					passed = true
					if r.Header.Get("Authorization") != "" {
						t.Fatal("the app saw the token")
					}
				})
				if !passed {
					if w.Code != http.StatusUnauthorized && w.Code != http.StatusForbidden && w.Code != http.StatusBadRequest {
						t.Fatalf("refused with %d", w.Code)
					}
					continue
				}
				fields := strings.Fields(authz)
				if route != "r" || len(fields) != 2 || !strings.EqualFold(fields[0], "bearer") || fields[1] != tok {
					t.Fatalf("passed %q on route %q", authz, route)
				}
			}
		})
	})
}

// FuzzClientAssertion: any client_assertion is refused or accepted
// without panics, runaway time or memory, and one accepted is signed by
// the client's key, names it as iss and sub, and is never accepted twice.
func FuzzClientAssertion(f *testing.F) {
	s := newTestServer(f)
	s.fetch.hc.Transport = &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no network in the fuzzer")
	}}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1"}}})
	const id = "fuzzclient"
	if err := s.st.addClient(context.Background(), clientRow{ID: id, Name: "fuzz", RedirectURIs: []string{"https://a.example/cb"},
		AuthMethod: "private_key_jwt", Created: time.Now(), Keys: clientKeys{JWKS: set}}); err != nil {
		f.Fatal(err)
	}
	sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	now := time.Now()
	good, _ := jwt.Signed(sig).Claims(jwt.Claims{Issuer: id, Subject: id, Audience: jwt.Audience{"https://relay.example" + PathToken}, ID: "j1",
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(9 * time.Minute))}).Serialize()
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJmdXp6Y2xpZW50In0.")
	f.Add("a.b.c")
	f.Add(strings.Repeat("e", 9000))
	seen := map[string]bool{}
	f.Fuzz(func(t *testing.T, a string) {
		fuzzwatch.Run(t, fuzzwatch.Limits{}, func() {
			c, err := s.verifyAssertion(context.Background(), a, "https://relay.example"+PathToken)
			if err != nil {
				return
			}
			tok, perr := jwt.ParseSigned(a, AssertionAlgs)
			var claims jwt.Claims
			if perr != nil || tok.Claims(&key.PublicKey, &claims) != nil || claims.Issuer != id || claims.Subject != id || c.id != id {
				t.Fatalf("accepted an assertion not signed for the client: %q", a)
			}
			if seen[claims.ID] {
				t.Fatalf("jti %q accepted twice", claims.ID)
			}
			seen[claims.ID] = true
		})
	})
}
