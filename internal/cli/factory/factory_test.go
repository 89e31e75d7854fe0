package factory

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/spf13/cobra"
)

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	NewLogger(&buf, "warn", "json").Info("hidden")
	NewLogger(&buf, "warn", "json").Warn("shown", "k", 1)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want 1 line, got %q", buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil || m["msg"] != "shown" {
		t.Fatalf("not a JSON record: %q (%v)", lines[0], err)
	}
	buf.Reset()
	NewLogger(&buf, "debug", "text").Debug("dbg")
	if !strings.Contains(buf.String(), "level=DEBUG msg=dbg") {
		t.Fatalf("text record: %q", buf.String())
	}
}

func TestArgs(t *testing.T) {
	cmd := &cobra.Command{Use: "x"}
	if err := NoArgs(cmd, nil); err != nil {
		t.Fatal(err)
	}
	if err := NoArgs(cmd, []string{"a"}); exitcode.Code(err) != exitcode.Usage {
		t.Fatalf("NoArgs: %v", err)
	}
	if err := ExactArgs(1, "a shell name")(cmd, nil); exitcode.Code(err) != exitcode.Usage || !strings.Contains(err.Error(), "a shell name") {
		t.Fatalf("ExactArgs: %v", err)
	}
}

func TestBindFlag(t *testing.T) {
	cmd := &cobra.Command{Use: "x"}
	cmd.Flags().String("relay", "", "")
	cmd.Flags().String("other", "", "")
	BindFlag(cmd.Flags(), "relay", "tunnel.relay")
	b := FlagBindings(cmd)
	if len(b) != 1 || b[0].Key != "tunnel.relay" || b[0].Flag.Name != "relay" {
		t.Fatalf("bindings: %+v", b)
	}
}

func TestBrowserNeedsATerminal(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := New(ios)
	if f.Browser() != nil {
		t.Fatal("a browser opener without a terminal")
	}
}

// OpenSafe passes https links to the opener and keeps the rest from it.
func TestOpenSafe(t *testing.T) {
	var opened []string
	open := OpenSafe(func(u string) error { opened = append(opened, u); return nil })
	for _, u := range []string{"https://relay.example.com/sign_in", "file:///etc/passwd", "http://evil.example.com/", "http://localhost:8088/x"} {
		_ = open(u)
	}
	if len(opened) != 2 || opened[0] != "https://relay.example.com/sign_in" || opened[1] != "http://localhost:8088/x" {
		t.Fatalf("opened %q", opened)
	}
}
