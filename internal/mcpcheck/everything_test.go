package mcpcheck

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// EnvServerEverything points at @modelcontextprotocol/server-everything's
// dist/index.js; .ci/run installs it from npm and sets it.
const EnvServerEverything = "POMDEV_TEST_SERVER_EVERYTHING"

// The check against a real server it was not written with: the reference
// "everything" server from npm, on a loopback port the test picks.
func TestServerEverything(t *testing.T) {
	script := os.Getenv(EnvServerEverything)
	if script == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set; .ci/run installs the server", EnvServerEverything)
		}
		t.Skipf("%s not set (npm install @modelcontextprotocol/server-everything)", EnvServerEverything)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is required for this test")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(node, script, "streamableHttp")
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server-everything did not listen on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}

	rep, err := Run(context.Background(), Options{URL: "http://" + addr + "/mcp", Timeout: 20 * time.Second,
		Call: "echo", Args: []byte(`{"message":"hello from pomdev"}`)})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tl := range rep.Tools {
		names[tl.Name] = true
	}
	for _, want := range []string{"echo", "get-sum"} {
		if !names[want] {
			t.Errorf("tool %s not listed: %v", want, names)
		}
	}
	if len(rep.Resources) == 0 || len(rep.Templates) == 0 || len(rep.Prompts) == 0 {
		t.Errorf("resources %d templates %d prompts %d", len(rep.Resources), len(rep.Templates), len(rep.Prompts))
	}
	if rep.Call == nil || rep.Call.IsError || !strings.Contains(string(rep.Call.Content), "hello from pomdev") {
		t.Errorf("call %+v", rep.Call)
	}
	for _, f := range rep.Findings {
		if f.Severity == SeverityError {
			t.Errorf("error finding on the reference server: %+v", f)
		}
	}
	t.Logf("server-everything %s, protocol %s, %d tools, %d findings, timings %v", rep.Server.Version, rep.Protocol, len(rep.Tools), len(rep.Findings), rep.Timings)
}
