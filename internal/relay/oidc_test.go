package relay_test

import (
	"fmt"
	"net"
	"net/http"
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
