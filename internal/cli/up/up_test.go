package up

import (
	"context"
	"errors"
	"fmt"
	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/watch"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/cli/factory/factorytest"
	"github.com/pomdev/pomdev/internal/exitcode"
)

// An empty directory says there is nothing there; a pomdev.yaml or
// package.json without processes says that.
func TestNoProcesses(t *testing.T) {
	f, _ := factorytest.New(t, "", nil)
	err := factorytest.Execute(f, NewCmdUp(f, nil))
	if exitcode.Code(err) != exitcode.Usage || !strings.Contains(err.Error(), "no pomdev.yaml and no package.json") || !strings.Contains(err.Error(), "pomdev init") {
		t.Fatalf("empty directory: %v", err)
	}
	f, _ = factorytest.New(t, "", nil)
	dir := f.ConfigOptions.WorkDir
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"x","scripts":{"build":"tsc"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	err = factorytest.Execute(f, NewCmdUp(f, nil))
	if exitcode.Code(err) != exitcode.Usage || !strings.Contains(err.Error(), "no processes to run") {
		t.Fatalf("package.json without dev scripts: %v", err)
	}
}

// A port already in use is reported with the process holding it, before
// anything starts.
func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	f, _ := factorytest.New(t, fmt.Sprintf("processes:\n  - {name: server, command: 'echo never', port: %d}\ntunnel: {target: \"127.0.0.1:%d\"}\n", port, port), nil)
	cmd := NewCmdUp(f, func(o *Options) error { o.Ctx = context.Background(); return Run(o) })
	err = factorytest.Execute(f, cmd, "--no-tunnel")
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("port %d of server is already in use", port)) {
		t.Fatalf("got %v", err)
	}
	if _, statErr := os.Stat("/proc/self/fd"); statErr == nil && !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("holder not named: %v", err)
	}
}

func TestDiscoverAndWriteConfig(t *testing.T) {
	f, st := factorytest.New(t, "", nil)
	cfg, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	pkg := `{"scripts":{"dev:server":"tsx watch server/src/index.ts","dev:widgets":"vite","dev":"x"}}`
	if err := os.WriteFile(cfg.Dir+"/package.json", []byte(pkg), 0o644); err != nil {
		t.Fatal(err)
	}
	procs, assumed, err := discover(cfg.Dir)
	if err != nil || len(procs) != 2 || procs[0].Name != "widgets" || procs[1].Command != "npm run dev:server" || !procs[1].SelfWatching || procs[1].Port != 8080 {
		t.Fatalf("%+v %q %v", procs, assumed, err)
	}
	if err := factorytest.Execute(f, NewCmdUp(f, nil), "--write-config"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.Out.String(), "wrote ") {
		t.Fatalf("output %q", st.Out)
	}
	// The written file is a valid configuration with the same processes.
	f2, _ := factorytest.New(t, "", nil)
	f2.ConfigOptions.WorkDir = cfg.Dir
	loaded, err := f2.Config()
	if err != nil || len(loaded.Processes) != 2 || loaded.Processes[1].Env["PORT"] != "8080" || !loaded.Processes[0].SelfWatching {
		t.Fatalf("reloaded %+v %v", loaded, err)
	}
	// Never over an existing file.
	if _, err := writeConfig(cfg.Dir, procs); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("overwrite: %v", err)
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

// Lines never carry terminal controls: text from requests, the relay or
// the MCP server is escaped, and process output loses its escape
// sequences (colours included).
func TestPrinterEscapes(t *testing.T) {
	var buf strings.Builder
	p := &printer{w: &buf}
	p.line("tunnel", "%s", "relay: \x1b]52;c;aGk=\x07\u009b")
	p.proc("output", "server", "[server] %s", "\x1b[31mred\x1b[0m \x1b]0;title\x07")
	out := buf.String()
	if strings.ContainsAny(out, "\x1b\x07\u009b") {
		t.Fatalf("controls reached the terminal: %q", out)
	}
	for _, want := range []string{`relay: \x1b]52;c;aGk=\x07\u009b`, "[server] red \n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q: %q", want, out)
		}
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

// A watcher that cannot start (inotify limits) ends up at once with the
// error, and the process already started is stopped: nothing hangs,
// nothing is left.
func TestWatcherFailureStopsEverything(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	f, _ := factorytest.New(t, "processes:\n  - {name: worker, command: 'echo $$ > "+pidFile+"; exec sleep 7779', watch: ['*.txt']}\n", nil)
	started := make(chan struct{})
	cmd := NewCmdUp(f, func(o *Options) error {
		o.Ctx = context.Background()
		o.NewWatcher = func(string, watch.Options) (*watch.Watcher, error) {
			// Fail only once the process runs, as inotify does after start.
			deadline := time.Now().Add(10 * time.Second)
			for {
				if b, err := os.ReadFile(pidFile); err == nil && len(b) > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Error("the process never started")
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			close(started)
			return nil, errors.New("too many open files (inotify instances)")
		}
		return Run(o)
	})
	done := make(chan error, 1)
	go func() { done <- factorytest.Execute(f, cmd, "--no-tunnel") }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("up hung after the watcher failed")
	}
	<-started
	if err == nil || !strings.Contains(err.Error(), "inotify") {
		t.Fatalf("got %v", err)
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid == 0 {
		t.Fatal("no pid recorded")
	}
	// Run returned: its cleanup has stopped the process (and its group).
	if err := syscall.Kill(pid, 0); err == nil {
		if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(st), ") Z ") {
			t.Fatalf("pid %d still running after up returned", pid)
		}
	}
}
