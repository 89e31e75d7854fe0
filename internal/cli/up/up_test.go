package up

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/watch"

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

// --write-config saves what package.json gives as a valid pomdev.yaml,
// and never over an existing one.
func TestWriteConfig(t *testing.T) {
	f, st := factorytest.New(t, "", nil)
	cfg, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	pkg := `{"scripts":{"dev:server":"tsx watch server/src/index.ts","dev:widgets":"vite","dev":"x"}}`
	if err := os.WriteFile(cfg.Dir+"/package.json", []byte(pkg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := factorytest.Execute(f, NewCmdUp(f, nil), "--write-config"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.Out.String(), "wrote ") {
		t.Fatalf("output %q", st.Out)
	}
	f2, _ := factorytest.New(t, "", nil)
	f2.ConfigOptions.WorkDir = cfg.Dir
	loaded, err := f2.Config()
	if err != nil || len(loaded.Processes) != 2 || loaded.Processes[1].Env["PORT"] != "8080" || !loaded.Processes[0].SelfWatching {
		t.Fatalf("reloaded %+v %v", loaded, err)
	}
	// Now pomdev.yaml describes them: a usage error.
	f3, _ := factorytest.New(t, "", nil)
	f3.ConfigOptions.WorkDir = cfg.Dir
	if err := factorytest.Execute(f3, NewCmdUp(f3, nil), "--write-config"); exitcode.Code(err) != exitcode.Usage || !strings.Contains(err.Error(), "already describes") {
		t.Fatalf("second --write-config: %v", err)
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
