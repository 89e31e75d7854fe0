// Package tunnelcmd implements `pomdev tunnel`: the embedded tunnel client
// alone, for a server the user already runs.
package tunnelcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/pomdev/pomdev/internal/event"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/pomdev/pomdev/internal/ownerctl"
	"github.com/pomdev/pomdev/internal/termsafe"
	"github.com/pomdev/pomdev/internal/tunnel"
	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/term"
)

// Options are the inputs of Run.
type Options struct {
	IO       *iostreams.IOStreams
	Log      *slog.Logger
	Ctx      context.Context
	Relay    string
	Target   string
	Port     int
	Identity string
	// Tools are the tunnel's own tool rules (tunnel.tools, --allow-tools, --deny-tools).
	Tools config.ToolRules
	// PublicPaths are served without a token by a pomdev relay
	// (tunnel.public_paths, --public-paths).
	PublicPaths []string
	NoBrowser   bool
	RemoteURL   string
	Bind        string
	JSON        bool
	// ConfigDir is pomdev's config dir (identity, known_hosts).
	ConfigDir string
	// OpenBrowser opens a URL; nil when there is no browser to open.
	OpenBrowser func(string) error
	// Getenv reads the environment (SSH_AUTH_SOCK).
	Getenv func(string) string
}

// NewCmdTunnel returns the tunnel command.
func NewCmdTunnel(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "tunnel",
		Short: "Expose a local server through pom.run or a pomdev relay (ssh -R 0, built in)",
		Long: `Open an SSH tunnel from a relay to a local server, as "ssh -R 0 pom.run" does, with
no ssh binary needed. It prints "Remote URL: <url>" when the tunnel is ready, then
one line per request, and reconnects on its own; Ctrl-C closes it.

pomdev signs in with its own ed25519 key (created on first use in the config
directory) so relays keep your sign-in and URL; --identity uses another key
(from ssh-agent when it holds it). Relays are trusted on first use and recorded
in pomdev's known_hosts; a changed host key is refused.

By default the forward is dynamic: the relay asks for a destination inside each
connection (SOCKS5) and only --target is allowed. --bind NAME asks for the static
route NAME instead (raw bytes, port 443 on the relay; NAME:80 for port 80).`,
		Example: `  pomdev tunnel --port 3000
  pomdev tunnel --relay localhost:2222 --target localhost:8080
  pomdev tunnel --relay me@relay.example.com --bind myapp`,
		Args: factory.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			opts.IO, opts.Log, opts.Ctx = f.IOStreams, f.Logger(), cmd.Context()
			opts.Relay, opts.Identity = cfg.Tunnel.Relay, cfg.Tunnel.Identity
			opts.Target, opts.RemoteURL = cfg.Tunnel.Target, cfg.Tunnel.RemoteURL
			opts.JSON = cfg.Log.Format == "json"
			opts.Tools = cfg.Tunnel.Tools
			if err := factory.ToolFlags(cmd, &opts.Tools); err != nil {
				return err
			}
			opts.PublicPaths = cfg.Tunnel.PublicPaths
			if err := factory.PublicPathFlag(cmd, &opts.PublicPaths); err != nil {
				return err
			}
			if cmd.Flags().Changed("port") {
				if opts.Port < 1 || opts.Port > 65535 {
					return exitcode.Usagef("--port %d is out of range (1-65535)", opts.Port)
				}
				if cmd.Flags().Changed("target") {
					return exitcode.Usagef("use --target or --port, not both")
				}
				opts.Target = net.JoinHostPort("localhost", strconv.Itoa(opts.Port))
			}
			if opts.ConfigDir, err = f.ConfigDir(); err != nil {
				return err
			}
			opts.OpenBrowser = f.Browser()
			opts.Getenv = os.Getenv
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	fl := cmd.Flags()
	fl.String("relay", "pom.run", "relay: pom.run, [user@]host[:port], or a pomdev relay")
	fl.String("target", "localhost:8080", "local host:port to expose")
	fl.IntVar(&opts.Port, "port", 0, "local port to expose (same as --target localhost:PORT)")
	fl.String("identity", "", "private key file (default: pomdev's own key)")
	fl.BoolVar(&opts.NoBrowser, "no-browser", false, "do not open sign-in links in a browser")
	fl.String("remote-url", "", "public URL to print, when the relay's cannot be read")
	fl.StringVar(&opts.Bind, "bind", "", "static route NAME[:PORT] (PORT 443 by default) instead of a dynamic forward")
	factory.AddToolFlags(fl)
	factory.BindFlag(fl, "relay", "tunnel.relay")
	factory.BindFlag(fl, "target", "tunnel.target")
	factory.BindFlag(fl, "identity", "tunnel.identity")
	factory.BindFlag(fl, "remote-url", "tunnel.remote_url")
	return cmd
}

// signers returns the keys to offer: --identity (from ssh-agent when it
// holds it, else the file, asking its passphrase on a terminal), or
// pomdev's own key, created on first use.
func signers(opts *Options) ([]ssh.Signer, error) {
	if opts.Identity == "" {
		s, path, created, err := tunnel.LoadOrCreateIdentity(opts.ConfigDir)
		if err != nil {
			return nil, err
		}
		if created {
			fmt.Fprintf(opts.IO.ErrOut, "Created pomdev's key %s (%s)\n", path, ssh.FingerprintSHA256(s.PublicKey()))
		}
		return []ssh.Signer{s}, nil
	}
	path := opts.Identity
	if strings.HasPrefix(path, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			path = filepath.Join(home, path[2:])
		}
	}
	if sock := opts.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if pubData, err := os.ReadFile(path + ".pub"); err == nil {
			if pub, _, _, _, err := ssh.ParseAuthorizedKey(pubData); err == nil {
				if conn, err := net.Dial("unix", sock); err == nil {
					ag := agent.NewClient(conn)
					if list, err := ag.Signers(); err == nil {
						for _, s := range list {
							if string(s.PublicKey().Marshal()) == string(pub.Marshal()) {
								return []ssh.Signer{s}, nil
							}
						}
					}
				}
			}
		}
	}
	var ask func() ([]byte, error)
	if opts.IO.IsStdinTTY() {
		ask = func() ([]byte, error) {
			fmt.Fprintf(opts.IO.ErrOut, "Passphrase for %s: ", path)
			defer fmt.Fprintln(opts.IO.ErrOut)
			return term.ReadPassword(int(os.Stdin.Fd()))
		}
	}
	s, err := tunnel.LoadIdentity(path, ask)
	if err != nil {
		return nil, exitcode.New(exitcode.Usage, err, "")
	}
	return []ssh.Signer{s}, nil
}

// Run opens the tunnel and prints what happens until the context ends.
func Run(opts *Options) error {
	ra, err := config.ParseRelay(opts.Relay)
	if err != nil {
		return exitcode.Usagef("--relay: %v", err)
	}
	if ra.Local {
		return exitcode.Usagef("--relay local runs a relay inside pomdev up; for pomdev tunnel start one with pomdev relay and use --relay localhost:2222")
	}
	keys, err := signers(opts)
	if err != nil {
		return err
	}
	static, staticPort := "", 0
	if opts.Bind != "" {
		static = opts.Bind
		staticPort = 443
		if h, p, err := net.SplitHostPort(opts.Bind); err == nil {
			static = h
			if staticPort, err = strconv.Atoi(p); err != nil || (staticPort != 80 && staticPort != 443) {
				return exitcode.Usagef("--bind %s: the port must be 80 or 443", opts.Bind)
			}
		}
	}
	out := &printer{w: opts.IO.Out, json: opts.JSON, cs: opts.IO.ColorScheme()}
	interactive := opts.IO.IsStdoutTTY() && opts.IO.IsStdinTTY()
	canOpen := !opts.NoBrowser && opts.OpenBrowser != nil
	cfg := tunnel.Config{
		Addr:       ra.Addr(),
		User:       ra.User,
		Signers:    keys,
		KnownHosts: filepath.Join(opts.ConfigDir, tunnel.KnownHostsFile),
		OnNewHostKey: func(host, fp string) {
			fmt.Fprintf(opts.IO.ErrOut, "Trusting relay %s on first use: %s (recorded in %s)\n", host, fp, filepath.Join(opts.ConfigDir, tunnel.KnownHostsFile))
		},
		Targets:     []string{opts.Target},
		Static:      static,
		StaticPort:  staticPort,
		RemoteURL:   opts.RemoteURL,
		ToolsAllow:  opts.Tools.Allow,
		ToolsDeny:   opts.Tools.Deny,
		PublicPaths: opts.PublicPaths,
		SignIn: func(name, link string) {
			if canOpen {
				if err := opts.OpenBrowser(link); err != nil {
					opts.Log.Debug("cannot open a browser", "err", err)
				}
			}
		},
		Logger:  opts.Log,
		OnEvent: out.event,
	}
	if interactive {
		cfg.Questions = func(name, instruction string, questions []string, echos []bool) ([]string, error) {
			return askQuestions(opts.IO, name, instruction, questions, echos)
		}
	}
	c, err := tunnel.New(cfg)
	if err != nil {
		return err
	}
	// `pomdev access approve CODE` from another terminal.
	if stop, err := ownerctl.Listen(opts.ConfigDir, func(ctx context.Context, verb, code string) (string, error) {
		if code == "" {
			return c.Access(ctx, verb)
		}
		return c.Access(ctx, verb, code)
	}); err == nil {
		defer stop()
	}
	err = c.Run(opts.Ctx)
	if err != nil {
		return err
	}
	return opts.Ctx.Err()
}

func askQuestions(ios *iostreams.IOStreams, name, instruction string, questions []string, echos []bool) ([]string, error) {
	if name != "" {
		fmt.Fprintln(ios.ErrOut, name)
	}
	if instruction != "" {
		fmt.Fprintln(ios.ErrOut, instruction)
	}
	answers := make([]string, len(questions))
	for i, q := range questions {
		fmt.Fprint(ios.ErrOut, q)
		if i < len(echos) && !echos[i] {
			b, err := term.ReadPassword(int(os.Stdin.Fd()))
			fmt.Fprintln(ios.ErrOut)
			if err != nil {
				return nil, err
			}
			answers[i] = string(b)
			continue
		}
		var line string
		if _, err := fmt.Fscanln(ios.In, &line); err != nil && err.Error() != "unexpected newline" {
			return nil, err
		}
		answers[i] = line
	}
	return answers, nil
}

// printer renders tunnel events: "Remote URL: <url>" and one line per
// request, or JSON lines.
type printer struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
	cs   *iostreams.ColorScheme
	url  string
}

func (p *printer) event(e event.Tunnel) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		if line, err := json.Marshal(e); err == nil {
			_, _ = p.w.Write(append(termsafe.JSON(line), '\n'))
		}
		return
	}
	// Messages, URLs and errors may come from the relay or from requests:
	// escaped before they reach the terminal.
	msg, url, errText := termsafe.String(e.Message), termsafe.String(e.URL), termsafe.String(e.Err)
	switch e.Kind {
	case event.TunnelSignIn:
		fmt.Fprintf(p.w, "%s\n\n    %s\n\nWaiting for the sign-in to be approved...\n", msg, p.cs.Bold(url))
	case event.TunnelReady:
		if e.URL != p.url {
			p.url = e.URL
			fmt.Fprintf(p.w, "Remote URL: %s\n", url)
		}
	case event.TunnelRequest:
		fmt.Fprintln(p.w, e.Request.Line())
	case event.TunnelRefused, event.TunnelLog, event.TunnelHolding:
		fmt.Fprintln(p.w, p.cs.Yellow(msg))
	case event.TunnelDisconnected:
		fmt.Fprintf(p.w, "%s (%s); %s\n", p.cs.Yellow("disconnected"), errText, msg)
	case event.TunnelAccess:
		a := e.Access
		if a.State == "pending" {
			fmt.Fprintf(p.w, "%s %s (%s) asks for %s · code %s · approve: pomdev access approve %s\n", p.cs.Bold("Access:"),
				termsafe.String(a.App()), termsafe.String(a.RedirectHost), a.Route, p.cs.Bold(a.Code), a.Code)
		} else {
			fmt.Fprintf(p.w, "Access: %s %s for %s\n", termsafe.String(a.App()), a.State, a.Route)
		}
	case event.TunnelConnected:
		if p.url != "" {
			fmt.Fprintln(p.w, p.cs.Green("reconnected"))
		}
	}
}
