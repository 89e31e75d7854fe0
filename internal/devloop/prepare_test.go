package devloop

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/config"
)

func app(t *testing.T, procs ...config.Process) *config.Loaded {
	t.Helper()
	cfg := &config.Loaded{}
	cfg.Dir = t.TempDir()
	cfg.Processes = procs
	return cfg
}

func TestDiscoverAndWriteConfig(t *testing.T) {
	cfg := app(t)
	pkg := `{"scripts":{"dev:server":"tsx watch server/src/index.ts","dev:widgets":"vite","dev":"x"}}`
	if err := os.WriteFile(filepath.Join(cfg.Dir, "package.json"), []byte(pkg), 0o644); err != nil {
		t.Fatal(err)
	}
	procs, assumed, err := discover(cfg.Dir)
	if err != nil || len(procs) != 2 || procs[0].Name != "widgets" || procs[1].Command != "npm run dev:server" || !procs[1].SelfWatching || procs[1].Port != 8080 {
		t.Fatalf("%+v %q %v", procs, assumed, err)
	}
	p, err := Prepare(cfg, false)
	if err != nil || len(p.App.Processes) != 2 || len(cfg.Processes) != 0 {
		t.Fatalf("prepared %+v, %v (the app given must not change)", p, err)
	}
	if a, ok := p.Events[0].(Assumed); !ok || !strings.Contains(a.Summary, "dev:server and dev:widgets") {
		t.Fatalf("events %+v", p.Events)
	}
	path, err := WriteConfig(cfg)
	if err != nil || filepath.Base(path) != config.FileName {
		t.Fatalf("%q %v", path, err)
	}
	// Never over an existing file.
	var ce *ConfigError
	if _, err := WriteConfig(cfg); !errors.As(err, &ce) || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("overwrite: %v", err)
	}
}

// Nothing to run, and --inline without inline settings, are
// configuration errors that say what to do.
func TestPrepareErrors(t *testing.T) {
	var ce *ConfigError
	if _, err := Prepare(app(t), false); !errors.As(err, &ce) || !strings.Contains(err.Error(), "pomdev init") {
		t.Fatalf("empty directory: %v", err)
	}
	cfg := app(t, config.Process{Name: "server", Command: "true"})
	if _, err := Prepare(cfg, true); !errors.As(err, &ce) || !strings.Contains(err.Error(), "inline: {env:") {
		t.Fatalf("--inline: %v", err)
	}
	cfg.Processes[0].Inline.Env = map[string]string{"INLINE": "1"}
	p, err := Prepare(cfg, true)
	if err != nil || p.App.Processes[0].Env["INLINE"] != "1" || fmt.Sprint(p.Events) != "[{}]" {
		t.Fatalf("inline: %+v %v", p, err)
	}
}

// A busy port is found before anything starts, with its holder.
func TestPrepareBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	var pe *PortInUseError
	_, err = Prepare(app(t, config.Process{Name: "server", Command: "true", Port: port}), false)
	if !errors.As(err, &pe) || pe.Port != port || pe.Process != "server" || pe.Holder == "" {
		t.Fatalf("got %v", err)
	}
}

func TestDiffTools(t *testing.T) {
	last := map[string]string{"echo": `[{"type":"object"},null]`, "gone": "x", "same": "s"}
	now := map[string]string{"echo": `[{"properties":{"a":{}},"type":"object"},null]`, "new": "n", "same": "s"}
	added, removed, changed := diffTools(last, now)
	if fmt.Sprint(added, removed, changed) != "[new] [gone] [echo]" {
		t.Fatalf("added %v removed %v changed %v", added, removed, changed)
	}
	if a, r, c := diffTools(now, now); len(a)+len(r)+len(c) != 0 {
		t.Fatalf("no change reported %v %v %v", a, r, c)
	}
}

// A package.json without node_modules (pomdev init --no-install, a fresh
// clone) is found before anything starts, also for a workspace package
// when the app has none; crash output about missing packages is known.
func TestMissingNodeModules(t *testing.T) {
	app := t.TempDir()
	write := func(p string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(app, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(app, p), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &config.Loaded{}
	cfg.Dir = app
	cfg.Processes = []config.Process{{Name: "server", Dir: "server"}}
	if got := missingNodeModules(cfg); got != "" {
		t.Fatalf("no package.json: %q", got)
	}
	write("server/package.json")
	if got := missingNodeModules(cfg); got != filepath.Join(app, "server") {
		t.Fatalf("workspace package without modules: %q", got)
	}
	write("package.json")
	if got := missingNodeModules(cfg); got != app {
		t.Fatalf("app without modules: %q", got)
	}
	if err := os.Mkdir(filepath.Join(app, "node_modules"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := missingNodeModules(cfg); got != "" {
		t.Fatalf("installed: %q", got)
	}
	for out, want := range map[string]bool{
		"Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'tsx'": true,
		"sh: 1: vite: not found":                                  true,
		"tools.ts:63:53: ERROR: Expected identifier":              false,
	} {
		if missingModules(out) != want {
			t.Errorf("%q: %v", out, !want)
		}
	}
}
