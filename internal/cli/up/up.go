// Package up implements `pomdev up`: it supervises the app's processes
// from pomdev.yaml, restarts them when watched files change, opens the
// tunnel (to pom.run, a relay, or a relay embedded in the process), prints
// the public URL, and checks /mcp locally and through the tunnel after
// every start, on a live dashboard (internal/tui) or as plain lines.
package up

import (
	"context"
	"errors"
	"fmt"
	"github.com/pomdev/pomdev/internal/toolrule"
	"log/slog"
	"strings"

	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/devloop"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/pomdev/pomdev/internal/relay"
	"github.com/pomdev/pomdev/internal/watch"
	"github.com/spf13/cobra"
)

// Options are the inputs of Run.
type Options struct {
	IO        *iostreams.IOStreams
	Log       *slog.Logger
	Ctx       context.Context
	Config    *config.Loaded
	ConfigDir string
	NoTunnel  bool
	// NoPreview leaves out the local preview page (--no-preview).
	NoPreview bool
	// HTTPAuth is the embedded relay's --http-auth (none or owner).
	HTTPAuth string
	JSON     bool
	// Inline runs the processes as their inline settings say
	// (self-contained widgets).
	Inline bool
	// WriteConfig saves the processes assumed from package.json.
	WriteConfig bool
	// TUI shows the dashboard (a terminal, without --no-tui or JSON logs).
	TUI bool
	// OpenBrowser opens sign-in links and the URL (o); nil without a browser.
	OpenBrowser func(string) error
	// NewWatcher starts the file watcher (watch.New; tests make it fail).
	NewWatcher func(root string, o watch.Options) (*watch.Watcher, error)
}

// NewCmdUp returns the up command.
func NewCmdUp(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{}
	var noTUI bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the app's processes, watch files, open the tunnel and check /mcp through it",
		Long: `Run the processes in pomdev.yaml, restart them when their watched files change
(or when they crash, with backoff), open the tunnel to the relay and print
"Remote URL: <url>" and the MCP endpoint to paste into ChatGPT or Claude, then
check /mcp locally and through the tunnel after every start. Ctrl-C stops
everything (exit 130); so do closing the terminal, SIGTERM and a reader leaving
a pipe, and q on the dashboard quits on purpose (exit 0).

--deny-tools and --allow-tools (or tunnel.tools in pomdev.yaml) make the relay
refuse calls of those tools and hide them from tools/list, on top of its own
policy; they need a pomdev relay (--relay local or your own), not pom.run.

--relay local runs a relay inside pomdev on loopback: no account, no internet;
its URL (http://127.0.0.1:<port>) works from curl, Node and Go.

--inline runs each process with its "inline" settings from pomdev.yaml (in an
app from pomdev init: the widgets' inline build in watch mode and INLINE=1 for
the server), so widgets are self-contained: hosts such as Claude.ai cannot load
widget assets from localhost.

On a terminal it shows a live dashboard (processes, tunnel, active
connections, check, client requests, logs; q quits, r restarts the server, i
re-runs the check, c copies the URL, o opens it, p opens the preview, l filters
logs, arrows and PgUp/PgDn scroll them and End follows again, ? help). Without a
terminal, or with --no-tui, it prints one event per line (JSON with --log-format
json).

It also serves the preview of pomdev preview for the app's server: a local page
that renders the widgets as a host would and renders them again when the server
restarts ("Preview: <url>"; --no-preview leaves it out).`,
		Example: `  pomdev up --relay local
  pomdev up                     # through pom.run
  pomdev up --inline            # self-contained widgets (for Claude.ai)
  pomdev up --no-tunnel`,
		Args: factory.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			dir, err := f.ConfigDir()
			if err != nil {
				return err
			}
			opts.IO, opts.Log, opts.Ctx, opts.Config, opts.ConfigDir = f.IOStreams, f.Logger(), cmd.Context(), cfg, dir
			opts.JSON = cfg.Log.Format == "json"
			opts.TUI = !noTUI && !opts.JSON && f.IOStreams.IsStdoutTTY() && f.IOStreams.IsStdinTTY()
			opts.OpenBrowser = f.Browser()
			if opts.HTTPAuth != relay.HTTPAuthNone && opts.HTTPAuth != relay.HTTPAuthOwner {
				return exitcode.Usagef("--http-auth %q: want none or owner", opts.HTTPAuth)
			}
			if cmd.Flags().Changed("http-auth") && cfg.Tunnel.Relay != "local" {
				return exitcode.Usagef("--http-auth applies to --relay local; a remote relay decides how it authorizes requests")
			}
			if err := factory.ToolFlags(cmd, &cfg.Config.Tunnel.Tools); err != nil {
				return err
			}
			if err := factory.PublicPathFlag(cmd, &cfg.Config.Tunnel.PublicPaths); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	fl := cmd.Flags()
	factory.AddToolFlags(fl)
	fl.String("relay", "pom.run", "relay: pom.run, [user@]host[:port], or local (embedded)")
	fl.BoolVar(&opts.NoTunnel, "no-tunnel", false, "run and watch the processes without a tunnel")
	fl.BoolVar(&opts.NoPreview, "no-preview", false, "do not serve the local preview page (pomdev preview) of the app's widgets")
	fl.BoolVar(&opts.WriteConfig, "write-config", false, "save the processes assumed from package.json as pomdev.yaml and exit")
	fl.BoolVar(&opts.Inline, "inline", false, "serve self-contained widgets: run each process with its inline settings (inline build, INLINE=1)")
	fl.StringVar(&opts.HTTPAuth, "http-auth", "none", "with --relay local: none, or owner to try the OAuth flow a public relay runs (the app's URL is then http://NAME.localhost:PORT)")
	fl.BoolVar(&noTUI, "no-tui", false, "plain lines instead of the dashboard (the default without a terminal)")
	factory.BindFlag(fl, "relay", "tunnel.relay")
	return cmd
}

// Run starts the session and returns when it has stopped: nil after q
// (quit on purpose), an interruption (exit 130) after Ctrl-C or a signal,
// or what failed.
func Run(opts *Options) error {
	cfg := opts.Config
	if opts.WriteConfig {
		path, err := devloop.WriteConfig(cfg)
		if err != nil {
			return factory.Exit(err)
		}
		fmt.Fprintf(opts.IO.Out, "wrote %s\n", path)
		return nil
	}
	prep, err := devloop.Prepare(cfg, opts.Inline)
	if err != nil {
		return factory.Exit(err)
	}
	opts.Config = prep.App
	ctx, stop := context.WithCancelCause(opts.Ctx)
	defer stop(nil)
	var out output = &lines{w: opts.IO.Out, json: opts.JSON}
	s, err := devloop.New(devloop.Config{App: prep.App, ConfigDir: opts.ConfigDir, NoTunnel: opts.NoTunnel, NoPreview: opts.NoPreview,
		HTTPAuth: opts.HTTPAuth, Logger: opts.Log, OpenBrowser: opts.OpenBrowser, NewWatcher: opts.NewWatcher,
		OnEvent: func(e devloop.Event) { out.event(e) }})
	if err != nil {
		return factory.Exit(err)
	}
	if opts.TUI {
		out = startDashboard(opts, prep.App.Dir, s, stop)
	}
	for _, e := range prep.Events {
		out.event(e)
	}
	err = s.Run(ctx)
	out.close()
	if err != nil {
		return factory.Exit(err)
	}
	var q quitReason
	if errors.As(context.Cause(ctx), &q) {
		if q.interrupted {
			return context.Canceled // Ctrl-C in the dashboard: interrupted (130), as SIGINT
		}
		return nil // q: quit on purpose (0)
	}
	return opts.Ctx.Err()
}

// toolsLabel is the tunnel's own tool rules for the dashboard ("" none),
// written as the relay shows them.
func toolsLabel(t config.ToolRules) string {
	rules, err := toolrule.ParseTunnel(strings.Join(t.Allow, ","), strings.Join(t.Deny, ","))
	if err != nil || rules.Empty() {
		return ""
	}
	return rules.String()
}
