package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// env is a fake environment for Options.LookupEnv.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

type fixture struct {
	work, user string
}

func newFixture(t *testing.T, project, user string) fixture {
	t.Helper()
	f := fixture{work: t.TempDir(), user: t.TempDir()}
	if project != "" {
		write(t, filepath.Join(f.work, FileName), project)
	}
	if user != "" {
		write(t, filepath.Join(f.user, "pomdev", "config.yaml"), user)
	}
	return f
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f fixture) opts(e env, flags ...FlagBinding) Options {
	return Options{
		WorkDir:       f.work,
		UserConfigDir: func() (string, error) { return f.user, nil },
		LookupEnv:     e.lookup,
		Flags:         flags,
	}
}

func stringFlag(t *testing.T, name, value string, set bool) *pflag.Flag {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.String(name, "", "")
	if set {
		if err := fs.Parse([]string{"--" + name + "=" + value}); err != nil {
			t.Fatal(err)
		}
	}
	return fs.Lookup(name)
}

func TestDefaults(t *testing.T) {
	f := newFixture(t, "", "")
	l, err := Load(f.opts(env{}))
	if err != nil {
		t.Fatal(err)
	}
	if l.Log.Level != "info" || l.Tunnel.Relay != "pom.run" || l.Inspect.Timeout != 30*time.Second {
		t.Fatalf("unexpected defaults: %+v", l.Config)
	}
	if l.ProjectFile != "" || len(l.Files) != 0 || l.Dir != f.work {
		t.Fatalf("no files expected: %+v", l)
	}
	if got := l.Source("tunnel.relay"); got.Kind != FromDefault {
		t.Fatalf("source = %v", got)
	}
}

func TestPrecedence(t *testing.T) {
	user := "tunnel:\n  relay: user.example:2222\n  target: localhost:9000\nlog:\n  level: warn\n  format: json\n"
	project := "tunnel:\n  relay: project.example\n  target: localhost:7000\nlog:\n  level: debug\n"
	tests := []struct {
		name       string
		project    string
		env        env
		flag       string
		wantRelay  string
		wantSource SourceKind
	}{
		{"user beats default", "", env{}, "", "user.example:2222", FromUser},
		{"project beats user", project, env{}, "", "project.example", FromProject},
		{"env beats project", project, env{"POMDEV_TUNNEL_RELAY": "env.example"}, "", "env.example", FromEnv},
		{"empty env is unset", project, env{"POMDEV_TUNNEL_RELAY": ""}, "", "project.example", FromProject},
		{"flag beats env", project, env{"POMDEV_TUNNEL_RELAY": "env.example"}, "flag.example", "flag.example", FromFlag},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.project, user)
			l, err := Load(f.opts(tt.env, FlagBinding{Key: "tunnel.relay", Flag: stringFlag(t, "relay", tt.flag, tt.flag != "")}))
			if err != nil {
				t.Fatal(err)
			}
			if l.Tunnel.Relay != tt.wantRelay {
				t.Errorf("relay = %q, want %q", l.Tunnel.Relay, tt.wantRelay)
			}
			if got := l.Source("tunnel.relay").Kind; got != tt.wantSource {
				t.Errorf("source = %q, want %q", got, tt.wantSource)
			}
			// Keys the upper layers do not set keep the lower value.
			if l.Log.Format != "json" || l.Source("log.format").Kind != FromUser {
				t.Errorf("log.format = %q from %v, want json from the user config", l.Log.Format, l.Source("log.format"))
			}
		})
	}
}

func TestEnvTypedAndExplicitFile(t *testing.T) {
	f := newFixture(t, "", "")
	other := filepath.Join(f.work, "sub", "other.yaml")
	write(t, other, "inspect:\n  url: http://127.0.0.1:9/mcp\n  headers:\n    X-Token-Id: abc\n    Authorization: Bearer s3cret\nprocesses:\n  - name: server\n    command: node server.js\n    env: {PORT: \"8080\", NODE_ENV: development}\n")
	l, err := Load(f.opts(env{"POMDEV_CONFIG": "sub/other.yaml", "POMDEV_INSPECT_TIMEOUT": "5s"}))
	if err != nil {
		t.Fatal(err)
	}
	if l.ProjectFile != other || l.Dir != filepath.Dir(other) {
		t.Fatalf("project file %q dir %q", l.ProjectFile, l.Dir)
	}
	if l.Inspect.Timeout != 5*time.Second || l.Source("inspect.timeout").Where != "POMDEV_INSPECT_TIMEOUT" {
		t.Fatalf("timeout %v from %v", l.Inspect.Timeout, l.Source("inspect.timeout"))
	}
	p := l.Processes[0]
	if p.Env["PORT"] != "8080" || p.Env["NODE_ENV"] != "development" {
		t.Fatalf("env keys must keep their case: %v", p.Env)
	}
	if p.Restart != DefaultRestart || p.ReadyTimeout != DefaultReadyTimeout {
		t.Fatalf("process defaults not applied: %+v", p)
	}
	if l.Inspect.Headers["X-Token-Id"] != "abc" {
		t.Fatalf("headers: %v", l.Inspect.Headers)
	}
	for _, e := range l.Entries() {
		if strings.Contains(strings.ToLower(e.Key), "headers") {
			if m := e.Value.(map[string]string); m["Authorization"] != "<redacted>" || m["X-Token-Id"] != "abc" {
				t.Fatalf("headers shown as %v", m)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		project string
		env     env
		want    []string
	}{
		{"malformed yaml", "tunnel:\n  relay: [unclosed\n", nil, []string{"pomdev.yaml", "invalid YAML"}},
		{"not a mapping", "- a\n- b\n", nil, []string{"pomdev.yaml:1", "top level must be a mapping"}},
		{"unknown top key", "tunel:\n  relay: x\n", nil, []string{"pomdev.yaml:1: tunel: unknown key", "allowed here: inspect, log, processes, relay, tunnel"}},
		{"unknown nested key", "processes:\n  - name: a\n    command: x\n    restrat: never\n", nil, []string{"pomdev.yaml:4: processes[0].restrat: unknown key", "restart"}},
		{"wrong type", "processes:\n  - name: a\n    command: x\n    port: eighty\n", nil, []string{"pomdev.yaml:4: processes[0].port: \"eighty\" is not a whole number", "for example: 8"}},
		{"duration without unit", "inspect:\n  timeout: 30\n", nil, []string{"pomdev.yaml:2: inspect.timeout: \"30\" is not a duration", "for example: 30s"}},
		{"bad enum", "log:\n  level: loud\n", nil, []string{"pomdev.yaml:2: log.level: \"loud\" is not valid", "allowed: debug, info, warn, error"}},
		{"bad restart", "processes:\n  - name: a\n    command: x\n    restart: sometimes\n", nil, []string{"pomdev.yaml:4: processes[0].restart: \"sometimes\" is not valid", "on-failure, always, never"}},
		{"duplicate process", "processes:\n  - {name: a, command: x}\n  - {name: a, command: y}\n", nil, []string{"processes[1].name", "already used by processes[0]"}},
		{"missing command", "processes:\n  - name: a\n", nil, []string{"processes[0].command: missing"}},
		{"inline port without command", "processes:\n  - name: a\n    command: x\n    inline: {port: 80}\n", nil, []string{"processes[0].inline: port and health need a command"}},
		{"inline bad health", "processes:\n  - name: a\n    command: x\n    inline: {command: y, health: ftp://h}\n", nil, []string{"processes[0].inline.health"}},
		{"inline bad env", "processes:\n  - name: a\n    command: x\n    inline: {env: {\"A=B\": x}}\n", nil, []string{"processes[0].inline.env", "not a valid variable name"}},
		{"inline unknown key", "processes:\n  - name: a\n    command: x\n    inline: {comand: y}\n", nil, []string{"processes[0].inline.comand: unknown key", "allowed here: command, env, health, port"}},
		{"bad name", "processes:\n  - {name: ../x, command: y}\n", nil, []string{"processes[0].name", "not valid"}},
		{"env PORT disagrees", "processes:\n  - {name: server, command: y, port: 3000, env: {PORT: \"8080\"}}\ntunnel: {target: \"localhost:3000\"}\n", nil, []string{"processes[0].env.PORT: \"8080\" but processes[0].port is 3000", "must agree"}},
		{"health disagrees", "processes:\n  - {name: server, command: y, port: 3000, health: \"http://127.0.0.1:8080/health\"}\ntunnel: {target: \"localhost:3000\"}\n", nil, []string{"processes[0].health: http://127.0.0.1:8080/health is on port 8080 but processes[0].port is 3000"}},
		{"target disagrees", "processes:\n  - {name: server, command: y, port: 3000}\n  - {name: widgets, command: z, port: 4444}\n", nil, []string{"tunnel.target: localhost:8080 is not the port of any process (server on 3000, widgets on 4444)", "localhost:3000"}},
		{"bad glob", "processes:\n  - {name: a, command: y, watch: ['src/[']}\n", nil, []string{"glob \"src/[\" is malformed"}},
		{"bad env value", "", env{"POMDEV_INSPECT_TIMEOUT": "soon"}, []string{"env POMDEV_INSPECT_TIMEOUT: inspect.timeout", "not a duration"}},
		{"bad relay from env", "", env{"POMDEV_TUNNEL_RELAY": "a:b:c"}, []string{"env POMDEV_TUNNEL_RELAY: tunnel.relay"}},
		{"bad url", "inspect:\n  url: ftp://x\n", nil, []string{"inspect.url", "not an http(s) URL"}},
		{"bad tool glob", "tunnel:\n  tools:\n    deny: [delete_*, \"a*b\"]\n", nil, []string{"pomdev.yaml:3: tunnel.tools.deny[1]: \"a*b\": * may only end a name", "a prefix ending in *"}},
		{"unknown tools key", "tunnel:\n  tools:\n    block: [x]\n", nil, []string{"pomdev.yaml:3: tunnel.tools.block: unknown key", "allow, deny"}},
		{"public path under /mcp", "tunnel:\n  public_paths: [\"/mcp/**\"]\n", nil, []string{"pomdev.yaml:2: tunnel.public_paths", "never public", "/widgets/**"}},
		{"public paths in two directories", "tunnel:\n  public_paths:\n    - /widgets/**\n    - /assets/**\n", nil, []string{"tunnel.public_paths", "under one directory"}},
		{"several at once", "log:\n  level: loud\n  format: xml\n", nil, []string{"log.level", "log.format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.project, "")
			if tt.env == nil {
				tt.env = env{}
			}
			_, err := Load(f.opts(tt.env))
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("%T is not a *config.Error", err)
			}
		})
	}
}

func TestMissingExplicitFile(t *testing.T) {
	f := newFixture(t, "", "")
	o := f.opts(env{})
	o.ConfigFile = "nope.yaml"
	_, err := Load(o)
	var ce *Error
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "nope.yaml: config file not found") {
		t.Fatalf("got %v", err)
	}
}

func TestUserConfigDirUnavailable(t *testing.T) {
	f := newFixture(t, "", "")
	o := f.opts(env{})
	o.UserConfigDir = func() (string, error) { return "", errors.New("no home") }
	if _, err := Load(o); err != nil {
		t.Fatalf("a missing user config dir is not an error: %v", err)
	}
}

func TestParseRelay(t *testing.T) {
	tests := []struct {
		in      string
		want    RelayAddr
		wantErr bool
	}{
		{"pom.run", RelayAddr{Host: "pom.run", Port: 22}, false},
		{"alice@pom.run", RelayAddr{User: "alice", Host: "pom.run", Port: 22}, false},
		{"alice@relay.example:2222", RelayAddr{User: "alice", Host: "relay.example", Port: 2222}, false},
		{"[::1]:2222", RelayAddr{Host: "::1", Port: 2222}, false},
		{"127.0.0.1:2222", RelayAddr{Host: "127.0.0.1", Port: 2222}, false},
		{"local", RelayAddr{Local: true}, false},
		{"@host", RelayAddr{}, true},
		{"host:0", RelayAddr{}, true},
		{"host:99999", RelayAddr{}, true},
		{"a:b:c", RelayAddr{}, true},
		{"", RelayAddr{}, true},
		{"user@", RelayAddr{}, true},
	}
	for _, tt := range tests {
		got, err := ParseRelay(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseRelay(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseRelay(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestEnvVar(t *testing.T) {
	if got := EnvVar("tunnel.remote_url"); got != "POMDEV_TUNNEL_REMOTE_URL" {
		t.Fatal(got)
	}
	keys := EnvKeys()
	for _, want := range []string{"log.level", "tunnel.relay", "inspect.timeout", "inspect.url"} {
		found := false
		for _, k := range keys {
			found = found || k == want
		}
		if !found {
			t.Errorf("EnvKeys misses %s: %v", want, keys)
		}
	}
}

func TestForInline(t *testing.T) {
	p := Process{Name: "w", Command: "vite", Port: 4444, Health: "http://127.0.0.1:4444/", Env: map[string]string{"A": "1", "B": "1"},
		Inline: Inline{Env: map[string]string{"B": "2", "INLINE": "1"}}}
	got := p.ForInline()
	if got.Command != "vite" || got.Port != 4444 || got.Env["A"] != "1" || got.Env["B"] != "2" || got.Env["INLINE"] != "1" {
		t.Fatalf("env only: %+v", got)
	}
	if p.Env["B"] != "1" {
		t.Fatal("ForInline changed the original env")
	}
	p.Inline.Command = "build --watch"
	got = p.ForInline()
	if got.Command != "build --watch" || got.Port != 0 || got.Health != "" {
		t.Fatalf("command replaced: %+v", got)
	}
}
