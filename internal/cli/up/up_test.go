package up

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/cli/factory/factorytest"
	"github.com/pomdev/pomdev/internal/exitcode"
)

func TestNoProcesses(t *testing.T) {
	f, _ := factorytest.New(t, "", nil)
	err := factorytest.Execute(f, NewCmdUp(f, nil))
	if exitcode.Code(err) != exitcode.Usage || !strings.Contains(err.Error(), "no processes") {
		t.Fatalf("got %v", err)
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
	f, _ := factorytest.New(t, fmt.Sprintf("processes:\n  - {name: server, command: 'echo never', port: %d}\n", port), nil)
	cmd := NewCmdUp(f, func(o *Options) error { o.Ctx = context.Background(); return Run(o) })
	err = factorytest.Execute(f, cmd, "--no-tunnel")
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("port %d of server is already in use", port)) {
		t.Fatalf("got %v", err)
	}
	if _, statErr := os.Stat("/proc/self/fd"); statErr == nil && !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("holder not named: %v", err)
	}
}
