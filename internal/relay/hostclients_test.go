package relay_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"github.com/pomdev/pomdev/internal/relay/console"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/pomdev/pomdev/internal/relay"
	"github.com/pomdev/pomdev/internal/relay/access"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
)

// hostDocs serves client ID metadata documents over TLS with a CA of its
// own, as chatgpt.com and claude.ai do: ChatGPT's with private_key_jwt,
// RS256 and a jwks_uri, Claude's with none and its callback.
type hostDocs struct {
	*httptest.Server
	key  *rsa.PrivateKey
	mu   sync.Mutex
	jwks int // fetches of the keys
}

const (
	chatGPTCallback = "https://chatgpt.com/connector_platform_oauth_redirect"
	claudeCallback  = "https://claude.ai/api/mcp/auth_callback"
)

func newHostDocs(t *testing.T) *hostDocs {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	d := &hostDocs{key: key}
	pub, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "chatgpt-1", Use: "sig", Algorithm: "RS256"}}})
	d.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		self := "https://" + r.Host + r.URL.Path
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/oauth/chatgpt-client.json":
			fmt.Fprintf(w, `{"client_id":%q,"client_name":"ChatGPT","redirect_uris":[%q],"grant_types":["authorization_code","refresh_token"],
"response_types":["code"],"token_endpoint_auth_method":"private_key_jwt","token_endpoint_auth_signing_alg":"RS256","jwks_uri":%q}`,
				self, chatGPTCallback, "https://"+r.Host+"/oauth/jwks.json")
		case "/oauth/jwks.json":
			d.mu.Lock()
			d.jwks++
			d.mu.Unlock()
			_, _ = w.Write(pub)
		case "/oauth/claude-client.json":
			fmt.Fprintf(w, `{"client_id":%q,"client_name":"Claude","redirect_uris":[%q],"grant_types":["authorization_code","refresh_token"],
"response_types":["code"],"token_endpoint_auth_method":"none"}`, self, claudeCallback)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(d.Close)
	return d
}

func (d *hostDocs) roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(d.Certificate())
	return p
}

func (d *hostDocs) chatGPT() string { return d.URL + "/oauth/chatgpt-client.json" }
func (d *hostDocs) claude() string  { return d.URL + "/oauth/claude-client.json" }

// assertion is a client assertion of ChatGPT's for aud, as its token
// requests carry one.
func (d *hostDocs) assertion(t *testing.T, aud string) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: d.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "chatgpt-1"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	id := d.chatGPT()
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	s, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: id, Subject: id, Audience: jwt.Audience{aud}, ID: fmt.Sprintf("%x", b),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// authorize runs the browser's part for clientID returning to callback and
// returns where the relay sends the browser back.
func (g *gatedTunnel) authorizeAs(t *testing.T, clientID, callback, challenge string, approve func(code string)) *url.URL {
	t.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {callback}, "state": {"st-" + clientID},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "resource": {g.url + "/mcp"}, "scope": {"mcp"}}
	back := g.browse(t, g.h.R.BaseURL()+access.PathAuthorize+"?"+q.Encode(), approve)
	if !strings.HasPrefix(back.String(), callback+"?") {
		t.Fatalf("sent back to %s, not %s", back, callback)
	}
	// RFC 9207: the response names its issuer, and the state comes back.
	if iss := back.Query().Get("iss"); iss != g.h.R.BaseURL() {
		t.Fatalf("iss %q in the authorization response %s, want %s", iss, back, g.h.R.BaseURL())
	}
	if back.Query().Get("state") != "st-"+clientID {
		t.Fatalf("state lost: %s", back)
	}
	return back
}

// TestOAuthHostShapedClients: a client shaped as ChatGPT's (a metadata
// document with private_key_jwt, RS256 and a jwks_uri, on a TLS host with
// its own CA) and one shaped as Claude's (a document with none, the
// claude.ai callback) each get the owner's approval through a relay with
// --http-auth owner and an OpenSSH `ssh -R 0` tunnel, and list tools with
// their token. ChatGPT's token requests need its assertion, each assertion
// once; every authorization response, denial included, carries iss.
func TestOAuthHostShapedClients(t *testing.T) {
	docs := newHostDocs(t)
	g := startGated(t, func(c *relay.Config) { c.FetchRoots = docs.roots() })
	tokenURL := g.h.R.BaseURL() + access.PathToken
	approve := func(code string) { g.sshApprove(t, "approve", code) }

	_, meta := g.get(t, g.h.R.BaseURL()+access.PathASMeta)
	for _, want := range []string{`"private_key_jwt"`, `"token_endpoint_auth_signing_alg_values_supported":["RS256","PS256","ES256","EdDSA"]`,
		`"authorization_response_iss_parameter_supported":true`, `"client_id_metadata_document_supported":true`} {
		if !strings.Contains(meta, want) {
			t.Errorf("metadata lacks %s: %s", want, meta)
		}
	}

	// ChatGPT.
	verifier, challenge := pkce()
	back := g.authorizeAs(t, docs.chatGPT(), chatGPTCallback, challenge, approve)
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {chatGPTCallback},
		"client_id": {docs.chatGPT()}, "code_verifier": {verifier}, "resource": {g.url + "/mcp"}}
	// Without its assertion, the code gets nothing.
	if status, tk := g.token(t, exchange); status != http.StatusUnauthorized || tk.Error != "invalid_client" || tk.Access != "" {
		t.Fatalf("ChatGPT's code without an assertion: %d %+v", status, tk)
	}
	back = g.authorizeAs(t, docs.chatGPT(), chatGPTCallback, challenge, approve)
	exchange.Set("code", back.Query().Get("code"))
	a := docs.assertion(t, tokenURL)
	withAssertion := func(v url.Values, a string) url.Values {
		v = cloneValues(v)
		v.Set("client_assertion_type", access.ClientAssertionType)
		v.Set("client_assertion", a)
		return v
	}
	status, tk := g.token(t, withAssertion(exchange, a))
	if status != http.StatusOK || tk.Access == "" || tk.Refresh == "" {
		t.Fatalf("ChatGPT's token: %d %+v", status, tk)
	}
	if resp := g.post(t, g.url+"/mcp", tk.Access); resp.StatusCode != http.StatusOK {
		t.Fatalf("tools/list with ChatGPT's token: %s", resp.Status)
	}
	// Introspection authenticates the client too: with its assertion it
	// learns about its own token, without one it gets 401.
	introspect := func(form url.Values) (int, string) {
		resp, err := g.client().PostForm(g.h.R.BaseURL()+access.PathIntrospect, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	in := url.Values{"token": {tk.Access}, "client_id": {docs.chatGPT()}}
	if s, body := introspect(in); s != http.StatusUnauthorized {
		t.Fatalf("introspection without an assertion: %d %s", s, body)
	}
	if s, body := introspect(withAssertion(in, docs.assertion(t, g.h.R.BaseURL()+access.PathIntrospect))); s != http.StatusOK || !strings.Contains(body, `"active":true`) {
		t.Fatalf("introspection with an assertion: %d %s", s, body)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.Refresh}, "client_id": {docs.chatGPT()}}
	if status, tk := g.token(t, refresh); status != http.StatusUnauthorized || tk.Access != "" {
		t.Fatalf("refresh without an assertion: %d %+v", status, tk)
	}
	// The assertion of the exchange, presented again, is refused: its jti
	// is spent.
	if status, tk := g.token(t, withAssertion(refresh, a)); status != http.StatusUnauthorized || tk.Access != "" {
		t.Fatalf("refresh with a replayed assertion: %d %+v", status, tk)
	}
	status, rtk := g.token(t, withAssertion(refresh, docs.assertion(t, tokenURL)))
	if status != http.StatusOK || rtk.Access == "" {
		t.Fatalf("refresh with a fresh assertion: %d %+v", status, rtk)
	}
	// Revocation needs the assertion too; the revoked token stops.
	revoke := func(form url.Values) int {
		resp, err := g.client().PostForm(g.h.R.BaseURL()+access.PathRevoke, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	rev := url.Values{"token": {rtk.Access}, "client_id": {docs.chatGPT()}}
	if s := revoke(rev); s != http.StatusUnauthorized {
		t.Fatalf("revocation without an assertion: %d", s)
	}
	if s := revoke(withAssertion(rev, docs.assertion(t, g.h.R.BaseURL()+access.PathRevoke))); s != http.StatusOK {
		t.Fatalf("revocation with an assertion: %d", s)
	}
	if resp := g.post(t, g.url+"/mcp", rtk.Access); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a revoked token: %s", resp.Status)
	}

	// Claude.
	verifier, challenge = pkce()
	back = g.authorizeAs(t, docs.claude(), claudeCallback, challenge, approve)
	status, tk = g.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {claudeCallback},
		"client_id": {docs.claude()}, "code_verifier": {verifier}, "resource": {g.url + "/mcp"}})
	if status != http.StatusOK || tk.Access == "" {
		t.Fatalf("Claude's token: %d %+v", status, tk)
	}
	if resp := g.post(t, g.url+"/mcp", tk.Access); resp.StatusCode != http.StatusOK {
		t.Fatalf("tools/list with Claude's token: %s", resp.Status)
	}
	// ChatGPT's assertion authenticates ChatGPT, whose grant Claude's
	// refresh token is not.
	if status, tk := g.token(t, withAssertion(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.Refresh}}, docs.assertion(t, tokenURL))); status != http.StatusBadRequest || tk.Error != "invalid_grant" {
		t.Fatalf("Claude's refresh token with ChatGPT's assertion: %d %+v", status, tk)
	}

	// A denial comes back with iss as well. The browser approved Claude
	// before, but a remembered grant is the owner's decision only for that
	// browser: a fresh browser is asked again, and denied.
	g.jar = nil
	_, challenge = pkce()
	q := url.Values{"response_type": {"code"}, "client_id": {docs.claude()}, "redirect_uri": {claudeCallback}, "state": {"st"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "resource": {g.url + "/mcp"}}
	back = g.browse(t, g.h.R.BaseURL()+access.PathAuthorize+"?"+q.Encode(), func(code string) { g.sshApprove(t, "deny", code) })
	if back.Query().Get("error") != "access_denied" || back.Query().Get("iss") != g.h.R.BaseURL() {
		t.Fatalf("a denial: %s", back)
	}
	// Errors answered at once carry iss too, in the query whatever mode
	// was asked for.
	for name, mod := range map[string]func(url.Values){
		"plain PKCE":    func(q url.Values) { q.Set("code_challenge_method", "plain") },
		"fragment mode": func(q url.Values) { q.Set("response_mode", "fragment") },
	} {
		q := cloneValues(q)
		mod(q)
		resp, err := g.noRedirect().Get(g.h.R.BaseURL() + access.PathAuthorize + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := resp.Location()
		if loc == nil || loc.Fragment != "" || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("iss") != g.h.R.BaseURL() {
			t.Fatalf("%s: %d %v", name, resp.StatusCode, loc)
		}
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// TestOAuthImpostorDocument: a metadata document that calls itself
// "ChatGPT" on another host is shown to the owner as that host first, the
// name as its claim, with the disagreement said: on the status screen
// (tmux), the approval page, pomdev-events and pomdev-access list.
func TestOAuthImpostorDocument(t *testing.T) {
	var self string
	doc := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"client_id":%q,"client_name":"ChatGPT","redirect_uris":[%q],"token_endpoint_auth_method":"none"}`, self, chatGPTCallback)
	}))
	defer doc.Close()
	self = doc.URL + "/chatgpt.json"
	roots := x509.NewCertPool()
	roots.AddCert(doc.Certificate())
	g := newGated(t, func(c *relay.Config) { c.FetchRoots = roots }, true)
	_, capture := g.ownerScreen(t, 100)
	events := g.h.RunSSH(g.key, "-T", "--", relay.EventsCommand)

	_, challenge := pkce()
	q := url.Values{"response_type": {"code"}, "client_id": {self}, "redirect_uri": {chatGPTCallback}, "state": {"st"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "resource": {g.url + "/mcp"}}
	c := g.ownerBrowser()
	next := g.h.R.BaseURL() + access.PathAuthorize + "?" + q.Encode()
	var page string
	for range 5 {
		resp, err := c.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 3 {
			page = string(b)
			break
		}
		next = resp.Header.Get("Location")
		if !strings.HasPrefix(next, "http") {
			next = g.h.R.BaseURL() + next
		}
	}
	m := codeRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no approval page:\n%s", page)
	}
	code := m[1]
	for _, want := range []string{"<strong>127.0.0.1</strong> (calls itself “ChatGPT”) asks", "the host of its client ID",
		"its name is not that of its host; it returns to chatgpt.com, not to its own host"} {
		if !strings.Contains(page, want) {
			t.Errorf("the approval page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "<strong>ChatGPT</strong>") {
		t.Errorf("the approval page shows the claimed name as who asks:\n%s", page)
	}

	var screen string
	rt.WaitFor(t, func() bool { screen = capture(); return strings.Contains(screen, "code "+code) }, "the request on the status screen")
	flat := strings.Join(strings.Fields(screen), " ")
	for _, want := range []string{`127.0.0.1 (calls itself "ChatGPT"); its name is not that of its host; it returns to chatgpt.com, not to its own host asks for`} {
		if !strings.Contains(flat, want) {
			t.Errorf("the status screen lacks %q:\n%s", want, screen)
		}
	}
	line := events.WaitContains(t, `"code":"`+code+`"`)
	var ev console.Event
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(line, `"verified":"127.0.0.1"`) || !strings.Contains(line, `"mismatch":"its name is not that of its host`) {
		t.Errorf("pomdev-events: %s", line)
	}
	list := g.sshApprove(t, "list", "")
	if !strings.Contains(list, `Access: 127.0.0.1 (calls itself "ChatGPT"); its name is not that of its host`) {
		t.Errorf("pomdev-access list: %s", list)
	}
}

// A registration may ask for private_key_jwt too (the metadata advertises
// it for every client): its keys are registered, no secret is issued, and
// its token requests need its assertion.
func TestOAuthRegisteredPrivateKeyJWT(t *testing.T) {
	g := startGated(t, nil)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Use: "sig"}}})
	body := fmt.Sprintf(`{"client_name":"server app","redirect_uris":[%q],"token_endpoint_auth_method":"private_key_jwt","token_endpoint_auth_signing_alg":"PS256","jwks":%s}`, redirect, set)
	resp, err := g.client().Post(g.h.R.BaseURL()+access.PathRegister, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var reg map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	id, _ := reg["client_id"].(string)
	if resp.StatusCode != http.StatusCreated || id == "" || reg["client_secret"] != nil || reg["jwks"] == nil || reg["token_endpoint_auth_method"] != "private_key_jwt" {
		t.Fatalf("registration: %d %v", resp.StatusCode, reg)
	}
	// A registration that publishes its private key is refused.
	priv, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key, KeyID: "k1"}}})
	resp, err = g.client().Post(g.h.R.BaseURL()+access.PathRegister, "application/json",
		strings.NewReader(fmt.Sprintf(`{"redirect_uris":[%q],"token_endpoint_auth_method":"private_key_jwt","jwks":%s}`, redirect, priv)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a registration with a private key: %d", resp.StatusCode)
	}

	sign := func(alg jose.SignatureAlgorithm) string {
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		s, _ := jwt.Signed(sig).Claims(jwt.Claims{Issuer: id, Subject: id, Audience: jwt.Audience{g.h.R.BaseURL() + access.PathToken},
			ID: fmt.Sprintf("%x", b), IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
		return s
	}
	verifier, challenge := pkce()
	back := g.browse(t, g.authorizeURL(id, challenge, "S256", g.url+"/mcp"), func(code string) { g.sshApprove(t, "approve", code) })
	form := url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {redirect},
		"code_verifier": {verifier}, "client_assertion_type": {access.ClientAssertionType}}
	// RS256 with the right key is not the PS256 it registered.
	form.Set("client_assertion", sign(jose.RS256))
	if status, tk := g.token(t, form); status != http.StatusUnauthorized || tk.Access != "" {
		t.Fatalf("RS256 for a PS256 client: %d %+v", status, tk)
	}
	form.Set("client_assertion", sign(jose.PS256))
	status, tk := g.token(t, form)
	if status != http.StatusOK || tk.Access == "" {
		t.Fatalf("token: %d %+v", status, tk)
	}
	if resp := g.post(t, g.url+"/mcp", tk.Access); resp.StatusCode != http.StatusOK {
		t.Fatalf("tools/list: %s", resp.Status)
	}
	if status, _ := g.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.Refresh}, "client_id": {id}}); status != http.StatusUnauthorized {
		t.Fatalf("refresh without an assertion: %d", status)
	}
}
