package peertest

import (
	_ "embed"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// loopback is preloaded into Node servers under test: they bind
// 127.0.0.1 and write the first port they listen on to
// $POMDEV_LISTEN_FILE.
//
//go:embed loopback.cjs
var loopback []byte

// StartNode runs a Node server (node [args]) in dir with PORT=0 and the
// loopback preload, which says which port it got (a port picked free here
// could be taken by another test before the server binds it), and returns
// its address. The server is killed when the test ends.
func StartNode(t testing.TB, dir string, args ...string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		Missing(t, "node is required for this test")
	}
	tmp := t.TempDir()
	preload := filepath.Join(tmp, "loopback.cjs")
	if err := os.WriteFile(preload, loopback, 0o644); err != nil {
		t.Fatal(err)
	}
	portFile := filepath.Join(tmp, "port")
	cmd := exec.Command(node, append([]string{"--require", preload}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PORT=0", "POMDEV_LISTEN_FILE="+portFile, "NODE_ENV=production")
	out, exited := Start(t, cmd)
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

// StartPackage runs an npm package's server (its bin, else its main) with
// StartNode and returns its MCP URL (http://addr/mcp).
func StartPackage(t testing.TB, pkgDir string) string {
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
	return "http://" + StartNode(t, pkgDir, entry) + "/mcp"
}

// SyncBuffer collects a process's output (written from its goroutines)
// for a failure message.
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// Start starts cmd with its output and errors gathered in out, and kills
// it when the test ends; exited is closed once it has exited.
func Start(t testing.TB, cmd *exec.Cmd) (out *SyncBuffer, exited <-chan struct{}) {
	t.Helper()
	out = &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	return out, done
}
