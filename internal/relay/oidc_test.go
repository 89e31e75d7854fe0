package relay_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

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

func oidcHTTPAuth(t *testing.T, policyText, okUser, okSub, okEmail, badUser, badWhy string) {
	var file string
	if policyText != "" {
		file = filepath.Join(t.TempDir(), "policy.yaml")
		if err := os.WriteFile(file, []byte(policyText), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g := newGated(t, func(c *relay.Config) {
		c.PolicyFile = file
		c.TLS = nil
		c.Auth = relay.AuthSignin
		c.HTTPAuth = relay.HTTPAuthOIDC
		base := "http://localhost:" + fmt.Sprint(c.HTTPListener.Addr().(*net.TCPAddr).Port)
		c.OIDC = oidcrp.Config{Issuer: rt.StartOP(t, base+oidcrp.CallbackPath), ClientID: "web", ClientSecret: "secret"}
	}, true)
	g.pool = nil
	s := g.h.RunSSH(g.key, "-o", "LogLevel=INFO", "-T", "-o", "SetEnv=POMDEV_TARGET="+g.target(), "-R", "0")
	var link string
	rt.WaitFor(t, func() bool {
		link = regexp.MustCompile(`http://\S+user_code=[A-Z0-9-]+`).FindString(s.Stderr())
		return link != ""
	}, "the sign-in link")
	if status, page := rt.SignInAtOP(t, rt.Browser(t), link, "test-user@localhost"); status != 200 {
		t.Fatalf("the owner's sign-in: %d\n%s", status, page)
	}
	s.WaitLine(t, "Remote: ")
	g.url, g.ssh = g.h.WaitURL(), s

	// authorize runs the app's authorization in a fresh browser as user
	// and returns where the browser was sent back to (the app's redirect).
	authorize := func(user string) (*url.URL, string) {
		clientID := g.register(t, redirect)
		verifier, challenge := pkce()
		b := rt.Browser(t)
		var back *url.URL
		b.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), redirect) {
				back = req.URL
				return http.ErrUseLastResponse
			}
			return nil
		}
		resp, err := b.Get(g.authorizeURL(clientID, challenge, "S256", g.url+"/mcp"))
		if err != nil {
			t.Fatal(err)
		}
		resp = rt.LoginAtOP(t, b, resp, user)
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if back == nil {
			return nil, string(page)
		}
		if back.Query().Get("code") == "" {
			return back, string(page)
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
