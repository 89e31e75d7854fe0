// Package relaycmd implements `pomdev relay` (run the self-hostable relay)
// and `pomdev relay approve` (approve a pending sign-in on a running one).
package relaycmd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	ctl "github.com/pomdev/pomdev/internal/relay/control"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/pomdev/pomdev/internal/relay"
	"github.com/pomdev/pomdev/internal/relay/oidcrp"
	"github.com/pomdev/pomdev/internal/relay/policy"
	relaystore "github.com/pomdev/pomdev/internal/relay/store"
	"github.com/spf13/cobra"
)

// Options are the inputs of Run.
type Options struct {
	IO     *iostreams.IOStreams
	Log    *slog.Logger
	Relay  config.Relay
	Ctx    context.Context
	Listen func(network, addr string) (net.Listener, error)
	// Ready, when set, is called with the relay once it serves (tests).
	Ready func(*relay.Relay)
}

// NewCmdRelay returns the relay command.
func NewCmdRelay(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Run a self-hostable, pom.run-compatible tunnel relay",
		Long: `Run a tunnel relay: an SSH server that accepts reverse forwards and an HTTP(S)
front that routes <route>.<domain> to them. It speaks pom.run's protocol, so the
stock OpenSSH client works with it as with pom.run:

  ssh -R 0 -p 2222 localhost                      dynamic: a stable URL per key
  ssh -R myapp:80:localhost:3000 -p 2222 localhost static: http://myapp.localhost:8088
  ssh -o SetEnv=POMDEV_TARGET=localhost:3000 -R 0 -p 2222 localhost

With a PTY the client sees a status screen (q quits); with -T plain lines, the
first being "Remote: <url>"; "ssh -T ... pomdev-events" streams JSON lines.

Authentication (--auth): open accepts any key (loopback only unless
--allow-open-auth); keys checks an authorized_keys file (reloaded on change);
signin sends unknown keys a sign-in link, approved in the browser with the admin
token or with "pomdev relay approve CODE".

Public requests (--http-auth): owner, the default off loopback, makes the front an
OAuth authorization server: an app (ChatGPT, Claude, an MCP client) reaches a
tunnel only once the tunnel's owner approves it (a on the ssh status screen,
"ssh RELAY pomdev-access approve CODE", or pomdev access approve CODE); the
admin decides with "pomdev relay access", lists and revokes with "pomdev relay
grants" and reads the trail with "pomdev relay audit". none lets every request
through (refused off loopback without --allow-open-http).

Identity (--oidc-issuer URL --oidc-client-id ID [--oidc-client-secret-file F],
with --auth signin): the sign-in link offers "Sign in with <provider>"; the key
is then bound to the person (sub, and email when the provider verified it), whom
the policy can name (email:, domain:, sub:). With --http-auth oidc an app's
authorize page signs its user in at the same provider instead of waiting for the
owner's approval, and access is granted only to the tunnel's owner (the person
its key signed in as) or to the route rule's callers in the policy;
--owner-approval then also asks the owner (who sees who signed in). Register
<front>/.pomdev/oidc/callback as the client's redirect URI. The admin token
still approves keys by hand.

Policy (--policy FILE, YAML, reloaded when it changes; a file that does not
validate is reported with file:line and the last good policy stays):

  tunnels:
    allow: ["key:SHA256:7m3…"]          # who may open tunnels
  routes:                               # the first rule whose name matches
    - name: "demo-*"
      holders: ["key:SHA256:7m3…"]      # who may hold these route names
      callers: ["owner", "domain:example.com"]  # --http-auth oidc: who gets access
      tools: {deny: ["delete_*"]}       # names, or prefixes ending in *
  tools:                                # every route
    allow: ["get_*", "search"]

A denied tools/call never reaches the app (the caller gets a JSON-RPC error
naming the rule) and tools/list answers leave denied tools out. A tunnel adds
its own rules with -o SetEnv="POMDEV_TOOLS_DENY=delete_*" (or pomdev up
--deny-tools). Every flag is also a relay.* key in pomdev.yaml (see pomdev help
config).`,
		Example: `  pomdev relay
  pomdev relay --http-auth owner                  # try the OAuth flow on loopback
  pomdev relay --auth signin --domain tunnels.example.com --http-addr :443 \
    --ssh-addr :22 --tls-cert wildcard.pem --tls-key wildcard.key
  pomdev relay --public-url-scheme https --public-port 443   # behind a TLS proxy
  pomdev relay --auth signin --http-auth oidc --oidc-issuer https://accounts.example.com \
    --oidc-client-id pomdev --oidc-client-secret-file secret.txt --policy policy.yaml`,
		Args: factory.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			opts.IO, opts.Log, opts.Relay, opts.Ctx = f.IOStreams, f.Logger(), cfg.Relay, cmd.Context()
			if opts.Relay.StateDir == "" {
				dir, err := f.ConfigDir()
				if err != nil {
					return err
				}
				opts.Relay.StateDir = filepath.Join(dir, "relay")
			}
			opts.Listen = net.Listen
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	fl := cmd.Flags()
	bind := func(name, key string) { factory.BindFlag(fl, name, key) }
	fl.String("ssh-addr", "127.0.0.1:2222", "SSH listen address")
	fl.String("http-addr", "127.0.0.1:8088", "HTTP(S) listen address (8088, not 8080, where the app's server usually runs)")
	fl.String("domain", "localhost", "domain of tunnel URLs: <route>.<domain>")
	fl.String("public-url-scheme", "http", "scheme of printed URLs: http or https")
	fl.Int("public-port", 0, "port of printed URLs when a proxy changes it (0: the HTTP listener's)")
	fl.String("state-dir", "", "state directory (default: <user config dir>/pomdev/relay)")
	fl.String("store", "", "PostgreSQL database for route names, sign-ins and OAuth state (postgres://user@host/db; password in PGPASSWORD or ~/.pgpass); default: relay.db in the state directory")
	fl.String("fleet-addr", "", "with --store: where this relay takes requests other relays of the store pass it (mutual TLS; default: the --http-addr host, a free port, announced in the store)")
	fl.String("auth", "open", "client authentication: open, keys or signin")
	fl.String("authorized-keys", "", "OpenSSH authorized_keys file for --auth keys")
	fl.Bool("allow-open-auth", false, "allow --auth open on a non-loopback address")
	fl.String("default-target", "localhost:8080", "host:port dynamic forwards connect to on the client side")
	fl.String("tls-cert", "", "TLS certificate (a wildcard for the domain) to serve HTTPS")
	fl.String("tls-key", "", "TLS private key")
	fl.Duration("session-ttl", 24*time.Hour, "how long a sign-in lasts per key")
	fl.Duration("keepalive-interval", 15*time.Second, "how often clients are pinged (3 misses drop them)")
	fl.Int("max-tunnels-per-key", 8, "tunnels one key may hold at once")
	fl.Duration("route-name-ttl", 90*24*time.Hour, "how long a route name stays reserved for its key after its last use")
	fl.String("http-auth", "", "public requests: owner (OAuth, approved by the tunnel's owner), oidc (OAuth for the people the policy allows, signed in at --oidc-issuer) or none (default: owner, none on loopback)")
	fl.Bool("allow-open-http", false, "allow --http-auth none on a non-loopback address")
	fl.Bool("allow-app-auth", false, "let tunnels ask (POMDEV_HTTP_AUTH=app) that their app authorize requests itself")
	fl.Duration("grant-ttl", 30*24*time.Hour, "how long an owner's approval of an app is remembered")
	fl.String("oidc-issuer", "", "OpenID Connect provider (issuer URL): sign-in links (--auth signin) lead through it and bind keys to people")
	fl.String("oidc-client-id", "", "the relay's client ID at the provider (its redirect URI: <front>/.pomdev/oidc/callback)")
	fl.String("oidc-client-secret-file", "", "file holding the client secret (empty for a public client)")
	fl.Bool("owner-approval", false, "with --http-auth oidc, also ask the tunnel's owner to approve each app once its user signed in")
	fl.String("trusted-proxies", "", "comma-separated IPs or CIDRs of proxies in front of the HTTP front (a TLS terminator): their X-Forwarded-For names the client that limits count")
	fl.String("policy", "", "policy file (YAML): who may open tunnels, which route names they may hold, which MCP tools may be called; reloaded on change")
	for _, b := range [][2]string{
		{"ssh-addr", "relay.ssh_addr"}, {"http-addr", "relay.http_addr"}, {"domain", "relay.domain"},
		{"public-url-scheme", "relay.public_url_scheme"}, {"public-port", "relay.public_port"},
		{"state-dir", "relay.state_dir"}, {"store", "relay.store"}, {"fleet-addr", "relay.fleet_addr"}, {"auth", "relay.auth"}, {"authorized-keys", "relay.authorized_keys"},
		{"allow-open-auth", "relay.allow_open_auth"}, {"default-target", "relay.default_target"},
		{"tls-cert", "relay.tls_cert"}, {"tls-key", "relay.tls_key"}, {"session-ttl", "relay.session_ttl"},
		{"keepalive-interval", "relay.keepalive_interval"}, {"max-tunnels-per-key", "relay.max_tunnels_per_key"},
		{"route-name-ttl", "relay.route_name_ttl"}, {"http-auth", "relay.http_auth"},
		{"allow-open-http", "relay.allow_open_http"}, {"allow-app-auth", "relay.allow_app_auth"},
		{"grant-ttl", "relay.grant_ttl"}, {"policy", "relay.policy"},
		{"oidc-issuer", "relay.oidc_issuer"}, {"oidc-client-id", "relay.oidc_client_id"},
		{"oidc-client-secret-file", "relay.oidc_client_secret_file"}, {"owner-approval", "relay.owner_approval"},
		{"trusted-proxies", "relay.trusted_proxies"},
	} {
		bind(b[0], b[1])
	}
	cmd.AddCommand(NewCmdApprove(f, nil), NewCmdAccess(f), NewCmdGrants(f), NewCmdAudit(f), NewCmdRoutes(f), NewCmdStore(f, nil), NewCmdFleet(f))
	return cmd
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// listen binds addr, explaining a port in use.
func listen(fn func(string, string) (net.Listener, error), what, addr string) (net.Listener, error) {
	ln, err := fn("tcp", addr)
	if err == nil {
		return ln, nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, exitcode.New(exitcode.Failure, fmt.Errorf("%s address %s is already in use", what, addr),
			"stop what holds it (ss -ltnp | grep "+portOf(addr)+") or choose another with --"+strings.ToLower(what)+"-addr")
	}
	if errors.Is(err, syscall.EACCES) {
		return nil, exitcode.New(exitcode.Failure, fmt.Errorf("%s address %s: permission denied", what, addr),
			"ports below 1024 need privileges; use a higher port or grant CAP_NET_BIND_SERVICE")
	}
	return nil, fmt.Errorf("%s address %s: %w", what, addr, err)
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return ":" + p
}

// oidcConfig reads the identity provider's settings and secret file.
func oidcConfig(rc config.Relay) (oidcrp.Config, error) {
	// The settings agree (relayrule, checked with the configuration).
	if rc.OIDCIssuer == "" {
		return oidcrp.Config{}, nil
	}
	c := oidcrp.Config{Issuer: rc.OIDCIssuer, ClientID: rc.OIDCClientID}
	if rc.OIDCClientSecretFile != "" {
		b, err := os.ReadFile(rc.OIDCClientSecretFile)
		if err != nil {
			return oidcrp.Config{}, exitcode.New(exitcode.Usage, fmt.Errorf("--oidc-client-secret-file: %w", err), "give the file that holds the client secret")
		}
		c.ClientSecret = strings.TrimSpace(string(b))
	}
	return c, nil
}

// Run starts the relay and serves until the context ends.
func Run(opts *Options) error {
	rc := opts.Relay
	if rc.Auth == relay.AuthOpen && !rc.AllowOpenAuth && (!isLoopback(rc.SSHAddr) || !isLoopback(rc.HTTPAddr)) {
		return exitcode.Usagef("--auth open on a non-loopback address lets anyone tunnel through this relay; use --auth keys or --auth signin, or pass --allow-open-auth if that is what you want")
	}
	if rc.HTTPAuth == relay.HTTPAuthNone && !rc.AllowOpenHTTP && !isLoopback(rc.HTTPAddr) {
		return exitcode.Usagef("--http-auth none on a non-loopback address lets anyone who learns a tunnel's URL call its tools; keep the default (owner) or pass --allow-open-http if that is what you want")
	}
	stateDir := rc.StateDir
	if stateDir == "" {
		return exitcode.Usagef("no state directory; pass --state-dir")
	}
	var tlsConfig *tls.Config
	if rc.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(rc.TLSCert, rc.TLSKey)
		if err != nil {
			return exitcode.New(exitcode.Usage, fmt.Errorf("TLS certificate %s / key %s: %w", rc.TLSCert, rc.TLSKey, err), "give a PEM certificate (chain) and its private key")
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	oidcCfg, err := oidcConfig(rc)
	if err != nil {
		return err
	}
	sshLn, err := listen(opts.Listen, "SSH", rc.SSHAddr)
	if err != nil {
		return err
	}
	httpLn, err := listen(opts.Listen, "HTTP", rc.HTTPAddr)
	if err != nil {
		sshLn.Close()
		return err
	}
	scheme := rc.PublicURLScheme
	if tlsConfig != nil {
		scheme = "https"
	}
	proxies, _ := config.ParseTrustedProxies(rc.TrustedProxies) // validated with the configuration
	r, info, err := relay.New(relay.Config{
		SSHListener: sshLn, HTTPListener: httpLn, Domain: rc.Domain, Scheme: scheme,
		PublicPort: rc.PublicPort, StateDir: stateDir, Store: rc.Store, FleetAddr: rc.FleetAddr, Auth: rc.Auth, AuthorizedKeys: rc.AuthorizedKeys,
		DefaultTarget: rc.DefaultTarget, TLS: tlsConfig, SessionTTL: rc.SessionTTL,
		KeepaliveInterval: rc.KeepaliveInterval, MaxTunnelsPerKey: rc.MaxTunnelsPerKey, RouteNameTTL: rc.RouteNameTTL, Logger: opts.Log,
		HTTPAuth: rc.HTTPAuth, AllowAppAuth: rc.AllowAppAuth, GrantTTL: rc.GrantTTL,
		PolicyFile: rc.Policy, OIDC: oidcCfg, OwnerApproval: rc.OwnerApproval, TrustedProxies: proxies,
	})
	if err != nil {
		sshLn.Close()
		httpLn.Close()
		var perr *policy.Error
		if errors.As(err, &perr) {
			return exitcode.New(exitcode.Usage, err, "fix the policy file (pomdev relay --help shows its shape)")
		}
		return err
	}
	printBanner(opts.IO.Out, opts.IO.ColorScheme(), r, info, rc, stateDir, sshLn.Addr().String())
	if opts.Ready != nil {
		opts.Ready(r)
	}
	err = r.Serve(opts.Ctx)
	// Every way the relay stops says why: a signal, or an error below.
	if opts.Log == nil {
		return err
	}
	if err != nil {
		opts.Log.Error("relay stopped", "err", err)
	} else {
		opts.Log.Info("relay stopped", "reason", stopReason(opts.Ctx))
	}
	return err
}

// stopReason is why ctx ended ("received SIGTERM"), or "stopped" when it
// did not say.
func stopReason(ctx context.Context) string {
	if c := context.Cause(ctx); c != nil && c != context.Canceled {
		return c.Error()
	}
	return "stopped"
}

func printBanner(w io.Writer, cs *iostreams.ColorScheme, r *relay.Relay, info relay.Info, rc config.Relay, stateDir, sshAddr string) {
	keyNote := ""
	if info.HostKeyCreated {
		keyNote = " (new)"
	}
	host, port, _ := net.SplitHostPort(sshAddr)
	if ip := net.ParseIP(host); ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		host = rc.Domain
	}
	connect := "ssh -R 0 " + host
	if port != "22" {
		connect = "ssh -R 0 -p " + port + " " + host
	}
	fmt.Fprintln(w, cs.Bold("pomdev relay"))
	fmt.Fprintf(w, "  SSH        %s\n", sshAddr)
	fmt.Fprintf(w, "  Host key   %s%s\n", info.HostKeyFingerprint, keyNote)
	fmt.Fprintf(w, "  Front      %s\n", cs.Cyan(r.BaseURL()))
	fmt.Fprintf(w, "  Auth       %s\n", rc.Auth)
	if rc.HTTPAuth == relay.HTTPAuthOIDC {
		fmt.Fprintf(w, "  HTTP auth  oidc (OAuth; apps get access for the people signed in at the identity provider whom the policy allows: by default each tunnel's owner)\n")
	} else if r.Access() != nil {
		fmt.Fprintf(w, "  HTTP auth  owner (OAuth; tunnel owners approve apps: a on the status screen, or ssh … %s approve CODE)\n", relay.AccessCommand)
	} else {
		fmt.Fprintf(w, "  HTTP auth  none (anyone with a tunnel's URL reaches it)\n")
	}
	if rc.OIDCIssuer != "" {
		fmt.Fprintf(w, "  Identity   %s (sign-in links lead through it; client %s)\n", rc.OIDCIssuer, rc.OIDCClientID)
	}
	if p, _ := r.Policy(); p != nil {
		fmt.Fprintf(w, "  Policy     %s (%d route rules; reloaded on change)\n", p.File, len(p.Routes))
	}
	fmt.Fprintf(w, "  State      %s\n", stateDir)
	if rc.Store != "" {
		fmt.Fprintf(w, "  Store      %s (PostgreSQL; schema version %d)\n", relaystore.Redact(rc.Store), relaystore.Version)
		if id, addr := r.FleetNode(); id != "" {
			fmt.Fprintf(w, "  Fleet      node %s, internal address %s (pomdev relay fleet status)\n", id, addr)
		}
	}
	if info.AdminToken != "" {
		if info.AdminTokenCreated {
			fmt.Fprintf(w, "  Admin      %s (new; also in %s)\n", info.AdminToken, filepath.Join(stateDir, "admin_token"))
		} else {
			fmt.Fprintf(w, "  Admin      token in %s\n", filepath.Join(stateDir, "admin_token"))
		}
	}
	fmt.Fprintf(w, "  Connect    %s\n", cs.Bold(connect))
}

// ApproveOptions are the inputs of ApproveRun.
type ApproveOptions struct {
	IO       *iostreams.IOStreams
	Code     string
	Deny     bool
	StateDir string
}

// NewCmdApprove returns `pomdev relay approve`.
func NewCmdApprove(f *factory.Factory, runF func(*ApproveOptions) error) *cobra.Command {
	opts := &ApproveOptions{}
	cmd := &cobra.Command{
		Use:   "approve CODE",
		Short: "Approve (or --deny) a pending sign-in on a running relay",
		Long: `Approve a pending sign-in on the relay running with the same state directory.
The code is the user_code of the sign-in link the client was shown. It talks to
the relay over the control socket in the state directory, so it needs access to
that directory (same user).`,
		Example: `  pomdev relay approve KQ4M-7TXD --state-dir /var/lib/pomdev-relay`,
		Args:    factory.ExactArgs(1, "the sign-in code, for example KQ4M-7TXD"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IO, opts.Code = f.IOStreams, args[0]
			if err := resolveStateDir(f, cmd, &opts.StateDir); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return ApproveRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.StateDir, "state-dir", "", "the running relay's state directory")
	cmd.Flags().BoolVar(&opts.Deny, "deny", false, "deny the sign-in instead")
	return cmd
}

// ApproveRun asks the relay to approve or deny the code.
func ApproveRun(opts *ApproveOptions) error {
	fp, err := ctl.NewClient(opts.StateDir).Approve(context.Background(), opts.Code, opts.Deny)
	switch {
	case errors.Is(err, ctl.ErrUnreachable):
		return exitcode.New(exitcode.Unreachable, err,
			"start it with --auth signin and the same --state-dir, or pass the state dir it uses")
	case errors.Is(err, ctl.ErrNoSignin):
		return exitcode.New(exitcode.Failure, err, "pomdev relay approve decides SSH sign-ins of a relay started with --auth signin")
	case err != nil:
		return err
	}
	verb := "approved"
	if opts.Deny {
		verb = "denied"
	}
	fmt.Fprintf(opts.IO.Out, "Sign-in %s %s for key %s\n", strings.ToUpper(opts.Code), verb, fp)
	return nil
}
