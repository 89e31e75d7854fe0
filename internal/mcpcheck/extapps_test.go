package mcpcheck

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/peertest"
)

// EnvExtApps is the node_modules/@modelcontextprotocol directory holding
// the official MCP Apps example servers (server-*); .ci/run installs them.
const EnvExtApps = "POMDEV_TEST_EXT_APPS"

// The official MCP Apps example servers, as published on npm, are good
// MCP Apps: inspect finds no error in any of them (a finding there is a
// rule the specification does not support).
func TestExtAppsExamples(t *testing.T) {
	dir := peertest.Env(t, EnvExtApps, "npm install the @modelcontextprotocol/server-* examples of ext-apps")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "server-") {
			continue
		}
		n++
		pkgDir := filepath.Join(dir, e.Name())
		t.Run(e.Name(), func(t *testing.T) {
			t.Parallel()
			url := startExample(t, pkgDir)
			rep, err := Run(context.Background(), Options{URL: url, Timeout: 60 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			uis := 0
			for _, tool := range rep.Tools {
				if tool.UI != nil {
					uis++
				}
			}
			if uis == 0 {
				t.Fatalf("no tool with a UI: %+v", rep.Tools)
			}
			for _, f := range rep.Findings {
				if f.Severity == SeverityError {
					t.Errorf("%s %s: %s", f.Rule, f.Subject, f.Message)
				}
			}
		})
	}
	if n < 6 {
		t.Fatalf("%d example servers in %s, want at least 6", n, dir)
	}
}

// startExample runs the package's server (its bin or main) on a free
// loopback port and returns its MCP URL.
func startExample(t *testing.T, pkgDir string) string {
	t.Helper()
	var pkg struct {
		Main string          `json:"main"`
		Bin  json.RawMessage `json:"bin"`
	}
	b, err := os.ReadFile(filepath.Join(pkgDir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	entry := pkg.Main
	var bin string
	var bins map[string]string
	if json.Unmarshal(pkg.Bin, &bin) == nil && bin != "" {
		entry = bin
	} else if json.Unmarshal(pkg.Bin, &bins) == nil {
		for _, v := range bins {
			entry = v
		}
	}
	return "http://" + startNode(t, pkgDir, entry) + "/mcp"
}

// startNode runs a Node server (node [args]) in dir on port 0 with the
// loopback preload, which says which port it got (a port picked free here
// could be taken by another test before the server binds it), and returns
// its address.
func startNode(t *testing.T, dir string, args ...string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is required for this test")
	}
	preload, err := filepath.Abs("testdata/loopback.cjs")
	if err != nil {
		t.Fatal(err)
	}
	portFile := filepath.Join(t.TempDir(), "port")
	cmd := exec.Command(node, append([]string{"--require", preload}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PORT=0", "POMDEV_LISTEN_FILE="+portFile, "NODE_ENV=production")
	out := &syncBuilder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(portFile); err == nil {
			return net.JoinHostPort("127.0.0.1", strings.TrimSpace(string(b)))
		}
		select {
		case <-exited:
			t.Fatalf("%v exited before listening: %s", args, out.String())
		case <-time.After(20 * time.Millisecond): // polling the port file
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v did not listen within 60s: %s", args, out.String())
		}
	}
}
