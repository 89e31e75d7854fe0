package relay_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/relay"
	"github.com/pomdev/pomdev/internal/relay/oidcrp"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"golang.org/x/crypto/ssh"
)

// opVersion is the OpenID provider the tests sign in with: the example
// provider of github.com/zitadel/oidc, built from the module proxy.
const opVersion = "github.com/zitadel/oidc/v3/example/server@v3.52.0"

// startOP builds and runs the example provider on a free loopback port,
// its "web" client (secret "secret") allowed to come back to redirect. It
// returns the issuer.
func startOP(t *testing.T, redirect string) string {
	t.Helper()
	bin := filepath.Join(os.TempDir(), "pomdev-test-oidc-op-v3.52.0")
	if _, err := os.Stat(bin); err != nil {
		dir := t.TempDir()
		cmd := exec.Command("go", "install", opVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			if os.Getenv("CI") == "" {
				t.Skipf("cannot build the OpenID provider (%v): %s", err, out)
			}
			t.Fatalf("go install %s: %v\n%s", opVersion, err, out)
		}
		if err := os.Rename(filepath.Join(dir, "server"), bin); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close() // the provider binds the port itself
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT="+port, "REDIRECT_URI="+redirect)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	issuer := "http://localhost:" + port + "/"
	rt.WaitFor(t, func() bool {
		resp, err := http.Get(issuer + ".well-known/openid-configuration")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "the OpenID provider to serve")
	return issuer
}

// browser is a person's browser: cookies, redirects followed.
func browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

var hiddenID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// signInAtOP follows link (a sign-in page of the relay) through the
// provider's login form as user, returning the relay's final page.
func signInAtOP(t *testing.T, b *http.Client, link, user string) (int, string) {
	t.Helper()
	resp, err := b.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`href="(/\.pomdev/sign_in/oidc\?user_code=[^"]+)"`).FindStringSubmatch(string(page))
	if m == nil {
		t.Fatalf("the sign-in page offers no way through the provider:\n%s", page)
	}
	start, _ := url.Parse(link)
	next, _ := start.Parse(strings.ReplaceAll(m[1], "&amp;", "&"))
	resp, err = b.Get(next.String()) // redirected to the provider's login form
	if err != nil {
		t.Fatal(err)
	}
	form, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := hiddenID.FindStringSubmatch(string(form))
	if id == nil {
		t.Fatalf("no login form at %s:\n%s", resp.Request.URL, form)
	}
	login, _ := resp.Request.URL.Parse("/login/username")
	resp, err = b.PostForm(login.String(), url.Values{"id": {id[1]}, "username": {user}, "password": {"verysecure"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	final, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(final)
}

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
		c.OIDC = oidcrp.Config{Issuer: startOP(t, base+oidcrp.CallbackPath), ClientID: "web", ClientSecret: "secret"}
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
	status, page := signInAtOP(t, browser(t), link(s2), "test-user2")
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
	status, page = signInAtOP(t, browser(t), link(s1), "test-user@localhost")
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
	resp, err := browser(t).Get(h.R.BaseURL() + oidcrp.CallbackPath + "?state=forged&code=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a forged callback: %d", resp.StatusCode)
	}
}
