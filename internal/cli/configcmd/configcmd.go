// Package configcmd implements `pomdev config` (whose help is the
// configuration reference shown by `pomdev help config`) and
// `pomdev config show`.
package configcmd

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/spf13/cobra"
)

// Reference is the configuration help topic.
const Reference = `pomdev reads its configuration from, highest precedence first:

  1. command-line flags            (--relay, --log-level, ...)
  2. POMDEV_* environment vars     (POMDEV_TUNNEL_RELAY, POMDEV_LOG_FORMAT, ...)
  3. the project file              --config FILE, $POMDEV_CONFIG, or ./pomdev.yaml
  4. the user file                 $XDG_CONFIG_HOME/pomdev/config.yaml
                                   (~/.config on Linux, ~/Library/Application Support
                                   on macOS, %AppData% on Windows)
  5. built-in defaults

Lists and maps (processes, env, inspect.headers, tunnel.tools) come whole from the highest file
that sets them; every other key can also be set through the environment: the key
in upper case with dots as underscores, prefixed POMDEV_ (tunnel.remote_url is
POMDEV_TUNNEL_REMOTE_URL). Relative paths in the project file are relative to it.
Unknown keys and invalid values are errors that name the file, line and key.

Keys:

  log.level          debug | info | warn | error                   (default info)
  log.format         text | json                                   (default text)

  processes:         the child processes "pomdev up" supervises, in start order
    - name           lowercase letters, digits, - and _; unique    (required)
      command        shell command, run with sh -c                 (required)
      dir            working directory, relative to the file
      env            map of extra environment variables (case kept)
      port           TCP port the process listens on; readiness waits for it
      health         http(s) URL answering 2xx when ready
      ready_timeout  how long to wait for port/health              (default 60s)
      watch          globs (** allowed) whose changes restart it
      ignore         globs excluded from watch
      restart        on-failure | always | never: after a crash    (default on-failure)
      self_watching  true for processes that reload themselves (tsx watch, vite)
      inline         how it runs under "pomdev up --inline" (self-contained widgets):
        env            added to env (for example INLINE: "1")
        command        replaces command; port and health then come from here
        port, health   readiness of the inline command (none when unset)

  tunnel.relay       pom.run, [user@]host[:port] or local          (default pom.run)
  tunnel.identity    private key file                  (default: pomdev's own key)
  tunnel.target      local host:port to expose                     (default localhost:8080)
  tunnel.remote_url  public URL, when the relay's cannot be read
  tunnel.tools       {allow: [...], deny: [...]}: MCP tool names or prefixes
                     ending in * a pomdev relay refuses and hides on this
                     tunnel (--allow-tools, --deny-tools); pom.run cannot
  tunnel.public_paths  asset paths (globs under one directory: /widgets/**)
                     a pomdev relay with --http-auth serves without a token,
                     for widgets hosts load in frames (--public-paths)

  inspect.url        MCP endpoint to check         (default: the app's local server)
  inspect.headers    map of headers sent with every request (values of
                     Authorization and Cookie are redacted in "config show")
  inspect.timeout    bound on the whole check                      (default 30s)

  relay.*            "pomdev relay", one key per flag (see pomdev relay --help):
    ssh_addr           SSH listen address                  (default 127.0.0.1:2222)
    http_addr          HTTP(S) listen address              (default 127.0.0.1:8088)
    domain             tunnel URLs are <route>.<domain>    (default localhost)
    public_url_scheme  http | https, for printed URLs      (default http)
    public_port        port in printed URLs, 0 = the listener's
    state_dir          host key, admin token, sessions     (default <config dir>/pomdev/relay)
    store              postgres://user@host/db shared by   (default relay.db in state_dir)
                       relays: names, sign-ins, OAuth
    fleet_addr         with store: where other relays pass (default the http_addr host,
                       requests for this one's tunnels     a free port)
    auth               open | keys | signin                (default open)
    authorized_keys    OpenSSH authorized_keys file for keys
    allow_open_auth    allow open auth on a non-loopback address
    default_target     host:port dynamic forwards reach    (default localhost:8080)
    tls_cert, tls_key  serve HTTPS with this (wildcard) certificate
    session_ttl        how long a sign-in lasts per key    (default 24h)
    keepalive_interval client pings; 3 misses drop it      (default 15s)
    max_tunnels_per_key                                    (default 8)
    route_name_ttl     a route name stays with its key     (default 2160h)
    http_auth          owner (OAuth, the owner approves) | none
                                             (default owner; none on loopback)
    allow_open_http    allow http_auth none on a non-loopback address
    allow_app_auth     let tunnels ask POMDEV_HTTP_AUTH=app (their own OAuth)
    grant_ttl          an owner's approval of an app lasts  (default 720h)
    policy             policy file: who may tunnel, route names, tool allow/deny
    oidc_issuer        OpenID Connect provider: sign-in (auth signin) through it
    oidc_client_id, oidc_client_secret_file   the relay's client at the provider
    owner_approval     with http_auth oidc, the owner also approves each app
    trusted_proxies    proxies (IPs, CIDRs) whose X-Forwarded-For names the client

Example pomdev.yaml:

  processes:
    - name: widgets
      command: npm run dev:widgets
      port: 4444
      self_watching: true
    - name: server
      command: npm run start --workspace server
      port: 8080
      health: http://127.0.0.1:8080/health
      watch: ["server/src/**/*.ts"]
  tunnel:
    relay: pom.run

Run "pomdev config show" to see the effective values and where each came from.`

// NewCmdConfig returns the config command group.
func NewCmdConfig(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the effective configuration; the configuration reference",
		Long:  Reference,
		Args:  factory.NoArgs,
	}
	cmd.AddCommand(NewCmdShow(f, nil))
	return cmd
}

// ShowOptions are the inputs of ShowRun.
type ShowOptions struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Loaded, error)
	JSON   bool
}

// NewCmdShow returns `pomdev config show`.
func NewCmdShow(f *factory.Factory, runF func(*ShowOptions) error) *cobra.Command {
	opts := &ShowOptions{}
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration and where each value came from",
		Example: `  pomdev config show
  POMDEV_TUNNEL_RELAY=relay.example:2222 pomdev config show
  pomdev config show --json | jq '.entries[] | select(.source != "default")'`,
		Args: factory.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IO = f.IOStreams
			opts.Config = f.Config
			if runF != nil {
				return runF(opts)
			}
			return ShowRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON: {files, entries: [{key, value, source}]}")
	return cmd
}

// ShowRun prints the configuration.
func ShowRun(opts *ShowOptions) error {
	l, err := opts.Config()
	if err != nil {
		return err
	}
	out := opts.IO.Out
	files := l.Files
	if files == nil {
		files = []string{}
	}
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Files   []string       `json:"files"`
			Entries []config.Entry `json:"entries"`
		}{files, l.Entries()})
	}
	cs := opts.IO.ColorScheme()
	if len(files) == 0 {
		fmt.Fprintln(out, cs.Gray("no configuration file found; using defaults (see: pomdev help config)"))
	} else {
		fmt.Fprintln(out, cs.Gray("files: "+strings.Join(files, ", ")))
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, cs.Bold("KEY")+"\t"+cs.Bold("VALUE")+"\t"+cs.Bold("SOURCE"))
	for _, e := range l.Entries() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Key, formatValue(e.Value), cs.Gray(e.Source))
	}
	return tw.Flush()
}

func formatValue(v any) string {
	switch v := v.(type) {
	case string:
		if v == "" {
			return `""`
		}
		return v
	case config.Process:
		parts := []string{v.Name + ": " + v.Command}
		if v.Dir != "" {
			parts = append(parts, "dir="+v.Dir)
		}
		if v.Port != 0 {
			parts = append(parts, fmt.Sprintf("port=%d", v.Port))
		}
		if v.Health != "" {
			parts = append(parts, "health="+v.Health)
		}
		if len(v.Watch) > 0 {
			parts = append(parts, "watch="+strings.Join(v.Watch, ","))
		}
		if len(v.Env) > 0 {
			parts = append(parts, "env="+formatMap(v.Env))
		}
		parts = append(parts, "restart="+v.Restart)
		if v.SelfWatching {
			parts = append(parts, "self_watching")
		}
		return strings.Join(parts, " ")
	case map[string]string:
		return formatMap(v)
	default:
		return fmt.Sprint(v)
	}
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}
