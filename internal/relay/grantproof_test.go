package relay_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/relay/access"
)

// authorizeStep sends the authorize request with c and follows the relay's
// own redirects, without waiting on the approval page: it returns the
// approval code when the request waits for the owner, or where the relay
// sends the browser back (the application's redirect) when it does not.
func (g *gatedTunnel) authorizeStep(t *testing.T, c *http.Client, authURL string) (code string, back *url.URL) {
	t.Helper()
	next := authURL
	for range 10 {
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
				return "", loc
			}
			next = loc.String()
		case resp.StatusCode == http.StatusOK && strings.Contains(string(body), "Waiting for the tunnel"):
			m := codeRE.FindStringSubmatch(string(body))
			if m == nil {
				t.Fatalf("approval page without a code:\n%s", body)
			}
			return m[1], nil
		default:
			t.Fatalf("GET %s: %d\n%s", next, resp.StatusCode, body)
		}
	}
	t.Fatal("too many redirects")
	return "", nil
}

// TestOAuthRememberedGrantNeedsProof: once the owner approved a public
// client, a stranger who knows its client_id and redirect URI and sends
// its own PKCE challenge gets no code: the owner is asked again. The
// owner's own browser, bound to the grant when the approval reached it,
// goes straight through, but only for the route the grant was approved
// for: another route of the same owner asks again.
func TestOAuthRememberedGrantNeedsProof(t *testing.T) {
	g := startGated(t, nil)
	a := g.h.R.Access()
	clientID, _ := g.grant(t)
	cookies := g.jar.Cookies(mustURL(t, g.h.R.BaseURL()+"/oauth/authorize"))
	if len(cookies) != 1 || cookies[0].Name != access.BrowserCookie {
		t.Fatalf("the approving browser holds cookies %v, want %s", cookies, access.BrowserCookie)
	}

	// A stranger: no cookie, its own verifier.
	_, challenge := pkce()
	code, back := g.authorizeStep(t, g.noRedirect(), g.authorizeURL(clientID, challenge, "S256", g.url+"/mcp"))
	if back != nil {
		t.Fatalf("a stranger was sent back with %s: the remembered grant stood in for the owner", back)
	}
	pending, err := a.Pending(context.Background(), "")
	if err != nil || len(pending) != 1 || pending[0].Code != code {
		t.Fatalf("pending %+v %v, want the stranger's request %s before the owner", pending, err, code)
	}
	// A forged cookie proves nothing either.
	forged := g.noRedirect()
	forged.Jar = newJar(t, g.h.R.BaseURL(), access.BrowserCookie, strings.Repeat("A", 43))
	if _, back := g.authorizeStep(t, forged, g.authorizeURL(clientID, challenge, "S256", g.url+"/mcp")); back != nil {
		t.Fatalf("a forged cookie was sent back with %s", back)
	}

	// The owner's browser: remembered, no one asked.
	_, challenge = pkce()
	code, back = g.authorizeStep(t, g.ownerBrowser(), g.authorizeURL(clientID, challenge, "S256", g.url+"/mcp"))
	if back == nil || back.Query().Get("code") == "" {
		t.Fatalf("the approving browser waits again (code %s)", code)
	}

	// Another route of the same owner: the grant does not cover it.
	second := g.h.RunSSH(g.key, "-T", "-o", "SetEnv=POMDEV_TARGET="+g.target(), "-R", "second:80:"+g.target())
	second.WaitLine(t, "Remote: ")
	var secondURL string
	for name, u := range g.h.WaitRoute(2) {
		if strings.HasPrefix(name, "second") {
			secondURL = u
		}
	}
	if secondURL == "" {
		t.Fatalf("no second route in %v", g.h.R.Routes())
	}
	if code, back := g.authorizeStep(t, g.ownerBrowser(), g.authorizeURL(clientID, challenge, "S256", secondURL+"/mcp")); back != nil || code == "" {
		t.Fatalf("the grant of one route opened another: sent back with %s", back)
	}
}

func newJar(t *testing.T, base, name, value string) http.CookieJar {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	jar.SetCookies(mustURL(t, base+"/oauth/"), []*http.Cookie{{Name: name, Value: value, Path: "/oauth/"}})
	return jar
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
