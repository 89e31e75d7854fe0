package mcpcheck

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/peertest"
)

// EnvServerEverything points at @modelcontextprotocol/server-everything's
// dist/index.js; .ci/run installs it from npm and sets it.
const EnvServerEverything = "POMDEV_TEST_SERVER_EVERYTHING"

// EnvInspector points at the official Inspector's launcher
// (@modelcontextprotocol/inspector clients/launcher/build/index.js).
const EnvInspector = "POMDEV_TEST_INSPECTOR"

// The check against a real server it was not written with: the reference
// "everything" server from npm, on a loopback port the test picks.
func TestServerEverything(t *testing.T) {
	addr := startEverything(t)

	rep, err := Run(context.Background(), Options{URL: "http://" + addr + "/mcp", Timeout: 20 * time.Second,
		Call: "echo", Args: []byte(`{"message":"hello from pomdev"}`)})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tl := range rep.Tools {
		names[tl.Name] = true
	}
	// get-roots-list is there because the check declares roots.
	for _, want := range []string{"echo", "get-sum", "get-roots-list"} {
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

	// A client that declares nothing is offered no roots tool.
	bare, err := Run(context.Background(), Options{URL: "http://" + addr + "/mcp", Timeout: 20 * time.Second, Client: ProfileBare})
	if err != nil {
		t.Fatal(err)
	}
	for _, tl := range bare.Tools {
		if tl.Name == "get-roots-list" {
			t.Error("get-roots-list offered to a client without roots")
		}
	}
	if len(bare.Tools) != len(rep.Tools)-1 {
		t.Errorf("%d tools for a bare client, %d with roots", len(bare.Tools), len(rep.Tools))
	}
}

// By default inspect lists exactly the tools the official Inspector CLI
// lists on the reference server; so does --client inspector.
func TestToolsAsInspector(t *testing.T) {
	launcher := peertest.Env(t, EnvInspector, "npm install @modelcontextprotocol/inspector")
	addr := startEverything(t)
	url := "http://" + addr + "/mcp"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "node", launcher, "--cli", url, "--transport", "http", "--method", "tools/list").Output()
	if err != nil {
		t.Fatalf("Inspector CLI: %v", err)
	}
	var listed struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(out, &listed); err != nil {
		t.Fatalf("Inspector CLI output: %v\n%s", err, out)
	}
	var theirs []string
	for _, tl := range listed.Tools {
		theirs = append(theirs, tl.Name)
	}
	slices.Sort(theirs)
	for _, profile := range []string{"", ProfileInspector} {
		rep, err := Run(ctx, Options{URL: url, Timeout: 20 * time.Second, Client: profile})
		if err != nil {
			t.Fatal(err)
		}
		var ours []string
		for _, tl := range rep.Tools {
			ours = append(ours, tl.Name)
		}
		slices.Sort(ours)
		if !slices.Equal(ours, theirs) || len(ours) == 0 {
			t.Errorf("profile %q lists\n%v\nthe Inspector CLI\n%v", profile, ours, theirs)
		}
	}
}

// startEverything runs server-everything over Streamable HTTP on a
// loopback port and returns its address.
func startEverything(t *testing.T) string {
	t.Helper()
	script := peertest.Env(t, EnvServerEverything, "npm install @modelcontextprotocol/server-everything")
	return peertest.StartNode(t, filepath.Dir(script), script, "streamableHttp")
}
