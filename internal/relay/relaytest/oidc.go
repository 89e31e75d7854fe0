package relaytest

import (
	"crypto/tls"
	"crypto/x509"
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

	"github.com/pomdev/pomdev/internal/peertest"
)

// opVersion is the OpenID provider the tests sign in with: the example
// provider of github.com/zitadel/oidc, built from the module proxy.
const opVersion = "github.com/zitadel/oidc/v3/example/server@v3.52.0"

// StartOP builds and runs the example provider on a free loopback port,
// its "web" client (secret "secret") allowed to come back to redirect. It
// returns the issuer.
func StartOP(t *testing.T, redirect string) string {
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
	// The provider binds the port it is given: a port found free here can
	// be taken by another test before it binds, and it then exits. Such a
	// start is retried on another port.
	for attempt := 1; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "PORT="+port, "REDIRECT_URI="+redirect)
		out, exited := peertest.Start(t, cmd)
		issuer := "http://localhost:" + port + "/"
		deadline := time.Now().Add(60 * time.Second)
		for {
			resp, err := http.Get(issuer + ".well-known/openid-configuration")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return issuer
				}
			}
			select {
			case <-exited:
			case <-time.After(20 * time.Millisecond): // polling the provider
				if time.Now().After(deadline) {
					t.Fatalf("the OpenID provider did not serve on %s within 60s:\n%s", port, out.String())
				}
				continue
			}
			break
		}
		if attempt == 3 {
			t.Fatalf("the OpenID provider exited three times; the last said:\n%s", out.String())
		}
	}
}

// Browser is a person's browser: cookies, redirects followed.
func Browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

// BrowserTrusting is a Browser that also trusts the CAs of pool.
func BrowserTrusting(t *testing.T, pool *x509.CertPool) *http.Client {
	b := Browser(t)
	b.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	return b
}

var hiddenID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// SignInAtOP follows link (a sign-in page of the relay) through the
// provider's login form as user, returning the relay's final page.
func SignInAtOP(t *testing.T, b *http.Client, link, user string) (int, string) {
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
	resp = LoginAtOP(t, b, resp, user)
	defer resp.Body.Close()
	final, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(final)
}

// LoginAtOP fills the provider's login form that resp holds (as user,
// password "verysecure") and returns where the browser ends.
func LoginAtOP(t *testing.T, b *http.Client, resp *http.Response, user string) *http.Response {
	t.Helper()
	form, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := hiddenID.FindStringSubmatch(string(form))
	if id == nil {
		t.Fatalf("no login form at %s:\n%s", resp.Request.URL, form)
	}
	login, _ := resp.Request.URL.Parse("/login/username")
	resp, err := b.PostForm(login.String(), url.Values{"id": {id[1]}, "username": {user}, "password": {"verysecure"}})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
