package relay_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/pomdev/pomdev/internal/relay/console"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/pomdev/pomdev/internal/mcpcheck"
	"github.com/pomdev/pomdev/internal/preview"
	"github.com/pomdev/pomdev/internal/relay"
	"github.com/pomdev/pomdev/internal/relay/access"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
)

// mcpOrigin is an official Go SDK MCP server behind the tunnel that
// records the headers of the requests it gets.
type mcpOrigin struct {
	*httptest.Server
	mu      sync.Mutex
	headers []http.Header
}

func newMCPOrigin(t *testing.T) *mcpOrigin {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "origin", Version: "1"}, nil)
	type args struct {
		Text string `json:"text"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echoes"}, func(_ context.Context, _ *mcp.CallToolRequest, a args) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "echo: " + a.Text}}}, nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	o := &mcpOrigin{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.headers = append(o.headers, r.Header.Clone())
		o.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *mcpOrigin) seen() []http.Header {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]http.Header(nil), o.headers...)
}

// gatedTunnel is a relay with --http-auth owner and a stock ssh -R 0
// tunnel to an MCP origin.
type gatedTunnel struct {
	h      *rt.Harness
	key    string
	origin *mcpOrigin
	url    string // the route's URL
	ssh    *rt.SSH
	pool   *x509.CertPool
	jar    http.CookieJar // the browser's cookies, kept across browse calls
}

func startGated(t *testing.T, mod func(*relay.Config)) *gatedTunnel {
	return newGated(t, mod, false)
}

// newGated starts the relay and the origin, and the tunnel unless
// noTunnel.
func newGated(t *testing.T, mod func(*relay.Config), noTunnel bool) *gatedTunnel {
	t.Helper()
	rt.RequireOpenSSH(t)
	cert, pool := testCert(t)
	h := rt.StartRelay(t, func(c *relay.Config) {
		c.HTTPAuth = relay.HTTPAuthOwner
		c.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		if mod != nil {
			mod(c)
		}
	})
	if h.R.Access() == nil {
		t.Fatal("relay has no authorization server with HTTPAuth owner")
	}
	key, _ := rt.WriteKey(t)
	g := &gatedTunnel{h: h, key: key, origin: newMCPOrigin(t), pool: pool}
	if !noTunnel {
		g.ssh = h.RunSSH(key, "-T", "-o", "SetEnv=POMDEV_TARGET="+g.target(), "-R", "0")
		g.ssh.WaitLine(t, "Remote: ")
		g.url = h.WaitURL()
	}
	return g
}

// target is the origin's host:port.
func (g *gatedTunnel) target() string { return strings.TrimPrefix(g.origin.URL, "http://") }

// client is an HTTPS client of the relay's front.
func (g *gatedTunnel) client() *http.Client {
	if g.pool == nil {
		return g.h.Client()
	}
	return tlsClient(g.h, g.pool)
}

func (g *gatedTunnel) get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := g.client().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// noRedirect is the harness client that hands redirects back.
func (g *gatedTunnel) noRedirect() *http.Client {
	c := g.client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

var backRE = regexp.MustCompile(`<a href="([^"]+)">Back to the application`)

var codeRE = regexp.MustCompile(`class="code">([0-9A-Z]{4}-[0-9A-Z]{4})<`)

// ownerBrowser is the harness client with the owner's browser's cookies that hands
// redirects back.
func (g *gatedTunnel) ownerBrowser() *http.Client {
	c := g.noRedirect()
	if g.jar == nil {
		g.jar, _ = cookiejar.New(nil)
	}
	c.Jar = g.jar
	return c
}

// browse plays the browser from the authorize URL: it follows redirects
// to the approval page, hands its code to approve, waits on the page until
// it moves on and returns where the relay finally sends the browser back.
func (g *gatedTunnel) browse(t *testing.T, authURL string, approve func(code string)) *url.URL {
	t.Helper()
	c := g.ownerBrowser()
	next := authURL
	approved := false
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := c.Get(next)
		if err != nil {
			t.Fatalf("GET %s: %v", next, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode/100 == 3:
			loc, err := resp.Location()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(loc.String(), g.h.R.BaseURL()) {
				return loc
			}
			next = loc.String()
		case resp.StatusCode == http.StatusOK && strings.Contains(string(body), "Waiting for the tunnel"):
			if !approved {
				m := codeRE.FindStringSubmatch(string(body))
				if m == nil {
					t.Fatalf("approval page without a code:\n%s", body)
				}
				approve(m[1])
				approved = true
			}
			time.Sleep(20 * time.Millisecond) // the page's own refresh, faster
		case resp.StatusCode == http.StatusForbidden:
			// Denied or expired: the page sends the browser back.
			m := backRE.FindStringSubmatch(string(body))
			if m == nil {
				t.Fatalf("refusal page without a way back:\n%s", body)
			}
			loc, err := url.Parse(html.UnescapeString(m[1]))
			if err != nil {
				t.Fatal(err)
			}
			return loc
		default:
			t.Fatalf("GET %s: %d\n%s", next, resp.StatusCode, body)
		}
	}
	t.Fatal("the approval page never moved on")
	return nil
}

// sshApprove approves with the stock ssh client and the tunnel's own key.
func (g *gatedTunnel) sshApprove(t *testing.T, verb, code string) string {
	t.Helper()
	bin := rt.RequireOpenSSH(t)
	out, err := exec.Command(bin, "-F", "/dev/null", "-i", g.key, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-p", g.h.SSHPort(), "127.0.0.1", relay.AccessCommand, verb, code).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh %s %s %s: %v\n%s", relay.AccessCommand, verb, code, err, out)
	}
	return string(out)
}

func (g *gatedTunnel) fetcher(t *testing.T, approve func(string)) auth.AuthorizationCodeFetcher {
	return func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		back := g.browse(t, args.URL, approve)
		q := back.Query()
		if e := q.Get("error"); e != "" {
			return nil, fmt.Errorf("authorization error %s: %s", e, q.Get("error_description"))
		}
		return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
	}
}

// TestOAuthGoSDKClient: the official Go SDK's client-side OAuth handler
// discovers the relay from the 401, registers dynamically, opens the
// authorize page; the tunnel's owner approves with `ssh relay
// pomdev-access approve CODE`; the client lists and calls tools. The app
// never sees the relay's token, only a signed identity.
func TestOAuthGoSDKClient(t *testing.T) {
	g := startGated(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var decided string
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: "Go SDK test host", RedirectURIs: []string{"http://127.0.0.1:9/callback"},
			TokenEndpointAuthMethod: "none", GrantTypes: []string{"authorization_code", "refresh_token"},
		}},
		RedirectURL:              "http://127.0.0.1:9/callback",
		AuthorizationCodeFetcher: g.fetcher(t, func(code string) { decided = g.sshApprove(t, "approve", code) }),
		RequestRefreshToken:      true,
		Client:                   g.client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "host", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: g.url + "/mcp", HTTPClient: g.client(), OAuthHandler: handler}, nil)
	if err != nil {
		t.Fatalf("connect through the gated tunnel: %v", err)
	}
	defer cs.Close()
	if !strings.Contains(decided, "approved") {
		t.Errorf("ssh pomdev-access approve said %q", decided)
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) != 1 || tools.Tools[0].Name != "echo" {
		t.Fatalf("tools/list: %v %v", tools, err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	if err != nil || res.Content[0].(*mcp.TextContent).Text != "echo: hi" {
		t.Fatalf("tools/call: %v %v", res, err)
	}
	seen := g.origin.seen()
	if len(seen) == 0 {
		t.Fatal("the app saw no request")
	}
	for _, h := range seen {
		if h.Get("Authorization") != "" {
			t.Fatalf("the app received the relay's token: %q", h.Get("Authorization"))
		}
		id, err := g.h.R.Access().VerifyIdentity(h.Get(access.IdentityHeader), g.url+"/mcp")
		if err != nil {
			t.Fatalf("identity assertion: %v", err)
		}
		if id.Route == "" || !strings.HasPrefix(id.Owner, "SHA256:") || id.ClientID == "" {
			t.Fatalf("identity %+v", id)
		}
	}
	grants, err := g.h.R.Access().Grants(ctx, "")
	if err != nil || len(grants) != 1 || grants[0].ClientName != "Go SDK test host" {
		t.Fatalf("grants: %+v %v", grants, err)
	}

	// The audit trail has the whole story.
	data := g.auditTrail(t)
	kinds := map[string]bool{}
	var toolCall *access.Entry
	for line := range strings.Lines(string(data)) {
		var e access.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		kinds[e.Kind+"/"+e.Decision] = true
		if e.Kind == "request" && e.Method == "tools/call" {
			toolCall = &e
		}
	}
	for _, want := range []string{"refused/deny", "authorize/pending", "decision/approved", "token/issued", "request/allow"} {
		if !kinds[want] {
			t.Errorf("audit trail lacks %s:\n%s", want, data)
		}
	}
	if toolCall == nil || toolCall.Tool != "echo" || toolCall.Status != 200 || toolCall.Client != grants[0].ClientID || toolCall.Grant != grants[0].ID {
		t.Errorf("tools/call audit entry %+v", toolCall)
	}
}

// pkce is a verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// register makes a public client by dynamic registration.
func (g *gatedTunnel) register(t *testing.T, redirect string) string {
	t.Helper()
	body := fmt.Sprintf(`{"client_name":"raw client","redirect_uris":[%q],"token_endpoint_auth_method":"none"}`, redirect)
	resp, err := g.client().Post(g.h.R.BaseURL()+access.PathRegister, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		ClientID string `json:"client_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d %v", resp.StatusCode, err)
	}
	return r.ClientID
}

const redirect = "http://127.0.0.1:9/cb"

func (g *gatedTunnel) authorizeURL(clientID, challenge, method, resource string) string {
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect}, "state": {"st"},
		"code_challenge": {challenge}, "code_challenge_method": {method}, "resource": {resource}, "scope": {"mcp"}}
	return g.h.R.BaseURL() + access.PathAuthorize + "?" + q.Encode()
}

type tokens struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
	IDToken string `json:"id_token"`
	Error   string `json:"error"`
}

func (g *gatedTunnel) token(t *testing.T, form url.Values) (int, tokens) {
	t.Helper()
	resp, err := g.client().PostForm(g.h.R.BaseURL()+access.PathToken, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tk tokens
	_ = json.NewDecoder(resp.Body).Decode(&tk)
	return resp.StatusCode, tk
}

// grant runs the whole flow by hand and returns the tokens.
func (g *gatedTunnel) grant(t *testing.T) (clientID string, tk tokens) {
	t.Helper()
	clientID = g.register(t, redirect)
	verifier, challenge := pkce()
	back := g.browse(t, g.authorizeURL(clientID, challenge, "S256", g.url+"/mcp"), func(code string) { g.sshApprove(t, "approve", code) })
	code := back.Query().Get("code")
	if code == "" || back.Query().Get("state") != "st" {
		t.Fatalf("redirect back %s", back)
	}
	status, tk := g.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"client_id": {clientID}, "code_verifier": {verifier}, "resource": {g.url + "/mcp"}})
	if status != http.StatusOK || tk.Access == "" || tk.Refresh == "" {
		t.Fatalf("token: %d %+v", status, tk)
	}
	return clientID, tk
}

// mcpRequest is a Streamable HTTP POST of body to u, with bearer if set.
func mcpRequest(u, bearer, body string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return req
}

func (g *gatedTunnel) post(t *testing.T, u, bearer string) *http.Response {
	t.Helper()
	resp, err := g.client().Do(mcpRequest(u, bearer, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestOAuthGate: what reaches a gated route and what does not.
func TestOAuthGate(t *testing.T) {
	g := startGated(t, nil)
	mcpURL := g.url + "/mcp"

	t.Run("no token", func(t *testing.T) {
		resp := g.post(t, mcpURL, "")
		ch := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(ch, `resource_metadata="`+g.url+`/.well-known/oauth-protected-resource/mcp"`) ||
			strings.Contains(ch, "invalid_token") {
			t.Fatalf("%d %q", resp.StatusCode, ch)
		}
		if len(g.origin.seen()) != 0 {
			t.Fatal("a request without a token reached the app")
		}
	})
	t.Run("metadata", func(t *testing.T) {
		for _, p := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
			status, body := g.get(t, g.url+p)
			var prm oauthex.ProtectedResourceMetadata
			if status != 200 || json.Unmarshal([]byte(body), &prm) != nil || prm.Resource != mcpURL ||
				len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != g.h.R.BaseURL() {
				t.Fatalf("%s: %d %s", p, status, body)
			}
		}
		status, body := g.get(t, g.h.R.BaseURL()+access.PathASMeta)
		var asm oauthex.AuthServerMeta
		if status != 200 || json.Unmarshal([]byte(body), &asm) != nil || asm.Issuer != g.h.R.BaseURL() ||
			!asm.ClientIDMetadataDocumentSupported || strings.Join(asm.CodeChallengeMethodsSupported, ",") != "S256" {
			t.Fatalf("AS metadata: %d %s", status, body)
		}
	})
	t.Run("garbage token", func(t *testing.T) {
		resp := g.post(t, mcpURL, "not-a-token")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})

	clientID, tk := g.grant(t)
	t.Run("valid token", func(t *testing.T) {
		if resp := g.post(t, mcpURL, tk.Access); resp.StatusCode != http.StatusOK {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
	t.Run("tampered token", func(t *testing.T) {
		b := []byte(tk.Access)
		b[len(b)/2] ^= 1
		if resp := g.post(t, mcpURL, string(b)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
	t.Run("token of another route", func(t *testing.T) {
		key2, _ := rt.WriteKey(t)
		o2 := newMCPOrigin(t)
		p := g.h.RunSSH(key2, "-T", "-o", "SetEnv=POMDEV_TARGET="+strings.TrimPrefix(o2.URL, "http://"), "-R", "0")
		other := strings.TrimPrefix(p.WaitLine(t, "Remote: "), "Remote: ")
		if other == g.url {
			t.Fatal("second key got the same route")
		}
		if resp := g.post(t, other+"/mcp", tk.Access); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token of route A accepted on route B: %d", resp.StatusCode)
		}
		if len(o2.seen()) != 0 {
			t.Fatal("route B's app saw the request")
		}
	})
	t.Run("refresh rotates; reuse revokes the family", func(t *testing.T) {
		refresh := func(rt string) (int, tokens) {
			return g.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}})
		}
		status, tk2 := refresh(tk.Refresh)
		if status != 200 || tk2.Refresh == "" || tk2.Refresh == tk.Refresh {
			t.Fatalf("refresh: %d %+v", status, tk2)
		}
		if resp := g.post(t, mcpURL, tk2.Access); resp.StatusCode != 200 {
			t.Fatalf("refreshed access token: %d", resp.StatusCode)
		}
		if status, _ := refresh(tk.Refresh); status != http.StatusBadRequest {
			t.Fatalf("reused refresh token: %d", status)
		}
		if status, _ := refresh(tk2.Refresh); status != http.StatusBadRequest {
			t.Fatalf("the family's newest refresh token still works after a reuse: %d", status)
		}
		if resp := g.post(t, mcpURL, tk2.Access); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the family's access token still works after a reuse: %d", resp.StatusCode)
		}
	})
}

// TestOAuthCodeOnce: an authorization code is good for one presentation.
// One whose PKCE verifier was wrong is spent (a second try with the right
// verifier gets nothing), and a code presented again after a successful
// exchange revokes the tokens that exchange got (RFC 6749 §4.1.2), their
// refreshed successors too.
func TestOAuthCodeOnce(t *testing.T) {
	g := startGated(t, nil)
	mcpURL := g.url + "/mcp"
	clientID := g.register(t, redirect)
	code := func(challenge string) string {
		back := g.browse(t, g.authorizeURL(clientID, challenge, "S256", mcpURL), func(code string) { g.sshApprove(t, "approve", code) })
		return back.Query().Get("code")
	}
	exchange := func(code, verifier string) (int, tokens) {
		return g.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
			"client_id": {clientID}, "code_verifier": {verifier}, "resource": {mcpURL}})
	}

	verifier, challenge := pkce()
	c := code(challenge)
	if status, tk := exchange(c, "a-wrong-verifier-of-the-right-length-0123456789ab"); status != http.StatusBadRequest || tk.Access != "" {
		t.Fatalf("a wrong verifier: %d %+v", status, tk)
	}
	if status, tk := exchange(c, verifier); status != http.StatusBadRequest || tk.Access != "" || tk.Error != "invalid_grant" {
		t.Fatalf("the right verifier after a wrong one: %d %+v", status, tk)
	}

	verifier, challenge = pkce()
	c = code(challenge)
	status, tk := exchange(c, verifier)
	if status != http.StatusOK || tk.Access == "" || tk.Refresh == "" {
		t.Fatalf("exchange: %d %+v", status, tk)
	}
	status, tk2 := g.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.Refresh}, "client_id": {clientID}})
	if status != http.StatusOK || tk2.Access == "" {
		t.Fatalf("refresh: %d %+v", status, tk2)
	}
	// A client the relay does not know is the caller's mistake
	// (invalid_client), not a server error, and uses nobody's token.
	for _, id := range []string{"", "nope", strings.Repeat("é", 200)} {
		status, bad := g.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk2.Refresh}, "client_id": {id}})
		if status/100 != 4 || bad.Access != "" || (bad.Error != "invalid_client" && bad.Error != "invalid_request") {
			t.Fatalf("refresh with client_id %.20q: %d %+v", id, status, bad)
		}
	}
	if resp := g.post(t, mcpURL, tk2.Access); resp.StatusCode != http.StatusOK {
		t.Fatalf("the refreshed token before the code's reuse: %d", resp.StatusCode)
	}
	if status, again := exchange(c, verifier); status != http.StatusBadRequest || again.Access != "" {
		t.Fatalf("the code presented again: %d %+v", status, again)
	}
	for _, a := range []string{tk.Access, tk2.Access} {
		if resp := g.post(t, mcpURL, a); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a token of the reused code still works: %d", resp.StatusCode)
		}
	}
	if status, _ := g.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk2.Refresh}, "client_id": {clientID}}); status != http.StatusBadRequest {
		t.Fatalf("the refresh token of the reused code still works: %d", status)
	}
	rt.WaitFor(t, func() bool {
		data, _ := os.ReadFile(filepath.Join(g.h.StateDir, access.AuditFile))
		return strings.Contains(string(data), "authorization code presented twice")
	}, "the audit trail's line for the reused code")
}

// TestOAuthAuthorizeRefusals: requests the authorization server refuses
// before anyone is asked.
func TestOAuthAuthorizeRefusals(t *testing.T) {
	g := startGated(t, nil)
	clientID := g.register(t, redirect)
	_, challenge := pkce()
	c := g.noRedirect()
	get := func(u string) (int, *url.URL, string) {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		loc, _ := resp.Location()
		return resp.StatusCode, loc, string(b)
	}
	t.Run("plain PKCE", func(t *testing.T) {
		status, loc, body := get(g.authorizeURL(clientID, challenge, "plain", g.url+"/mcp"))
		if status/100 != 3 || loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("%d %v %s", status, loc, body)
		}
	})
	t.Run("no PKCE", func(t *testing.T) {
		status, loc, _ := get(g.authorizeURL(clientID, "", "", g.url+"/mcp"))
		if status/100 != 3 || loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("%d %v", status, loc)
		}
	})
	t.Run("unregistered redirect", func(t *testing.T) {
		u := strings.Replace(g.authorizeURL(clientID, challenge, "S256", g.url+"/mcp"), url.QueryEscape(redirect), url.QueryEscape("https://evil.example/cb"), 1)
		status, loc, _ := get(u)
		if status != http.StatusBadRequest || loc != nil {
			t.Fatalf("%d %v", status, loc)
		}
	})
	t.Run("resource of no route", func(t *testing.T) {
		status, loc, _ := get(g.authorizeURL(clientID, challenge, "S256", "https://elsewhere.example/mcp"))
		if status/100 != 3 || loc.Query().Get("error") != "invalid_target" {
			t.Fatalf("%d %v", status, loc)
		}
	})
	t.Run("wrong verifier", func(t *testing.T) {
		_, challenge := pkce()
		back := g.browse(t, g.authorizeURL(clientID, challenge, "S256", g.url+"/mcp"), func(code string) { g.sshApprove(t, "approve", code) })
		wrong, _ := pkce()
		status, tk := g.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {redirect},
			"client_id": {clientID}, "code_verifier": {wrong}})
		if status != http.StatusBadRequest || tk.Access != "" {
			t.Fatalf("wrong PKCE verifier: %d %+v", status, tk)
		}
	})
	t.Run("denied", func(t *testing.T) {
		other := g.register(t, redirect)
		back := g.browse(t, g.authorizeURL(other, challenge, "S256", g.url+"/mcp"), func(code string) { g.sshApprove(t, "deny", code) })
		if back.Query().Get("error") != "access_denied" || back.Query().Get("state") != "st" {
			t.Fatalf("denied: %s", back)
		}
	})
}

// TestOAuthApprovalGuessing: wrong codes are limited per key.
func TestOAuthApprovalGuessing(t *testing.T) {
	g := startGated(t, nil)
	a := g.h.R.Access()
	var last error
	for i := range 12 {
		_, last = a.Decide(context.Background(), fmt.Sprintf("AAAA-%04d", i), true, "SHA256:guesser", "test")
	}
	if !errors.Is(last, access.ErrTooMany) {
		t.Fatalf("after 12 wrong codes: %v", last)
	}
}

// TestOAuthRegistrationFlood: dynamic registration is rate-limited per
// address.
func TestOAuthRegistrationFlood(t *testing.T) {
	g := startGated(t, nil)
	limited := false
	for range 20 {
		resp, err := g.client().Post(g.h.R.BaseURL()+access.PathRegister, "application/json",
			strings.NewReader(`{"redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"none"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			limited = true
			break
		}
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("register: %d", resp.StatusCode)
		}
	}
	if !limited {
		t.Fatal("20 registrations from one address in a row were all accepted")
	}
}

// ownerScreen opens g's tunnel with the stock ssh client on a tmux pane
// cols wide (the owner's status screen) and sets g.url; tm runs a tmux
// command on that server, capture reads the pane.
func (g *gatedTunnel) ownerScreen(t *testing.T, cols int) (tm func(args ...string) string, capture func() string) {
	t.Helper()
	tmux := requireTmux(t)
	sshBin := rt.RequireOpenSSH(t)
	sock := filepath.Join(t.TempDir(), "tmux.sock")
	tm = func(args ...string) string {
		out, err := exec.Command(tmux, append([]string{"-S", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	cmdline := strings.Join([]string{sshBin, "-F", "/dev/null", "-i", g.key, "-o", "IdentitiesOnly=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-o", "SetEnv=POMDEV_TARGET=" + g.target(), "-p", g.h.SSHPort(), "-R", "0", "127.0.0.1"}, " ")
	tm("new-session", "-d", "-s", "owner", "-x", fmt.Sprint(cols), "-y", "40", cmdline+"; sleep 30")
	t.Cleanup(func() { _ = exec.Command(tmux, "-S", sock, "kill-server").Run() })
	g.url = g.h.WaitURL()
	return tm, func() string { return tm("capture-pane", "-p", "-t", "owner") }
}

// TestOAuthStatusScreenApprove: a stock `ssh -R 0` user with a PTY (tmux)
// sees the access request on the status screen, with the code the browser
// shows, and approves it with a; the same request reaches pomdev-events.
func TestOAuthStatusScreenApprove(t *testing.T) {
	g := newGated(t, nil, true)
	tm, capture := g.ownerScreen(t, 140)
	events := g.h.RunSSH(g.key, "-T", "--", relay.EventsCommand)

	clientID := g.register(t, redirect)
	verifier, challenge := pkce()
	var screen string
	back := g.browse(t, g.authorizeURL(clientID, challenge, "S256", g.url+"/mcp"), func(code string) {
		rt.WaitFor(t, func() bool { screen = capture(); return strings.Contains(screen, "code "+code) }, "the request on the status screen")
		// The events stream has it too (sent when it starts, if later).
		rt.WaitFor(t, func() bool { return strings.Contains(events.Output(), `"code":"`+code+`"`) }, "the request on pomdev-events")
		for _, want := range []string{"Access Requests", "raw client", "http://127.0.0.1:9", "a: allow"} {
			if !strings.Contains(screen, want) {
				t.Errorf("screen lacks %q:\n%s", want, screen)
			}
		}
		tm("send-keys", "-t", "owner", "a")
	})
	if back.Query().Get("code") == "" {
		t.Fatalf("back without a code: %s", back)
	}
	rt.WaitFor(t, func() bool {
		screen = capture()
		return strings.Contains(screen, "approved") && !strings.Contains(screen, "Access Requests")
	},
		"the decision on the status screen")
	status, tk := g.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {redirect},
		"client_id": {clientID}, "code_verifier": {verifier}})
	if status != 200 || g.post(t, g.url+"/mcp", tk.Access).StatusCode != 200 {
		t.Fatalf("token %d %+v", status, tk)
	}
	var ev console.Event
	if err := json.Unmarshal([]byte(events.WaitContains(t, `"type":"access"`)), &ev); err != nil || ev.Route == "" {
		t.Fatalf("access event %+v %v", ev, err)
	}
}

// TestOAuthClientMetadataDocument: a client identified by the HTTPS URL of
// its metadata document (the Go SDK's CIMD registration), fetched by the
// relay; a second authorization of the same client is remembered, also
// across a relay restart.
func TestOAuthClientMetadataDocument(t *testing.T) {
	var docURL string
	doc := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"client_id":%q,"client_name":"CIMD host","redirect_uris":["http://127.0.0.1:9/callback"],"grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"none"}`, docURL)
	}))
	defer doc.Close()
	docURL = doc.URL + "/client.json"
	roots := x509.NewCertPool()
	roots.AddCert(doc.Certificate())
	mod := func(c *relay.Config) { c.FetchRoots = roots }
	g := startGated(t, mod)

	asks := 0
	connect := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
			ClientIDMetadataDocumentConfig: &auth.ClientIDMetadataDocumentConfig{URL: docURL},
			RedirectURL:                    "http://127.0.0.1:9/callback",
			AuthorizationCodeFetcher:       g.fetcher(t, func(code string) { asks++; g.sshApprove(t, "approve", code) }),
			Client:                         g.client(),
		})
		if err != nil {
			return err
		}
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "host", Version: "1"}, nil).Connect(ctx,
			&mcp.StreamableClientTransport{Endpoint: g.url + "/mcp", HTTPClient: g.client(), OAuthHandler: handler}, nil)
		if err != nil {
			return err
		}
		defer cs.Close()
		_, err = cs.ListTools(ctx, nil)
		return err
	}
	if err := connect(); err != nil {
		t.Fatal(err)
	}
	if err := connect(); err != nil {
		t.Fatal(err)
	}
	if asks != 1 {
		t.Fatalf("the owner was asked %d times for one client", asks)
	}
	grants, _ := g.h.R.Access().Grants(context.Background(), "")
	if len(grants) != 1 || grants[0].ClientID != docURL || grants[0].ClientName != "CIMD host" {
		t.Fatalf("grants %+v", grants)
	}

	// The relay restarts; the tunnel reconnects; the grant holds.
	g.ssh.Kill()
	g.h.Restart(func(c *relay.Config) {
		c.HTTPAuth = relay.HTTPAuthOwner
		c.TLS = g.h.Config.TLS
		mod(c)
	})
	g.ssh = g.h.RunSSH(g.key, "-T", "-o", "SetEnv=POMDEV_TARGET="+g.target(), "-R", "0")
	if u := strings.TrimPrefix(g.ssh.WaitLine(t, "Remote: "), "Remote: "); u != g.url {
		t.Fatalf("route moved: %s then %s", g.url, u)
	}
	if err := connect(); err != nil {
		t.Fatal(err)
	}
	if asks != 1 {
		t.Fatalf("the owner was asked again after a restart (%d)", asks)
	}

	// Revoked, the next authorization asks again.
	if err := g.h.R.Access().RevokeGrant(context.Background(), grants[0].ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := connect(); err != nil {
		t.Fatal(err)
	}
	if asks != 2 {
		t.Fatalf("asks after revocation = %d, want 2", asks)
	}
}

// TestOAuthRevocation: RFC 7009 revocation of an access token ends it at
// once; of a refresh token, its family.
func TestOAuthRevocation(t *testing.T) {
	g := startGated(t, nil)
	clientID, tk := g.grant(t)
	revoke := func(tok string) {
		resp, err := g.client().PostForm(g.h.R.BaseURL()+access.PathRevoke, url.Values{"token": {tok}, "client_id": {clientID}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("revoke: %d", resp.StatusCode)
		}
	}
	if g.post(t, g.url+"/mcp", tk.Access).StatusCode != 200 {
		t.Fatal("fresh token refused")
	}
	revoke(tk.Access)
	if c := g.post(t, g.url+"/mcp", tk.Access).StatusCode; c != http.StatusUnauthorized {
		t.Fatalf("revoked access token: %d", c)
	}
	status, tk2 := g.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.Refresh}, "client_id": {clientID}})
	if status != 200 {
		t.Fatalf("refresh after revoking the access token: %d", status)
	}
	revoke(tk2.Refresh)
	if c := g.post(t, g.url+"/mcp", tk2.Access).StatusCode; c != http.StatusUnauthorized {
		t.Fatalf("access token of a revoked family: %d", c)
	}
}

// TestOAuthTypeScriptSDK: the official TypeScript SDK's client
// (StreamableHTTPClientTransport with an OAuthClientProvider) through a
// gated tunnel: discovery from the 401, dynamic registration, PKCE, the
// owner's approval, token exchange, tools listed and called.
func TestOAuthTypeScriptSDK(t *testing.T) {
	node, sdk := requireTSSDK(t)
	g := newGated(t, func(c *relay.Config) { c.TLS = nil }, false)
	g.pool = nil
	line, stderr, err := runTSOAuthClient(t, node, sdk, g.url+"/mcp", func(authURL string) string {
		return g.browse(t, authURL, func(code string) { g.sshApprove(t, "approve", code) }).String()
	})
	if err != nil || line == "" {
		t.Fatalf("node: %v %s\n%s", err, line, stderr)
	}
	var r struct {
		Tools   []string `json:"tools"`
		Text    string   `json:"text"`
		Refresh bool     `json:"refresh"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "RESULT ")), &r); err != nil {
		t.Fatal(err)
	}
	if strings.Join(r.Tools, ",") != "echo" || r.Text != "echo: from ts" || !r.Refresh {
		t.Fatalf("TS client result %+v", r)
	}
}

// runTSOAuthClient runs testdata/ts_oauth_client.mjs against mcpURL;
// authorize gets each authorize URL the SDK opens and returns the URL the
// browser came back to. It returns the RESULT line ("" if none), the
// client's stderr and how it exited.
func runTSOAuthClient(t *testing.T, node, sdk, mcpURL string, authorize func(string) string) (result, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(node, "testdata/ts_oauth_client.mjs", sdk, mcpURL)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		line := lines.Text()
		switch {
		case strings.HasPrefix(line, "AUTHORIZE "):
			fmt.Fprintln(stdin, authorize(strings.TrimPrefix(line, "AUTHORIZE ")))
		case strings.HasPrefix(line, "RESULT "):
			result = line
			stdin.Close()
		}
	}
	stdin.Close()
	err = cmd.Wait()
	return result, errb.String(), err
}

// TestOAuthAuthorizePageChromium: the authorize page in headless Chromium
// waits (refreshing itself) until the owner approves, then sends the
// browser back to the app with a code.
func TestOAuthAuthorizePageChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is required in CI")
		}
		t.Skip("chromium not installed")
	}
	g := newGated(t, func(c *relay.Config) { c.TLS = nil }, false)
	g.pool = nil
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "<!doctype html><p id=back>code=%s state=%s</p>", html.EscapeString(r.URL.Query().Get("code")), html.EscapeString(r.URL.Query().Get("state")))
	}))
	defer app.Close()
	cb := app.URL + "/cb"
	clientID := g.register(t, cb)
	_, challenge := pkce()
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {cb}, "state": {"chromium"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "resource": {g.url + "/mcp"}}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// Virtual time runs the page's 2 s refreshes fast; the budget covers
	// many of them while the test approves.
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=600000",
		"--dump-dom", g.h.R.BaseURL()+access.PathAuthorize+"?"+q.Encode())
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := g.h.R.Access()
	var code string
	rt.WaitFor(t, func() bool {
		qs, _ := a.Pending(ctx, "")
		if len(qs) == 1 {
			code = qs[0].Code
		}
		return code != ""
	}, "the browser's request")
	if _, err := a.Decide(ctx, code, true, "", "test"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if !regexp.MustCompile(`id="back">code=\S+ state=chromium<`).MatchString(out.String()) {
		t.Fatalf("chromium did not come back to the app with a code:\n%s", out.String())
	}
}

// Only the relay asserts identities and client addresses: a client's own
// X-Pomdev-Identity, X-Real-IP and the like never reach the app, on an
// open relay too.
func TestIdentityHeaderNotForgeable(t *testing.T) {
	h := rt.StartRelay(t, func(c *relay.Config) { c.HTTPAuth = relay.HTTPAuthNone })
	key, _ := rt.WriteKey(t)
	o := newMCPOrigin(t)
	p := h.RunSSH(key, "-T", "-o", "SetEnv=POMDEV_TARGET="+strings.TrimPrefix(o.URL, "http://"), "-R", "0")
	u := strings.TrimPrefix(p.WaitLine(t, "Remote: "), "Remote: ")
	req, _ := http.NewRequest(http.MethodGet, u+"/", nil)
	req.Header.Set(access.IdentityHeader, "forged")
	// Claims of the client's address or identity in other proxies'
	// dialects, and with "_" for "-" (which CGI-style servers fold).
	claims := []string{"X-Real-IP", "True-Client-IP", "X-Client-IP", "CF-Connecting-IP", "Fastly-Client-IP", "X-Cluster-Client-IP", "X_Pomdev_Identity", "x_forwarded_for", "X-Forwarded-Port"}
	for _, k := range claims {
		req.Header[k] = []string{"203.0.113.9"}
	}
	resp, err := h.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	seen := o.seen()
	if len(seen) != 1 {
		t.Fatalf("the app saw %d requests", len(seen))
	}
	if v := seen[0].Get(access.IdentityHeader); v != "" {
		t.Fatalf("a forged identity reached the app: %q", v)
	}
	for k, v := range seen[0] {
		for _, x := range v {
			if strings.Contains(x, "203.0.113.9") {
				t.Errorf("the client's claim %s: %s reached the app", k, x)
			}
		}
	}
}

// TestOAuthInspectLogin: pomdev inspect's check is refused by a gated
// tunnel with the challenge that leads to the relay; --login (dynamic
// registration, PKCE, a loopback redirect) gets a token once the owner
// approves, and the check then lists the tools.
func TestOAuthInspectLogin(t *testing.T) {
	// Over https, as a public relay serves: the go-sdk's OAuth client takes
	// plain http only from localhost and loopback addresses, not from
	// *.localhost route names.
	g := newGated(t, nil, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := mcpcheck.Run(ctx, mcpcheck.Options{URL: g.url + "/mcp", Timeout: 15 * time.Second, HTTPClient: g.client()})
	var ae *mcpcheck.AuthError
	if !errors.As(err, &ae) || len(ae.AuthorizationServers) != 1 || ae.AuthorizationServers[0] != g.h.R.BaseURL() {
		t.Fatalf("check without a token: %v (%+v)", err, ae)
	}
	var out strings.Builder
	h := g.ownerLogin(t, &out)
	rep, err := mcpcheck.Run(ctx, mcpcheck.Options{URL: g.url + "/mcp", Timeout: 30 * time.Second, OAuthHandler: h, HTTPClient: g.client()})
	if err != nil || len(rep.Tools) != 1 || rep.Tools[0].Name != "echo" {
		t.Fatalf("check with --login: %v %+v\n%s", err, rep, out.String())
	}
}

// ownerLogin is pomdev's --login (inspect, preview) on the gated route: a
// browser that the owner's approval sends back to the loopback callback.
func (g *gatedTunnel) ownerLogin(t *testing.T, out io.Writer) auth.OAuthHandler {
	t.Helper()
	login := &mcpcheck.Login{Dir: t.TempDir(), Out: out, HTTPClient: g.client(), OpenBrowser: func(u string) error {
		back := g.browse(t, u, func(code string) { g.sshApprove(t, "approve", code) })
		resp, err := http.Get(back.String()) // the browser lands on the loopback callback
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}}
	h, done, err := login.Handler(g.url + "/mcp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(done)
	return h
}

// TestOAuthPreviewLogin: pomdev preview --login through a gated tunnel:
// the owner approves once, then the preview lists the tools and its page's
// API calls one, with the same token.
func TestOAuthPreviewLogin(t *testing.T) {
	g := newGated(t, nil, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out strings.Builder
	h := g.ownerLogin(t, &out)
	pv, err := preview.Start(ctx, preview.Options{MCP: mcpcheck.Options{URL: g.url + "/mcp", Timeout: 30 * time.Second, OAuthHandler: h, HTTPClient: g.client()}, Poll: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer pv.Close()
	tools, err := pv.Tools(ctx)
	if err != nil || len(tools) != 1 || tools[0].Name != "echo" {
		t.Fatalf("preview with --login: %v %+v\n%s", err, tools, out.String())
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", pv.URL()+"api/call", strings.NewReader(`{"name":"echo","arguments":{"text":"through the gate"}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"content"`) {
		t.Fatalf("the page's call through the gate: %d %s", resp.StatusCode, body)
	}
}

// TestOAuthAdminOnAuthorizePage: the relay's admin decides a request on
// its authorize page with the admin token (offered over TLS or on
// loopback); a wrong token decides nothing.
func TestOAuthAdminOnAuthorizePage(t *testing.T) {
	g := startGated(t, nil)
	if g.h.Info.AdminToken == "" {
		t.Fatal("no admin token with --http-auth owner")
	}
	clientID := g.register(t, redirect)
	_, challenge := pkce()
	c := g.noRedirect()
	resp, err := c.Get(g.authorizeURL(clientID, challenge, "S256", g.url+"/mcp"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	page, _ := resp.Location()
	id := page.Query().Get("id")
	status, body := g.get(t, page.String())
	if status != 200 || !strings.Contains(body, "Relay admin") {
		t.Fatalf("authorize page %d without the admin form:\n%s", status, body)
	}
	post := func(token string) int {
		resp, err := c.PostForm(g.h.R.BaseURL()+access.PathApprove, url.Values{"id": {id}, "token": {token}, "decision": {"allow"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("wrong"); code != http.StatusForbidden {
		t.Fatalf("wrong admin token: %d", code)
	}
	if qs, _ := g.h.R.Access().Pending(context.Background(), ""); len(qs) != 1 {
		t.Fatalf("a wrong token decided the request: %+v", qs)
	}
	if code := post(g.h.Info.AdminToken); code != http.StatusSeeOther {
		t.Fatalf("admin token: %d", code)
	}
	back := g.browse(t, page.String(), func(string) { t.Fatal("still waiting after the admin allowed it") })
	if back.Query().Get("code") == "" {
		t.Fatalf("back without a code: %s", back)
	}
}

// TestOAuthConfidentialClient: a client registered with a secret
// (client_secret_post here) must present it at the token endpoint; with
// it, RFC 7662 introspection describes the access token; the JWKS verifies
// the identity assertion the app receives.
func TestOAuthConfidentialClient(t *testing.T) {
	g := startGated(t, nil)
	reg := g.registerConfidential(t, "server app")
	verifier, challenge := pkce()
	exchange := func(secret string) (int, tokens) {
		back := g.browse(t, g.authorizeURL(reg.ClientID, challenge, "S256", g.url+"/mcp"), func(code string) { g.sshApprove(t, "approve", code) })
		return g.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {redirect},
			"client_id": {reg.ClientID}, "client_secret": {secret}, "code_verifier": {verifier}})
	}
	if status, tk := exchange("wrong"); status/100 != 4 || tk.Access != "" {
		t.Fatalf("wrong client secret: %d %+v", status, tk)
	}
	status, tk := exchange(reg.ClientSecret)
	if status != 200 || tk.Access == "" {
		t.Fatalf("token with the secret: %d %+v", status, tk)
	}
	in := g.introspect(t, reg, tk.Access)
	if !in.Active || in.ClientID != reg.ClientID || !strings.Contains(fmt.Sprint(in.Aud), g.url+"/mcp") || !strings.Contains(in.Scope, "mcp") {
		t.Fatalf("introspection %+v", in)
	}
	// Another confidential client learns nothing of that token.
	if other := g.introspect(t, g.registerConfidential(t, "another app"), tk.Access); other.Active || other.ClientID != "" || other.Scope != "" {
		t.Fatalf("another client's introspection of the token: %+v", other)
	}

	// The app checks the assertion with the relay's JWKS.
	if g.post(t, g.url+"/mcp", tk.Access).StatusCode != 200 {
		t.Fatal("token refused")
	}
	seen := g.origin.seen()
	raw := seen[len(seen)-1].Get(access.IdentityHeader)
	_, body := g.get(t, g.h.R.BaseURL()+access.PathJWKS)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS %s: %v", body, err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var claims access.Identity
	if err := tok.Claims(set.Keys[0].Key, &claims); err != nil {
		t.Fatalf("identity not signed by the JWKS key: %v", err)
	}
	if claims.ClientID != reg.ClientID || claims.Subject != reg.ClientID || claims.Issuer != g.h.R.BaseURL() {
		t.Fatalf("identity claims %+v", claims)
	}

	// The ID token that comes with every token response is signed with a
	// key of its own, published apart: it never passes for an identity
	// assertion, though its issuer and audience are the assertion's.
	if tk.IDToken == "" {
		t.Fatal("no ID token in the token response")
	}
	idt, err := jwt.ParseSigned(tk.IDToken, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var idClaims jwt.Claims
	if err := idt.Claims(set.Keys[0].Key, &idClaims); err == nil {
		t.Fatal("the ID token verifies with the identity assertions' key")
	}
	if _, err := g.h.R.Access().VerifyIdentity(tk.IDToken, g.url+"/mcp"); err == nil {
		t.Fatal("the ID token passes as an identity assertion")
	}
	_, body = g.get(t, g.h.R.BaseURL()+access.PathIDTokenJWKS)
	var idSet jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &idSet); err != nil || len(idSet.Keys) != 1 || idSet.Keys[0].KeyID == set.Keys[0].KeyID {
		t.Fatalf("ID token JWKS %s: %v", body, err)
	}
	if err := idt.Claims(idSet.Keys[0].Key, &idClaims); err != nil || idClaims.Issuer != g.h.R.BaseURL() {
		t.Fatalf("the ID token against its own key set: %v %+v", err, idClaims)
	}
	_, meta := g.get(t, g.h.R.BaseURL()+access.PathASMeta)
	if !strings.Contains(meta, `"jwks_uri":"`+g.h.R.BaseURL()+access.PathIDTokenJWKS+`"`) {
		t.Fatalf("metadata's jwks_uri: %s", meta)
	}
}

// confidential is a registered confidential client.
type confidential struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

func (g *gatedTunnel) registerConfidential(t *testing.T, name string) confidential {
	t.Helper()
	resp, err := g.client().Post(g.h.R.BaseURL()+access.PathRegister, "application/json",
		strings.NewReader(`{"client_name":"`+name+`","redirect_uris":["`+redirect+`"],"token_endpoint_auth_method":"client_secret_post"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reg confidential
	_ = json.NewDecoder(resp.Body).Decode(&reg)
	if reg.ClientSecret == "" {
		t.Fatalf("no secret for a confidential client: %+v", reg)
	}
	return reg
}

type introspection struct {
	Active   bool   `json:"active"`
	ClientID string `json:"client_id"`
	Aud      any    `json:"aud"`
	Scope    string `json:"scope"`
}

func (g *gatedTunnel) introspect(t *testing.T, c confidential, token string) introspection {
	t.Helper()
	ireq, _ := http.NewRequest(http.MethodPost, g.h.R.BaseURL()+access.PathIntrospect, strings.NewReader(url.Values{"token": {token}}.Encode()))
	ireq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	ireq.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	resp, err := g.client().Do(ireq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("introspection: %s", resp.Status)
	}
	var in introspection
	_ = json.NewDecoder(resp.Body).Decode(&in)
	return in
}

// TestOAuthAppAuthPassThrough: POMDEV_HTTP_AUTH=app is refused unless the
// relay allows it; allowed, the app gets requests as sent (its own OAuth).
func TestOAuthAppAuthPassThrough(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprint("allowed=", allow), func(t *testing.T) {
			g := newGated(t, func(c *relay.Config) { c.AllowAppAuth = allow }, true)
			// ssh keeps the first SetEnv option: both variables in one.
			p := g.h.RunSSH(g.key, "-T", "-o", "SetEnv=POMDEV_TARGET="+g.target()+" "+relay.EnvHTTPAuth+"=app", "-R", "0")
			u := strings.TrimPrefix(p.WaitLine(t, "Remote: "), "Remote: ")
			resp := g.post(t, u+"/mcp", "app-token")
			seen := g.origin.seen()
			if !allow {
				if resp.StatusCode != http.StatusUnauthorized || len(seen) != 0 {
					t.Fatalf("pass-through without --allow-app-auth: %d, %d requests reached the app", resp.StatusCode, len(seen))
				}
				return
			}
			if resp.StatusCode != 200 || len(seen) != 1 || seen[0].Get("Authorization") != "Bearer app-token" || seen[0].Get(access.IdentityHeader) != "" {
				t.Fatalf("pass-through: %d %v", resp.StatusCode, seen)
			}
		})
	}
}
