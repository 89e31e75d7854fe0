package mcpcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is required for this test")
	}
	preload, err := filepath.Abs("testdata/loopback.cjs")
	if err != nil {
		t.Fatal(err)
	}
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
			url := startExample(t, node, preload, pkgDir)
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
func startExample(t *testing.T, node, preload, pkgDir string) string {
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(node, "--require", preload, entry)
	cmd.Dir = pkgDir
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "NODE_ENV=production")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	peertest.WaitListen(t, addr, 60*time.Second, filepath.Base(pkgDir))
	return fmt.Sprintf("http://%s/mcp", addr)
}
