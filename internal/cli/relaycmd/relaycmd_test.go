package relaycmd

import (
	"bytes"
	"context"
	ctl "github.com/pomdev/pomdev/internal/relay/control"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/cli/factory/factorytest"
	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/pomdev/pomdev/internal/relay"
)

// Flags, the config file and defaults reach the options with the usual
// precedence.
func TestFlags(t *testing.T) {
	tests := []struct {
		name    string
		project string
		args    []string
		check   func(t *testing.T, r config.Relay)
	}{
		{"defaults", "", nil, func(t *testing.T, r config.Relay) {
			if r.SSHAddr != "127.0.0.1:2222" || r.HTTPAddr != "127.0.0.1:8088" || r.Auth != "open" || r.Domain != "localhost" {
				t.Errorf("%+v", r)
			}
		}},
		{"flags", "", []string{"--auth", "signin", "--ssh-addr", ":22", "--domain", "t.example.com", "--public-port", "443", "--session-ttl", "2h"}, func(t *testing.T, r config.Relay) {
			if r.Auth != "signin" || r.SSHAddr != ":22" || r.Domain != "t.example.com" || r.PublicPort != 443 || r.SessionTTL != 2*time.Hour {
				t.Errorf("%+v", r)
			}
		}},
		{"file", "relay:\n  auth: keys\n  authorized_keys: /etc/keys\n  default_target: localhost:3000\n", nil, func(t *testing.T, r config.Relay) {
			if r.Auth != "keys" || r.AuthorizedKeys != "/etc/keys" || r.DefaultTarget != "localhost:3000" {
				t.Errorf("%+v", r)
			}
		}},
		{"flag beats file", "relay:\n  domain: file.example\n", []string{"--domain", "flag.example"}, func(t *testing.T, r config.Relay) {
			if r.Domain != "flag.example" {
				t.Errorf("%+v", r)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := factorytest.New(t, tt.project, nil)
			var got *Options
			if err := factorytest.Execute(f, NewCmdRelay(f, func(o *Options) error { got = o; return nil }), tt.args...); err != nil {
				t.Fatal(err)
			}
			tt.check(t, got.Relay)
		})
	}
}

func TestRunRefusesOpenAuthOnPublicAddress(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	rc := config.Defaults().Relay
	rc.SSHAddr = "0.0.0.0:2222"
	rc.StateDir = t.TempDir()
	err := Run(&Options{IO: ios, Relay: rc, Ctx: context.Background(), Listen: net.Listen})
	if exitcode.Code(err) != exitcode.Usage || !strings.Contains(err.Error(), "--allow-open-auth") {
		t.Fatalf("got %v", err)
	}
}

func TestRunPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ios, _, _, _ := iostreams.Test()
	rc := config.Defaults().Relay
	rc.SSHAddr = "127.0.0.1:0"
	rc.HTTPAddr = busy.Addr().String()
	rc.StateDir = t.TempDir()
	err = Run(&Options{IO: ios, Relay: rc, Ctx: context.Background(), Listen: net.Listen})
	if err == nil || !strings.Contains(err.Error(), "HTTP address "+busy.Addr().String()+" is already in use") {
		t.Fatalf("got %v", err)
	}
	if h := exitcode.Hint(err); !strings.Contains(h, "--http-addr") {
		t.Fatalf("hint %q", h)
	}
}

// Run serves until the context ends, printing the banner first.
func TestRunServesAndStops(t *testing.T) {
	rc := config.Defaults().Relay
	rc.SSHAddr, rc.HTTPAddr, rc.StateDir, rc.Auth = "127.0.0.1:0", "127.0.0.1:0", t.TempDir(), "signin"
	out, stop := runRelay(t, rc)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Host key   SHA256:", "(new)", "Auth       signin", "Admin      ", "Connect    ssh -R 0 -p "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(ctl.SocketPath(rc.StateDir)); !os.IsNotExist(err) {
		t.Errorf("control socket left behind: %v", err)
	}
}

func TestRunRefusesOpenHTTPOnPublicAddress(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	rc := config.Defaults().Relay
	rc.Auth, rc.AuthorizedKeys = "keys", "/dev/null"
	rc.HTTPAddr = "0.0.0.0:8088"
	rc.HTTPAuth = "none"
	rc.StateDir = t.TempDir()
	err := Run(&Options{IO: ios, Relay: rc, Ctx: context.Background(), Listen: net.Listen})
	if exitcode.Code(err) != exitcode.Usage || !strings.Contains(err.Error(), "--allow-open-http") {
		t.Fatalf("got %v", err)
	}
}

// pomdev relay access / grants reach a running relay over its control
// socket; with nothing pending they say so, and a wrong code is an error.
func TestAccessCommands(t *testing.T) {
	rc := config.Defaults().Relay
	rc.SSHAddr, rc.HTTPAddr, rc.StateDir, rc.HTTPAuth = "127.0.0.1:0", "127.0.0.1:0", t.TempDir(), "owner"
	_, stop := runRelay(t, rc)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	run := func(args ...string) (string, error) {
		f, s := factorytest.New(t, "", nil)
		err := factorytest.Execute(f, NewCmdRelay(f, nil), append(args, "--state-dir", rc.StateDir)...)
		return s.Out.String(), err
	}
	if out, err := run("access", "list"); err != nil || !strings.Contains(out, "No access request") {
		t.Fatalf("access list: %q %v", out, err)
	}
	if out, err := run("grants", "list"); err != nil || !strings.Contains(out, "No grant") {
		t.Fatalf("grants list: %q %v", out, err)
	}
	if _, err := run("access", "approve", "ABCD-EFGH"); err == nil || !strings.Contains(err.Error(), "no pending access request") {
		t.Fatalf("approve of an unknown code: %v", err)
	}
	if _, err := run("grants", "revoke", "nope"); err == nil || !strings.Contains(err.Error(), "no grant") {
		t.Fatalf("revoke of an unknown grant: %v", err)
	}
}

// pomdev relay audit prints the trail, one route's with --route, escaped
// for the terminal; --json as stored.
func TestAuditRun(t *testing.T) {
	dir := t.TempDir()
	trail := `{"time":"2026-12-01T10:00:00Z","kind":"request","route":"a","client":"c1","method":"tools/call","tool":"echo","decision":"allow","status":200}
{"time":"2026-12-01T10:00:01Z","kind":"refused","route":"b","decision":"deny","status":401,"reason":"evil\u001b[2Jname"}
not json
`
	if err := os.WriteFile(filepath.Join(dir, "audit.jsonl"), []byte(trail), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(o AuditOptions) string {
		ios, _, out, _ := iostreams.Test()
		o.IO, o.StateDir = ios, dir
		if err := AuditRun(&o); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	all := run(AuditOptions{})
	if !strings.Contains(all, "request a allow client=c1 tools/call echo 200") || !strings.Contains(all, "refused b deny 401") {
		t.Fatalf("audit:\n%s", all)
	}
	if strings.ContainsRune(all, 0x1b) {
		t.Fatalf("a control character reached the terminal: %q", all)
	}
	if one := run(AuditOptions{Route: "b"}); strings.Contains(one, "tools/call") || !strings.Contains(one, "refused b") {
		t.Fatalf("--route b:\n%s", one)
	}
	if js := run(AuditOptions{JSON: true, Route: "a"}); strings.Count(js, "\n") != 1 || !strings.HasPrefix(js, `{"time"`) {
		t.Fatalf("--json:\n%s", js)
	}
}

// runRelay runs the relay command's Run until stop, which returns Run's
// error; out is its output.
func runRelay(t *testing.T, rc config.Relay) (out *bytes.Buffer, stop func() error) {
	t.Helper()
	ios, _, out, _ := iostreams.Test()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan *relay.Relay, 1)
	go func() {
		done <- Run(&Options{IO: ios, Relay: rc, Ctx: ctx, Listen: net.Listen, Ready: func(r *relay.Relay) { ready <- r }})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Run returned early: %v", err)
	}
	return out, func() error { cancel(); return <-done }
}
