package relay_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/relay"
)

// assetOrigin is an app with widget assets under /widgets/ and anything
// else behind; it records the paths it was asked for.
func assetOrigin(t *testing.T) *mcpOrigin {
	t.Helper()
	o := &mcpOrigin{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		h := r.Header.Clone()
		h.Set("X-Test-Path", r.Method+" "+r.URL.RequestURI())
		o.headers = append(o.headers, h)
		o.mu.Unlock()
		switch {
		case strings.HasPrefix(r.URL.Path, "/widgets/") && strings.HasSuffix(r.URL.Path, ".js"):
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			_, _ = io.WriteString(w, "console.log('widget')")
		case strings.HasPrefix(r.URL.Path, "/widgets/"):
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, "<!doctype html><title>echo widget</title>")
		default:
			_, _ = io.WriteString(w, "private: "+r.URL.Path)
		}
	}))
	t.Cleanup(o.Close)
	return o
}

// publicTunnel is a gated relay and a stock ssh -R 0 tunnel announcing
// public paths, with the -T session's output.
func publicTunnel(t *testing.T, paths string, mod func(*relay.Config)) *gatedTunnel {
	t.Helper()
	g := newGated(t, mod, true)
	g.origin = assetOrigin(t)
	g.ssh = g.h.RunSSH(g.key, "-T", "-o", "SetEnv=POMDEV_TARGET="+g.target()+" POMDEV_PUBLIC_PATHS="+paths, "-R", "0")
	return g
}

// rawGet sends a request line as written (no client-side cleaning of dot
// segments) to the route over TLS and returns the status.
func (g *gatedTunnel) rawGet(t *testing.T, method, path string) int {
	t.Helper()
	u, _ := url.Parse(g.url)
	raw, err := net.Dial("tcp", g.h.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	conn := tls.Client(raw, &tls.Config{RootCAs: g.pool, ServerName: u.Hostname()})
	defer conn.Close()
	_, _ = io.WriteString(conn, method+" "+path+" HTTP/1.1\r\nHost: "+u.Host+"\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestOAuthPublicPaths: on a gated route, the asset paths the tunnel
// announces answer without a token (GET, HEAD), and nothing else does:
// not the MCP endpoint, not another path, not a POST to an asset, not a
// path that only decodes or cleans to an asset's. The audit marks public
// requests.
func TestOAuthPublicPaths(t *testing.T) {
	g := publicTunnel(t, "/widgets/**", nil)
	g.ssh.WaitLine(t, "Remote: ")
	g.url = g.h.WaitURL()

	resp, err := g.client().Get(g.url + "/widgets/echo.html")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "echo widget") {
		t.Fatalf("a public asset: %s %s %q", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	resp, err = g.client().Get(g.url + "/widgets/assets/echo-1.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("a public script: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if s := g.rawGet(t, http.MethodHead, "/widgets/echo.html"); s != http.StatusOK {
		t.Fatalf("HEAD of a public asset: %d", s)
	}
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/mcp"},
		{http.MethodPost, "/mcp"},
		{http.MethodGet, "/secret.txt"},
		{http.MethodPost, "/widgets/echo.html"},
		{http.MethodDelete, "/widgets/echo.html"},
		{http.MethodGet, "/widgets/../secret.txt"},
		{http.MethodGet, "/widgets/%2e%2e/secret.txt"},
		{http.MethodGet, "/widgets/..%2fsecret.txt"},
		{http.MethodGet, "/widgets//x"},
		{http.MethodGet, "/widgetsx/echo.html"},
	} {
		if s := g.rawGet(t, tc.method, tc.path); s != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %d, want 401", tc.method, tc.path, s)
		}
	}
	for _, h := range g.origin.seen() {
		if p := h.Get("X-Test-Path"); !strings.HasPrefix(p, "GET /widgets/") && !strings.HasPrefix(p, "HEAD /widgets/") {
			t.Errorf("the app was reached without a token: %s", p)
		}
		if h.Get("Authorization") != "" || h.Get("X-Pomdev-Identity") != "" {
			t.Errorf("a public request carried credentials or an identity: %v", h)
		}
	}
	// The relay's own metadata is still the relay's.
	code, prm := g.get(t, g.url+"/.well-known/oauth-protected-resource")
	if code != http.StatusOK || !strings.Contains(prm, `"resource"`) {
		t.Fatalf("PRM: %d %s", code, prm)
	}
	if trail := string(g.auditTrail(t)); !strings.Contains(trail, `"decision":"public"`) || !strings.Contains(trail, `"reason":"public path /widgets/echo.html"`) {
		t.Fatalf("the audit trail does not mark public requests:\n%s", trail)
	}
}

// A tunnel cannot make the MCP endpoint, metadata or a second directory
// public; a policy that refuses public paths refuses the forward, and
// says why.
func TestOAuthPublicPathsRefused(t *testing.T) {
	for paths, want := range map[string]string{
		"/mcp/**":                "never public",
		"/.well-known/**":        "never public",
		"/widgets/**,/assets/**": "under one directory",
		"/**":                    "under a directory",
	} {
		g := publicTunnel(t, paths, nil)
		t.Logf("trying %s", paths)
		out := g.ssh.WaitContains(t, "POMDEV_PUBLIC_PATHS refused")
		if !strings.Contains(out, want) {
			t.Errorf("%s: %s", paths, out)
		}
		g.ssh.Kill()
	}

	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte("routes:\n  - name: \"*\"\n    public_paths: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := publicTunnel(t, "/widgets/**", func(c *relay.Config) { c.PolicyFile = policy })
	out := g.ssh.WaitContains(t, "refused")
	if !strings.Contains(out, "does not let") || !strings.Contains(out, "allows no public paths") || !strings.Contains(out, "public_paths") {
		t.Fatalf("the policy's refusal: %s", out)
	}
}
