// Package config owns pomdev's configuration: the pomdev.yaml schema that
// `up`, `tunnel`, `inspect` and `relay` read, its defaults, how the layers
// are merged (flags > POMDEV_* env > --config or ./pomdev.yaml > user config
// > defaults), where each effective value came from, and validation.
//
// It is the only package that touches viper; everything else receives a
// typed *Config.
package config

import (
	"time"

	"github.com/pomdev/pomdev/internal/relayrule"
)

// FileName is the project configuration file looked up in the current
// directory when --config is not given.
const FileName = "pomdev.yaml"

// Config is pomdev's effective configuration.
type Config struct {
	Log       Log       `yaml:"log"`
	Processes []Process `yaml:"processes"`
	Tunnel    Tunnel    `yaml:"tunnel"`
	Inspect   Inspect   `yaml:"inspect"`
	Relay     Relay     `yaml:"relay"`

	// Dir is the directory relative paths in the project file are resolved
	// against: the project file's directory, or the working directory when
	// there is none. Not a configuration key.
	Dir string `yaml:"-"`
}

// Log configures pomdev's own log (stderr).
type Log struct {
	// Level is one of debug, info, warn, error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// Process is one child process `pomdev up` supervises.
type Process struct {
	// Name identifies the process in logs and the dashboard.
	Name string `yaml:"name"`
	// Command is run by the shell (sh -c on Unix, cmd /C on Windows).
	Command string `yaml:"command"`
	// Dir is the working directory, relative to the config file.
	Dir string `yaml:"dir"`
	// Env adds to (or overrides) the inherited environment.
	Env map[string]string `yaml:"env"`
	// Port the process listens on; readiness waits for it to accept.
	Port int `yaml:"port"`
	// Health is an http(s) URL that answers 2xx when the process is ready.
	Health string `yaml:"health"`
	// ReadyTimeout bounds the wait for Port and Health.
	ReadyTimeout time.Duration `yaml:"ready_timeout"`
	// Watch lists globs (relative to the config file, ** allowed) whose
	// changes restart the process.
	Watch []string `yaml:"watch"`
	// Ignore lists globs excluded from Watch.
	Ignore []string `yaml:"ignore"`
	// Restart is the crash policy: on-failure, always or never.
	Restart string `yaml:"restart"`
	// SelfWatching marks processes that reload themselves (tsx watch,
	// vite); pomdev does not restart them on file changes.
	SelfWatching bool `yaml:"self_watching"`
	// Inline changes the process under `pomdev up --inline`.
	Inline Inline `yaml:"inline"`
}

// Inline is how a process runs when widgets are served self-contained
// (`pomdev up --inline`). Env is added to the process's env. A non-empty
// Command replaces the process's command, and then the process is ready
// by Port and Health from here (none when zero).
type Inline struct {
	Command string            `yaml:"command"`
	Env     map[string]string `yaml:"env"`
	Port    int               `yaml:"port"`
	Health  string            `yaml:"health"`
}

// ForInline returns the process as `pomdev up --inline` runs it.
func (p Process) ForInline() Process {
	out := p
	out.Env = make(map[string]string, len(p.Env)+len(p.Inline.Env))
	for k, v := range p.Env {
		out.Env[k] = v
	}
	for k, v := range p.Inline.Env {
		out.Env[k] = v
	}
	if p.Inline.Command != "" {
		out.Command, out.Port, out.Health = p.Inline.Command, p.Inline.Port, p.Inline.Health
	}
	return out
}

// Tunnel configures the SSH tunnel to a relay.
type Tunnel struct {
	// Relay is [user@]host[:port], or "local" for the in-process relay.
	Relay string `yaml:"relay"`
	// Identity is a private key file; empty means pomdev's own key.
	Identity string `yaml:"identity"`
	// Target is the local host:port the tunnel forwards to.
	Target string `yaml:"target"`
	// RemoteURL overrides the public URL read from the relay.
	RemoteURL string `yaml:"remote_url"`
	// Tools are the tool rules a pomdev relay enforces on this tunnel.
	Tools ToolRules `yaml:"tools"`
	// PublicPaths are asset paths (globs under one directory, such as
	// /widgets/**) a pomdev relay with --http-auth serves without a token:
	// hosts load widgets in frames that cannot send one.
	PublicPaths []string `yaml:"public_paths"`
}

// ToolRules name MCP tools (or prefixes ending in *): a tool must not be
// denied and, when Allow is set, must be allowed.
type ToolRules struct {
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

// Inspect configures `pomdev inspect`.
type Inspect struct {
	// URL of the MCP endpoint; empty means the local server of the app.
	URL string `yaml:"url"`
	// Headers are sent with every request (for example Authorization).
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds the whole check.
	Timeout time.Duration `yaml:"timeout"`
}

// Relay configures `pomdev relay`.
type Relay struct {
	// SSHAddr is where the SSH server listens.
	SSHAddr string `yaml:"ssh_addr"`
	// HTTPAddr is where the HTTP(S) front listens.
	HTTPAddr string `yaml:"http_addr"`
	// Domain routes live under: <route>.<domain>.
	Domain string `yaml:"domain"`
	// PublicURLScheme is the scheme of printed URLs (https behind a TLS
	// terminator).
	PublicURLScheme string `yaml:"public_url_scheme"`
	// PublicPort is the port in printed URLs when a proxy in front changes
	// it; 0 means the HTTP listener's.
	PublicPort int `yaml:"public_port"`
	// StateDir holds the host key, admin token and sessions; empty means
	// the user config dir's pomdev/relay.
	StateDir string `yaml:"state_dir"`
	// Store is the PostgreSQL database (postgres://user@host/db) that
	// holds route names, sign-ins and OAuth state instead of relay.db in
	// the state directory; relays given one store share that state.
	Store string `yaml:"store"`
	// FleetAddr, with Store, is where the relay takes the requests other
	// relays of the store pass it; empty: the HTTP address's host on a
	// free port.
	FleetAddr string `yaml:"fleet_addr"`
	// Auth is open, keys or signin.
	Auth string `yaml:"auth"`
	// AuthorizedKeys is the authorized_keys file of keys mode.
	AuthorizedKeys string `yaml:"authorized_keys"`
	// AllowOpenAuth permits open auth on a non-loopback address.
	AllowOpenAuth bool `yaml:"allow_open_auth"`
	// DefaultTarget is where dynamic forwards connect on the client side.
	DefaultTarget string `yaml:"default_target"`
	// TLSCert and TLSKey serve HTTPS (a wildcard certificate for the domain).
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// SessionTTL is how long a sign-in lasts per key.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// KeepaliveInterval is how often clients are pinged.
	KeepaliveInterval time.Duration `yaml:"keepalive_interval"`
	// MaxTunnelsPerKey bounds the routes one key holds at once.
	MaxTunnelsPerKey int `yaml:"max_tunnels_per_key"`
	// RouteNameTTL is how long a route name stays reserved for its key
	// after its last use.
	RouteNameTTL time.Duration `yaml:"route_name_ttl"`
	// HTTPAuth is how the public front authorizes requests: owner (OAuth
	// approved by the tunnel's owner) or none; empty means owner on a
	// non-loopback address and none on loopback.
	HTTPAuth string `yaml:"http_auth"`
	// AllowOpenHTTP permits http_auth none on a non-loopback address.
	AllowOpenHTTP bool `yaml:"allow_open_http"`
	// AllowAppAuth lets a tunnel pass requests to its app unauthorized by
	// the relay (POMDEV_HTTP_AUTH=app) for apps that do their own OAuth.
	AllowAppAuth bool `yaml:"allow_app_auth"`
	// GrantTTL is how long an owner's approval of a client is remembered.
	GrantTTL time.Duration `yaml:"grant_ttl"`
	// Policy is the policy file: who may open tunnels, which route names
	// they may hold, which MCP tools may be called (reloaded on change).
	Policy string `yaml:"policy"`
	// OIDCIssuer, OIDCClientID and OIDCClientSecretFile name an OpenID
	// Connect provider and the relay's client at it: sign-in links lead
	// through it and bind keys to people.
	OIDCIssuer           string `yaml:"oidc_issuer"`
	OIDCClientID         string `yaml:"oidc_client_id"`
	OIDCClientSecretFile string `yaml:"oidc_client_secret_file"`
	// OwnerApproval, with http_auth oidc, also asks a tunnel's owner to
	// approve each app once its person has signed in.
	OwnerApproval bool `yaml:"owner_approval"`
	// TrustedProxies are the addresses (IPs or CIDRs, comma-separated) of
	// proxies in front of the HTTP front whose X-Forwarded-For names the
	// client: rate limits and bounds count that client, not the proxy.
	TrustedProxies string `yaml:"trusted_proxies"`
}

// Allowed values of enumerated keys.
var (
	LogLevels      = []string{"debug", "info", "warn", "error"}
	LogFormats     = []string{"text", "json"}
	RestartPolices = []string{"on-failure", "always", "never"}
	RelayAuths     = []string{"open", "keys", "signin"}
	HTTPAuths      = []string{"", "owner", "oidc", "none"}
	URLSchemes     = []string{"http", "https"}
)

// Defaults returns the built-in configuration.
func Defaults() Config {
	return Config{
		Log:     Log{Level: "info", Format: "text"},
		Tunnel:  Tunnel{Relay: "pom.run", Target: "localhost:8080"},
		Inspect: Inspect{Timeout: 30 * time.Second},
		Relay: Relay{
			SSHAddr: "127.0.0.1:2222", HTTPAddr: "127.0.0.1:8088", Domain: relayrule.DefaultDomain,
			PublicURLScheme: "http", Auth: "open", DefaultTarget: relayrule.DefaultTarget,
			SessionTTL: relayrule.DefaultSessionTTL, KeepaliveInterval: relayrule.DefaultKeepaliveInterval,
			MaxTunnelsPerKey: relayrule.DefaultMaxTunnelsPerKey, RouteNameTTL: relayrule.DefaultRouteNameTTL,
			GrantTTL: relayrule.DefaultGrantTTL,
		},
	}
}

// Process defaults applied to every entry of processes.
const (
	DefaultRestart      = "on-failure"
	DefaultReadyTimeout = 60 * time.Second
)
