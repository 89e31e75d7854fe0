package tunnelcmd

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/cli/factory/factorytest"
	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
)

func execute(t *testing.T, project string, env map[string]string, args ...string) (*Options, error) {
	t.Helper()
	f, _ := factorytest.New(t, project, env)
	var got *Options
	err := factorytest.Execute(f, NewCmdTunnel(f, func(o *Options) error { got = o; return nil }), args...)
	return got, err
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name      string
		project   string
		env       map[string]string
		args      []string
		relay     string
		target    string
		bind      string
		wantUsage bool
	}{
		{"defaults", "", nil, nil, "pom.run", "localhost:8080", "", false},
		{"port", "", nil, []string{"--port", "3000"}, "pom.run", "localhost:3000", "", false},
		{"relay and target", "", nil, []string{"--relay", "me@r.example:2222", "--target", "127.0.0.1:9000"}, "me@r.example:2222", "127.0.0.1:9000", "", false},
		{"config file", "tunnel:\n  relay: file.example\n  target: localhost:7000\n", nil, nil, "file.example", "localhost:7000", "", false},
		{"env beats file", "tunnel:\n  relay: file.example\n", map[string]string{"POMDEV_TUNNEL_RELAY": "env.example"}, nil, "env.example", "localhost:8080", "", false},
		{"bind", "", nil, []string{"--bind", "myapp:80"}, "pom.run", "localhost:8080", "myapp:80", false},
		{"port and target", "", nil, []string{"--port", "1", "--target", "a:2"}, "", "", "", true},
		{"bad port", "", nil, []string{"--port", "70000"}, "", "", "", true},
		{"args", "", nil, []string{"extra"}, "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := execute(t, tt.project, tt.env, tt.args...)
			if tt.wantUsage {
				if exitcode.Code(err) != exitcode.Usage {
					t.Fatalf("want a usage error, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Relay != tt.relay || got.Target != tt.target || got.Bind != tt.bind {
				t.Fatalf("relay %q target %q bind %q", got.Relay, got.Target, got.Bind)
			}
			if !strings.HasSuffix(got.ConfigDir, filepath.Join("user", "pomdev")) {
				t.Fatalf("config dir %q", got.ConfigDir)
			}
		})
	}
}

func TestRunUsageErrors(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	for _, o := range []*Options{
		{IO: ios, Relay: "local", Target: "localhost:1"},
		{IO: ios, Relay: "a:b:c", Target: "localhost:1"},
		{IO: ios, Relay: "pom.run", Target: "localhost:1", Bind: "x:22", ConfigDir: t.TempDir(), Getenv: func(string) string { return "" }},
	} {
		if err := Run(o); exitcode.Code(err) != exitcode.Usage {
			t.Errorf("%+v: got %v", o, err)
		}
	}
}

// The printer's lines: "Remote URL: <url>" once per URL, one line per
// request, sign-in link prominent; JSON lines with --log-format json.
func TestPrinter(t *testing.T) {
	var buf bytes.Buffer
	p := &printer{w: &buf, cs: &iostreams.ColorScheme{}}
	p.event(event.Tunnel{Kind: event.TunnelSignIn, Message: "Please sign in to continue", URL: "https://x/.pomerium/sign_in?user_code=AB"})
	p.event(event.Tunnel{Kind: event.TunnelReady, URL: "https://a.pom.run"})
	p.event(event.Tunnel{Kind: event.TunnelReady, URL: "https://a.pom.run"})
	p.event(event.Tunnel{Kind: event.TunnelRequest, Request: &event.Request{Time: time.Date(2026, 1, 1, 9, 8, 7, 0, time.UTC), Method: "POST", Path: "/mcp", Status: 200, Duration: 3 * time.Millisecond, RPCMethod: "tools/call", Tool: "echo"}})
	out := buf.String()
	for _, want := range []string{"Please sign in to continue\n\n    https://x/.pomerium/sign_in?user_code=AB\n", "Waiting for the sign-in", "Remote URL: https://a.pom.run\n", "09:08:07 POST /mcp 200 3ms tools/call echo\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "Remote URL:") != 1 {
		t.Errorf("URL printed more than once:\n%s", out)
	}
	buf.Reset()
	p.json = true
	p.event(event.Tunnel{Kind: event.TunnelReady, URL: "https://a.pom.run"})
	if !strings.HasPrefix(buf.String(), `{"kind":"ready"`) {
		t.Fatalf("json %q", buf.String())
	}
}

// What a hostile relay or request sends never reaches the terminal raw:
// the sign-in instruction, log messages, errors and request fields are
// escaped in lines, and the JSON carries no raw C1 control.
func TestPrinterEscapes(t *testing.T) {
	var buf bytes.Buffer
	p := &printer{w: &buf, cs: &iostreams.ColorScheme{}}
	evil := "\x1b]52;c;aGk=\x07\x1b[2J\u009b"
	p.event(event.Tunnel{Kind: event.TunnelSignIn, Message: "sign in" + evil, URL: "https://x/" + evil})
	p.event(event.Tunnel{Kind: event.TunnelLog, Message: "relay: " + evil})
	p.event(event.Tunnel{Kind: event.TunnelDisconnected, Err: evil, Message: evil})
	p.event(event.Tunnel{Kind: event.TunnelRequest, Request: &event.Request{Method: "POST", Path: "/mcp" + evil, RPCMethod: "tools/call", Tool: evil}})
	p.json = true
	p.event(event.Tunnel{Kind: event.TunnelLog, Message: evil})
	out := buf.String()
	for _, raw := range []string{"\x1b", "\x07", "\u009b"} {
		if strings.Contains(out, raw) {
			t.Errorf("%q reached the terminal:\n%q", raw, out)
		}
	}
	if strings.Count(out, `\x1b]52;c;aGk=\x07\x1b[2J\u009b`) < 6 {
		t.Errorf("not every field shown escaped:\n%s", out)
	}
}
