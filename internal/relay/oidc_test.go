package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/pomdev/pomdev/internal/relay"
	"github.com/pomdev/pomdev/internal/relay/oidcrp"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"golang.org/x/crypto/ssh"
)

// TestOIDCSignin: stock OpenSSH gets a sign-in link; the person signs in
// at a real OpenID provider; the key is bound to them and the policy,
// which names people, lets one user tunnel and refuses the other.
func TestOIDCSignin(t *testing.T) {
	rt.RequireOpenSSH(t)
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte("tunnels:\n  allow: [\"email:test-user@zitadel.ch\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := rt.StartRelay(t, func(c *relay.Config) {
		c.Auth = relay.AuthSignin
		c.HTTPAuth = relay.HTTPAuthNone
		c.PolicyFile = file
		base := "http://localhost:" + fmt.Sprint(c.HTTPListener.Addr().(*net.TCPAddr).Port)
		c.OIDC = oidcrp.Config{Issuer: rt.StartOP(t, base+oidcrp.CallbackPath), ClientID: "web", ClientSecret: "secret"}
	})
	origin := rt.NewOrigin(t, "mine")
	link := func(s *rt.SSH) string {
		var l string
		rt.WaitFor(t, func() bool {
			l = regexp.MustCompile(`http://\S+user_code=[A-Z0-9-]+`).FindString(s.Stderr())
			return l != ""
		}, "the sign-in link")
		return l
	}

	// The second user of the provider is refused by the policy.
	key2, _ := rt.WriteKey(t)
	s2 := h.RunSSH(key2, "-o", "LogLevel=INFO", "-T", "-o", "SetEnv=POMDEV_TARGET="+origin.HostPort(), "-R", "0")
	status, page := rt.SignInAtOP(t, rt.Browser(t), link(s2), "test-user2")
	if status != http.StatusForbidden || !strings.Contains(page, "test-user2@zitadel.ch") || !strings.Contains(page, file+":2") {
		t.Fatalf("the second user: %d\n%s", status, page)
	}
	<-s2.Done
	if !strings.Contains(s2.Stderr(), "denied") {
		t.Fatalf("ssh of the refused user: %s", s2.Stderr())
	}

	// The first is signed in, bound to the key, and tunnels.
	key1, signer1 := rt.WriteKey(t)
	s1 := h.RunSSH(key1, "-o", "LogLevel=INFO", "-T", "-o", "SetEnv=POMDEV_TARGET="+origin.HostPort(), "-R", "0")
	status, page = rt.SignInAtOP(t, rt.Browser(t), link(s1), "test-user@localhost")
	if status != http.StatusOK || !strings.Contains(page, "signed in as test-user@zitadel.ch") {
		t.Fatalf("the first user: %d\n%s", status, page)
	}
	s1.WaitLine(t, "Remote: ")
	if code, body := h.Get(h.WaitURL() + "/x"); code != 200 || rt.Decode(t, body)["origin"] != "mine" {
		t.Fatalf("through the tunnel: %d %s", code, body)
	}
	sub, email := h.R.SignedInAs(ssh.FingerprintSHA256(signer1.PublicKey()))
	if sub != "id1" || email != "test-user@zitadel.ch" {
		t.Fatalf("the key is bound to %q %q", sub, email)
	}

	// A link replayed into another browser, or a callback with a state
	// the relay never made, signs no one in.
	resp, err := rt.Browser(t).Get(h.R.BaseURL() + oidcrp.CallbackPath + "?state=forged&code=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a forged callback: %d", resp.StatusCode)
	}
}

// TestOIDCHTTPAuth: with --http-auth oidc an app's authorize page signs
// its user in at the provider instead of waiting for the owner; the owner
// (the person the tunnel's key signed in as) gets a grant and tokens, and
// the app sees who they are in the identity assertion; another user of the
// same provider is refused and the app is told.
func TestOIDCHTTPAuth(t *testing.T) {
	t.Run("owner", func(t *testing.T) {
		oidcHTTPAuth(t, "", "test-user@localhost", "id1", "test-user@zitadel.ch", "test-user2", "Only the tunnel&#39;s owner (test-user@zitadel.ch)")
	})
	// The policy's callers replace the default: here another person, and
	// not the owner.
	t.Run("callers", func(t *testing.T) {
		oidcHTTPAuth(t, "routes:\n  - name: \"*\"\n    callers: [\"email:test-user2@zitadel.ch\"]\n", "test-user2", "id2", "test-user2@zitadel.ch",
			"test-user@localhost", "does not list you among this tunnel&#39;s callers")
	})
}

// startOIDCGated is a relay with --auth signin and --http-auth oidc at
// the example provider, and a stock ssh tunnel whose key signed in there
// as test-user (id1).
func startOIDCGated(t *testing.T, policyText string) *gatedTunnel {
	return startOIDCGatedTLS(t, policyText, false)
}

// startOIDCGatedTLS is startOIDCGated, its front on HTTPS when useTLS.
func startOIDCGatedTLS(t *testing.T, policyText string, useTLS bool) *gatedTunnel {
	return startOIDCGatedWith(t, policyText, useTLS, nil)
}

// startOIDCGatedWith is startOIDCGatedTLS with mod applied to the config.
func startOIDCGatedWith(t *testing.T, policyText string, useTLS bool, mod func(*relay.Config)) *gatedTunnel {
	t.Helper()
	var file string
	if policyText != "" {
		file = filepath.Join(t.TempDir(), "policy.yaml")
		if err := os.WriteFile(file, []byte(policyText), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g := newGated(t, func(c *relay.Config) {
		c.PolicyFile = file
		scheme := "https"
		if !useTLS {
			c.TLS, scheme = nil, "http"
		}
		c.Auth = relay.AuthSignin
		c.HTTPAuth = relay.HTTPAuthOIDC
		base := scheme + "://localhost:" + fmt.Sprint(c.HTTPListener.Addr().(*net.TCPAddr).Port)
		c.OIDC = oidcrp.Config{Issuer: rt.StartOP(t, base+oidcrp.CallbackPath), ClientID: "web", ClientSecret: "secret"}
		if mod != nil {
			mod(c)
		}
	}, true)
	if !useTLS {
		g.pool = nil
	}
	s := g.h.RunSSH(g.key, "-o", "LogLevel=INFO", "-T", "-o", "SetEnv=POMDEV_TARGET="+g.target(), "-R", "0")
	var link string
	rt.WaitFor(t, func() bool {
		link = regexp.MustCompile(`https?://\S+user_code=[A-Z0-9-]+`).FindString(s.Stderr())
		return link != ""
	}, "the sign-in link")
	if status, page := rt.SignInAtOP(t, g.browser(t), link, "test-user@localhost"); status != 200 {
		t.Fatalf("the owner's sign-in: %d\n%s", status, page)
	}
	s.WaitLine(t, "Remote: ")
	g.url, g.ssh = g.h.WaitURL(), s
	return g
}

// browseOIDC opens an app's authorize URL in a fresh browser, signs in at
// the provider as user, and returns where the browser was sent back to
// (the app's redirect; nil if it was not) and the last page.
func (g *gatedTunnel) browseOIDC(t *testing.T, authURL, redirectPrefix, user string) (*url.URL, string) {
	t.Helper()
	b := g.browser(t)
	back := stopAt(b, redirectPrefix)
	resp, err := b.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp = rt.LoginAtOP(t, b, resp, user)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if *back == nil && consentRE.Match(page) {
		// The person reads the consent page and allows.
		resp = g.consent(t, b, string(page), "allow")
		page, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	return *back, string(page)
}

var (
	consentRE      = regexp.MustCompile(`<h1>Allow [^<]*\?</h1>`)
	consentFieldRE = regexp.MustCompile(`name="(id|consent)" value="([^"]+)"`)
)

// consent submits the consent page's form with decision, in browser b.
func (g *gatedTunnel) consent(t *testing.T, b *http.Client, page, decision string) *http.Response {
	t.Helper()
	form := url.Values{"decision": {decision}}
	for _, m := range consentFieldRE.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if form.Get("id") == "" || form.Get("consent") == "" {
		t.Fatalf("a consent page without its form:\n%s", page)
	}
	resp, err := b.PostForm(g.h.R.BaseURL()+"/oauth/approve", form)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// stopAt makes b stop before it follows a redirect to a URL starting with
// prefix (the app's redirect URI), which it records.
func stopAt(b *http.Client, prefix string) **url.URL {
	back := new(*url.URL)
	b.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), prefix) {
			*back = req.URL
			return http.ErrUseLastResponse
		}
		return nil
	}
	return back
}

// browser is a person's browser that trusts the relay's certificate.
func (g *gatedTunnel) browser(t *testing.T) *http.Client {
	if g.pool == nil {
		return rt.Browser(t)
	}
	return rt.BrowserTrusting(t, g.pool)
}

func oidcHTTPAuth(t *testing.T, policyText, okUser, okSub, okEmail, badUser, badWhy string) {
	g := startOIDCGated(t, policyText)

	// authorize runs the app's authorization as user: where the browser
	// was sent back to, and the access token (or the last page).
	authorize := func(user string) (*url.URL, string) {
		clientID := g.register(t, redirect)
		verifier, challenge := pkce()
		back, page := g.browseOIDC(t, g.authorizeURL(clientID, challenge, "S256", g.url+"/mcp"), redirect, user)
		if back == nil || back.Query().Get("code") == "" {
			return back, page
		}
		status, tk := g.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {redirect},
			"client_id": {clientID}, "code_verifier": {verifier}, "resource": {g.url + "/mcp"}})
		if status != http.StatusOK || tk.Access == "" {
			t.Fatalf("token: %d %+v", status, tk)
		}
		return back, tk.Access
	}

	// Another user: refused, with the reason on the page and access_denied
	// for the app.
	back, page := authorize(badUser)
	if back != nil || !strings.Contains(page, badWhy) || !strings.Contains(page, "error=access_denied") {
		t.Fatalf("%s: back %v\n%s", badUser, back, page)
	}

	// The owner: a grant, and the app knows who called.
	back, access := authorize(okUser)
	if back == nil || back.Query().Get("code") == "" {
		t.Fatalf("the owner was not sent back with a code: %v %s", back, access)
	}
	if resp := g.post(t, g.url+"/mcp", access); resp.StatusCode != 200 {
		t.Fatalf("tools/list with the owner's token: %d", resp.StatusCode)
	}
	seen := g.origin.seen()
	id, err := g.h.R.Access().VerifyIdentity(seen[len(seen)-1].Get("X-Pomdev-Identity"), g.url+"/mcp")
	if err != nil || id.User != okSub || id.Email != okEmail {
		t.Fatalf("identity assertion %+v %v", id, err)
	}
}

// TestOIDCTypeScriptSDK: the official TypeScript SDK's OAuth client
// (discovery, dynamic registration, PKCE, token, refresh) through
// --http-auth oidc: its user signed in at the provider as the owner calls
// tools; another user of the provider gets no code.
func TestOIDCTypeScriptSDK(t *testing.T) {
	node, sdk := requireTSSDK(t)
	g := startOIDCGated(t, "")
	run := func(user string) (string, string, error) {
		return runTSOAuthClient(t, node, sdk, g.url+"/mcp", func(authURL string) string {
			back, page := g.browseOIDC(t, authURL, "http://127.0.0.1:9/callback", user)
			if back != nil {
				return back.String()
			}
			// A refusal page: the person follows its link back.
			m := regexp.MustCompile(`href="(http://127\.0\.0\.1:9/callback[^"]*)"`).FindStringSubmatch(page)
			if m == nil {
				t.Fatalf("not sent back to the app:\n%s", page)
			}
			return html.UnescapeString(m[1])
		})
	}
	res, stderr, err := run("test-user@localhost")
	if err != nil || !strings.Contains(res, `"echo: from ts"`) || !strings.Contains(res, `"refresh":true`) {
		t.Fatalf("the owner through the TS client: %v %s\n%s", err, res, stderr)
	}
	res, stderr, err = run("test-user2")
	if err == nil || res != "" || !strings.Contains(stderr, "came back without a code") || !strings.Contains(stderr, "error=access_denied") {
		t.Fatalf("another user through the TS client: %v %s\n%s", err, res, stderr)
	}
}

// TestOIDCGoSDKClient: the official Go SDK's OAuth handler through
// --http-auth oidc; the audit trail names the person on each request.
func TestOIDCGoSDKClient(t *testing.T) {
	g := startOIDCGatedTLS(t, "", true) // the SDK wants HTTPS off loopback
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: "Go SDK test host", RedirectURIs: []string{"http://127.0.0.1:9/callback"},
			TokenEndpointAuthMethod: "none", GrantTypes: []string{"authorization_code", "refresh_token"},
		}},
		RedirectURL: "http://127.0.0.1:9/callback",
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			back, page := g.browseOIDC(t, args.URL, "http://127.0.0.1:9/callback", "test-user@localhost")
			if back == nil {
				return nil, fmt.Errorf("not sent back: %s", page)
			}
			q := back.Query()
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
		RequestRefreshToken: true,
		Client:              g.client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "host", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: g.url + "/mcp", HTTPClient: g.client(), OAuthHandler: handler}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	if err != nil || res.Content[0].(*mcp.TextContent).Text != "echo: hi" {
		t.Fatalf("tools/call: %v %v", res, err)
	}
	data := g.auditTrail(t)
	if !regexp.MustCompile(`"kind":"request"[^\n]*"tool":"echo"[^\n]*"by":"test-user@zitadel.ch"`).Match(data) {
		t.Fatalf("the audit trail does not name the person on the call:\n%s", data)
	}
}

// TestOIDCChromium: headless Chromium signs in at the provider's login
// page for an app's authorization; the owner is sent back to the app with
// a code, another user with access_denied and the reason.
func TestOIDCChromium(t *testing.T) {
	pp, node := os.Getenv("POMDEV_TEST_PUPPETEER"), os.Getenv("POMDEV_TEST_NODE22")
	chromium, err := exec.LookPath("chromium")
	if pp == "" || node == "" || err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("POMDEV_TEST_PUPPETEER, POMDEV_TEST_NODE22 and chromium are required in CI")
		}
		t.Skip("POMDEV_TEST_PUPPETEER / POMDEV_TEST_NODE22 / chromium missing")
	}
	g := startOIDCGated(t, "")
	chrome := func(user string) string {
		t.Helper()
		clientID := g.register(t, redirect)
		_, challenge := pkce()
		out, err := exec.Command(node, "testdata/chromium_oidc.mjs", pp, chromium, g.authorizeURL(clientID, challenge, "S256", g.url+"/mcp"), redirect, user, "verysecure").CombinedOutput()
		if err != nil {
			t.Fatalf("chromium: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := chrome("test-user@localhost"); !strings.HasPrefix(out, "BACK "+redirect) || !strings.Contains(out, "code=") {
		t.Fatalf("the owner in Chromium:\n%s", out)
	}
	// The refusal page sends the browser back to the app with the reason.
	if out := chrome("test-user2"); !strings.HasPrefix(out, "BACK "+redirect+"?error=access_denied") || !strings.Contains(out, "Only+the+tunnel%27s+owner") {
		t.Fatalf("another user in Chromium:\n%s", out)
	}
}

// TestOIDCOwnerApproval: with --owner-approval the owner hears of the
// request only once its person signed in and was allowed, sees who it is,
// and approves; then the app gets its code.
func TestOIDCOwnerApproval(t *testing.T) {
	g := startOIDCGatedWith(t, "", false, func(c *relay.Config) { c.OwnerApproval = true })
	clientID := g.register(t, redirect)
	verifier, challenge := pkce()
	b := g.browser(t)
	backp := stopAt(b, redirect)
	resp, err := b.Get(g.authorizeURL(clientID, challenge, "S256", g.url+"/mcp"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(g.ssh.Output(), "Access:") {
		t.Fatal("the owner heard of the request before anyone signed in")
	}
	resp = rt.LoginAtOP(t, b, resp, "test-user@localhost")
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	code := regexp.MustCompile(`class="code">([A-Z0-9-]+)<`).FindStringSubmatch(string(page))
	if *backp != nil || code == nil || !strings.Contains(string(page), "Signed in as</dt><dd>test-user@zitadel.ch") {
		t.Fatalf("after the sign-in the page waits for the owner (back %v):\n%s", *backp, page)
	}
	g.ssh.WaitContains(t, "signed in as test-user@zitadel.ch")
	if out := g.sshApprove(t, "approve", code[1]); !strings.Contains(out, "approved") {
		t.Fatalf("approve: %s", out)
	}
	resp, err = b.Get(resp.Request.URL.String()) // the page refreshes itself
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back := *backp
	if back == nil || back.Query().Get("code") == "" {
		t.Fatalf("not sent back with a code after the approval: %v", back)
	}
	status, tk := g.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {redirect},
		"client_id": {clientID}, "code_verifier": {verifier}, "resource": {g.url + "/mcp"}})
	if status != http.StatusOK || g.post(t, g.url+"/mcp", tk.Access).StatusCode != 200 {
		t.Fatalf("token %d", status)
	}
	seen := g.origin.seen()
	if id, err := g.h.R.Access().VerifyIdentity(seen[len(seen)-1].Get("X-Pomdev-Identity"), g.url+"/mcp"); err != nil || id.Email != "test-user@zitadel.ch" {
		t.Fatalf("identity %+v %v", id, err)
	}
	// Every request the owner heard of named its person.
	for line := range strings.Lines(g.ssh.Output()) {
		if strings.Contains(line, "asks for") && !strings.Contains(line, "signed in as") {
			t.Fatalf("the owner heard of a request before its sign-in: %s", line)
		}
	}
}

// TestOIDCConsent: with --http-auth oidc, an app's authorization that the
// relay allows waits, after the sign-in, for the person's Allow on a page
// that names the app, what is verified about it and where it returns.
// Only the browser that signed in decides; Deny tells the app; a client
// that already holds a grant is asked again (and works) the second time.
func TestOIDCConsent(t *testing.T) {
	g := startOIDCGated(t, "")
	evil := "http://127.0.0.1:9/evil"
	body := fmt.Sprintf(`{"client_name":"  ChatGPT   %s","redirect_uris":[%q],"token_endpoint_auth_method":"none"}`, strings.Repeat(" ", 200), evil)
	resp, err := g.client().Post(g.h.R.BaseURL()+"/oauth/register", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		ClientID string `json:"client_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	_, challenge := pkce()
	authURL := g.authorizeURL(reg.ClientID, challenge, "S256", g.url+"/mcp")
	authURL = strings.Replace(authURL, url.QueryEscape(redirect), url.QueryEscape(evil), 1)

	// The owner opens the link and signs in: the page asks, and nothing
	// went back to the app.
	b := g.browser(t)
	back := stopAt(b, evil)
	resp, err = b.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp = rt.LoginAtOP(t, b, resp, "test-user@localhost")
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if *back != nil || !consentRE.Match(page) {
		t.Fatalf("after the sign-in the app got %v; page:\n%s", *back, page)
	}
	for _, want := range []string{"<h1>Allow “ChatGPT”?</h1>", "test-user@zitadel.ch", "“ChatGPT”, registered dynamically from 127.0.0.1, unverified", "<code>http://127.0.0.1:9</code>", routeName(t, g)} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the consent page lacks %q:\n%s", want, page)
		}
	}

	// Another browser, even with the page's form secret, decides nothing.
	other := g.browser(t)
	if resp := g.consent(t, other, string(page), "allow"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("another browser's Allow: %d", resp.StatusCode)
	}
	id := consentFieldRE.FindStringSubmatch(string(page))
	if resp, err := other.Get(g.h.R.BaseURL() + "/oauth/approve?id=" + url.QueryEscape(html.UnescapeString(id[2]))); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("another browser opening the consent page: %v %v", resp, err)
	}
	if *back != nil {
		t.Fatalf("the app got %v", *back)
	}

	// Deny: the app is told.
	resp = g.consent(t, b, string(page), "deny")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("deny: %d", resp.StatusCode)
	}

	// A client that holds a grant, authorized a second time for the same
	// owner, asks again and gets its code (once it panicked in op).
	clientID := g.register(t, redirect)
	for i := range 2 {
		_, challenge := pkce()
		back, page := g.browseOIDC(t, g.authorizeURL(clientID, challenge, "S256", g.url+"/mcp"), redirect, "test-user@localhost")
		if back == nil || back.Query().Get("code") == "" {
			t.Fatalf("authorization %d of one client: %v\n%s", i+1, back, page)
		}
	}
}

// routeName is the name of g's route.
func routeName(t *testing.T, g *gatedTunnel) string {
	t.Helper()
	for name, u := range g.h.R.Routes() {
		if u == g.url {
			return name
		}
	}
	t.Fatalf("no route for %s", g.url)
	return ""
}

// TestOIDCPolicyRevokesCallers: a person whom a policy reload removes from
// a route's callers loses access at once: their access token is refused
// and their refresh token mints no new one.
func TestOIDCPolicyRevokesCallers(t *testing.T) {
	listed := "routes:\n  - name: \"*\"\n    callers: [\"email:test-user2@zitadel.ch\"]\n"
	g := startOIDCGated(t, listed)
	p, _ := g.h.R.Policy()
	clientID := g.register(t, redirect)
	verifier, challenge := pkce()
	back, page := g.browseOIDC(t, g.authorizeURL(clientID, challenge, "S256", g.url+"/mcp"), redirect, "test-user2")
	if back == nil || back.Query().Get("code") == "" {
		t.Fatalf("the listed caller got no code: %v\n%s", back, page)
	}
	status, tk := g.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {redirect},
		"client_id": {clientID}, "code_verifier": {verifier}, "resource": {g.url + "/mcp"}})
	if status != http.StatusOK || g.post(t, g.url+"/mcp", tk.Access).StatusCode != 200 {
		t.Fatalf("the listed caller's token: %d %+v", status, tk)
	}
	// The admin removes them.
	if err := os.WriteFile(p.File, []byte("routes:\n  - name: \"*\"\n    callers: [\"email:nobody@example.com\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rt.WaitFor(t, func() bool { return g.post(t, g.url+"/mcp", tk.Access).StatusCode == http.StatusUnauthorized }, "the removed caller's access token refused")
	status, again := g.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.Refresh}, "client_id": {clientID}})
	if status == http.StatusOK || again.Access != "" {
		t.Fatalf("the removed caller refreshed: %d %+v", status, again)
	}
	if !strings.Contains(string(g.auditTrail(t)), `"decision":"revoked"`) {
		t.Fatalf("the audit trail does not record the revocation:\n%s", g.auditTrail(t))
	}
}
