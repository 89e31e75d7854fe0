package mcpcheck

import (
	"context"
	"os"
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
			url := peertest.StartPackage(t, pkgDir)
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
			if err := CheckHosts(context.Background(), Options{URL: url, Timeout: 60 * time.Second}, rep, Hosts); err != nil {
				t.Fatal(err)
			}
			// What the hosts would do with them is reported; none of it is
			// an error for these servers (on loopback, with no domain).
			for _, f := range rep.Findings {
				if f.Host != "" {
					t.Logf("%s %s [%s] %s: %s", f.Severity, f.Rule, f.Host, f.Subject, f.Message)
					if f.Severity == SeverityError {
						t.Errorf("host finding %s [%s] %s: %s", f.Rule, f.Host, f.Subject, f.Message)
					}
				}
			}
		})
	}
	if n < 6 {
		t.Fatalf("%d example servers in %s, want at least 6", n, dir)
	}
}
