package relay_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/peertest"
	"github.com/pomdev/pomdev/internal/relay"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
)

// TestConformanceThroughPolicy: the MCP conformance server suite
// (@modelcontextprotocol/conformance) against the Go SDK's conformance
// server passes, through a route with an allow-all tool policy (every
// request read and every tools/list filtered), exactly what it passes
// directly.
func TestConformanceThroughPolicy(t *testing.T) {
	node, suite := peertest.ConformanceSuite(t)
	rt.RequireOpenSSH(t)
	addr := peertest.StartConformanceServer(t)
	direct := peertest.RunConformanceServer(t, node, suite, "http://"+addr+"/mcp")

	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte("tools:\n  allow: [\"*\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := rt.StartRelay(t, func(c *relay.Config) {
		c.HTTPAuth = relay.HTTPAuthNone
		c.PolicyFile = file
		// As pomdev up --relay local runs it: http://127.0.0.1:PORT reaches
		// the one tunnel, so the suite's DNS rebinding scenario (which
		// needs a localhost URL) runs too.
		c.SingleRoute = true
	})
	key, _ := rt.WriteKey(t)
	s := h.RunSSH(key, "-T", "-o", "SetEnv=POMDEV_TARGET="+addr, "-R", "0")
	s.WaitLine(t, "Remote: ")
	h.WaitURL()
	through := peertest.RunConformanceServer(t, node, suite, "http://"+h.HTTPAddr+"/mcp")

	diff := peertest.CompareConformance(direct, through)
	if len(diff) > 0 {
		t.Fatalf("the conformance suite differs through a policed route:\n%s", strings.Join(diff, "\n"))
	}
	t.Logf("%d scenarios, the same results directly and through the policy", len(direct))
}

// TestSingleRouteRefusesForeignHost: the embedded relay (pomdev up
// --relay local) sends loopback Hosts to its one tunnel, and nothing else:
// a page on a name rebound to 127.0.0.1 sends its own Host, and the app
// behind the tunnel (which sees the target's Host) could not tell.
func TestSingleRouteRefusesForeignHost(t *testing.T) {
	rt.RequireOpenSSH(t)
	h := rt.StartRelay(t, func(c *relay.Config) { c.HTTPAuth = relay.HTTPAuthNone; c.SingleRoute = true })
	origin := rt.NewOrigin(t, "app")
	key, _ := rt.WriteKey(t)
	s := h.RunSSH(key, "-T", "-o", "SetEnv=POMDEV_TARGET="+origin.HostPort(), "-R", "0")
	s.WaitLine(t, "Remote: ")
	h.WaitURL()
	for host, want := range map[string]int{
		h.HTTPAddr:                        200,
		"[::1]:" + h.SSHPort():            200,
		"evil.example.com":                404,
		"evil.example.com:" + h.SSHPort(): 404,
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+h.HTTPAddr+"/x", nil)
		req.Host = host
		resp, err := h.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}
