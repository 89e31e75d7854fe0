// Package up implements `pomdev up`: it supervises the app's processes
// from pomdev.yaml, restarts them when watched files change, opens the
// tunnel (to pom.run, a relay, or a relay embedded in the process), prints
// the public URL, and checks /mcp locally and through the tunnel after
// every start, on a live dashboard (internal/tui) or as plain lines.
package up

import (
	tea "charm.land/bubbletea/v2"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/pomdev/pomdev/internal/backoff"
	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/pomdev/pomdev/internal/mcpcheck"
	"github.com/pomdev/pomdev/internal/ownerctl"
	"github.com/pomdev/pomdev/internal/relay"
	"github.com/pomdev/pomdev/internal/relay/policy"
	"github.com/pomdev/pomdev/internal/supervise"
	"github.com/pomdev/pomdev/internal/termsafe"
	"github.com/pomdev/pomdev/internal/tui"
	"github.com/pomdev/pomdev/internal/tunnel"
	"github.com/pomdev/pomdev/internal/watch"
	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
)

// Options are the inputs of Run.
type Options struct {
	IO        *iostreams.IOStreams
	Log       *slog.Logger
	Ctx       context.Context
	Config    *config.Loaded
	ConfigDir string
	NoTunnel  bool
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
re-runs the check, c copies the URL, o opens it, l filters logs, arrows and
PgUp/PgDn scroll them and End follows again, ? help). Without a terminal, or with
--no-tui, it prints one event per line (JSON with --log-format json).`,
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
	fl.BoolVar(&opts.WriteConfig, "write-config", false, "save the processes assumed from package.json as pomdev.yaml and exit")
	fl.BoolVar(&opts.Inline, "inline", false, "serve self-contained widgets: run each process with its inline settings (inline build, INLINE=1)")
	fl.StringVar(&opts.HTTPAuth, "http-auth", "none", "with --relay local: none, or owner to try the OAuth flow a public relay runs (the app's URL is then http://NAME.localhost:PORT)")
	fl.BoolVar(&noTUI, "no-tui", false, "plain lines instead of the dashboard (the default without a terminal)")
	factory.BindFlag(fl, "relay", "tunnel.relay")
	return cmd
}

// printer writes one line per event (or JSON lines), or feeds the
// dashboard when there is one.
type printer struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
	tui  *tea.Program
	// Until the dashboard runs, its lines wait here (a Send before Run
	// blocks for good); printed plainly if it never starts.
	wantTUI bool
	pending []tui.Line
}

// startTUI runs the dashboard on prog and hands it the lines so far;
// done is called when the program ends.
func (p *printer) startTUI(prog *tea.Program, wg *sync.WaitGroup, done func()) {
	p.mu.Lock()
	p.tui = prog
	pending := p.pending
	p.pending = nil
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = prog.Run()
		done()
	}()
	// Under the lock: later lines wait behind these.
	for _, l := range pending {
		prog.Send(l)
	}
	p.mu.Unlock()
}

// flushPending prints the lines of a dashboard that never started.
func (p *printer) flushPending() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.pending {
		fmt.Fprintln(p.w, l.Text)
	}
	p.pending = nil
}

// access shows an access request (or its decision) from the relay: a
// line, and on the dashboard the Access pane.
func (p *printer) access(a event.Access) {
	if a.State == "pending" {
		p.line("access", "access: %s (%s) asks for %s · code %s · approve: a in the dashboard, or pomdev access approve %s",
			a.App(), a.RedirectHost, a.Route, a.Code, a.Code)
	} else {
		p.line("access", "access: %s %s for %s (%s)", a.ClientName, a.State, a.Route, a.DecidedBy)
	}
	p.mu.Lock()
	prog := p.tui
	p.mu.Unlock()
	if prog != nil {
		prog.Send(a)
	}
}

func (p *printer) line(kind, format string, args ...any) {
	p.proc(kind, "", format, args...)
}

// proc is line for a process's own events and output.
func (p *printer) proc(kind, process, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	// Lines carry text from the network (requests, the relay, the MCP
	// server) and from processes that may log it: nothing in them may
	// control the terminal. Process output loses its colours too.
	if kind == "output" {
		msg = ansi.Strip(msg)
	}
	msg = termsafe.String(msg)
	if p.tui == nil && p.wantTUI {
		if len(p.pending) < 1000 {
			p.pending = append(p.pending, tui.Line{Kind: kind, Process: process, Text: msg})
		}
		return
	}
	if p.tui != nil {
		text := msg
		if kind == "output" {
			text = strings.TrimPrefix(msg, "["+process+"] ")
		}
		p.tui.Send(tui.Line{Kind: kind, Process: process, Text: text})
		return
	}
	if p.json {
		if line, err := json.Marshal(map[string]any{"time": time.Now(), "kind": kind, "message": msg}); err == nil {
			_, _ = p.w.Write(append(line, '\n'))
		}
		return
	}
	fmt.Fprintln(p.w, msg)
}

// Run starts everything and returns when the context ends.
func Run(opts *Options) error {
	cfg := opts.Config
	out := &printer{w: opts.IO.Out, json: opts.JSON, wantTUI: opts.TUI}
	defer out.flushPending()
	if len(cfg.Processes) == 0 {
		procs, assumed, err := discover(cfg.Dir)
		if err != nil {
			return exitcode.New(exitcode.Usage, err, "")
		}
		if len(procs) == 0 {
			_, errYAML := os.Stat(filepath.Join(cfg.Dir, "pomdev.yaml"))
			_, errPkg := os.Stat(filepath.Join(cfg.Dir, "package.json"))
			if errYAML != nil && errPkg != nil {
				return exitcode.Usagef("nothing to run in %s: no pomdev.yaml and no package.json (create an app with pomdev init, or describe your processes in a pomdev.yaml: pomdev help config)", cfg.Dir)
			}
			return exitcode.Usagef("no processes to run: pomdev.yaml has none and package.json has no dev:server/dev:widgets or dev script (see pomdev help config; pomdev init writes one)")
		}
		if opts.WriteConfig {
			path, err := writeConfig(cfg.Dir, procs)
			if err != nil {
				return exitcode.New(exitcode.Failure, err, "")
			}
			out.line("config", "wrote %s", path)
			return nil
		}
		out.line("assumed", "no pomdev.yaml: %s (pomdev up --write-config saves this)", assumed)
		copied := *cfg
		copied.Processes = procs
		cfg = &copied
		opts.Config = cfg
	} else if opts.WriteConfig {
		return exitcode.Usagef("%s already describes the processes; --write-config only writes a new one", cfg.ProjectFile)
	}
	if opts.Inline {
		copied := *cfg
		copied.Processes = make([]config.Process, len(cfg.Processes))
		changed := false
		for i, p := range cfg.Processes {
			copied.Processes[i] = p.ForInline()
			changed = changed || p.Inline.Command != "" || len(p.Inline.Env) > 0
		}
		if !changed {
			return exitcode.Usagef("--inline: no process has inline settings; add them to pomdev.yaml (see pomdev help config), for example inline: {env: {INLINE: \"1\"}} on the server")
		}
		cfg = &copied
		opts.Config = cfg
		out.line("inline", "serving self-contained widgets (inline settings of pomdev.yaml)")
	}
	if dir := missingNodeModules(cfg); dir != "" {
		out.line("hint", "%s has a package.json but no node_modules: run npm install there (pomdev init --no-install skips it)", dir)
	}
	for _, p := range cfg.Processes {
		if p.Port == 0 {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port)))
		if err != nil {
			holder := supervise.PortHolder(p.Port)
			if holder == "" {
				holder = "another process"
			}
			return exitcode.New(exitcode.Failure, fmt.Errorf("port %d of %s is already in use by %s", p.Port, p.Name, holder),
				"stop it, or change the port in pomdev.yaml: the process's port, its env PORT, its health URL and tunnel.target together")
		}
		ln.Close()
	}

	ctx, cancel := context.WithCancel(opts.Ctx)
	var wg sync.WaitGroup
	// Every return stops what was started, in this order: the context
	// (processes, watcher, tunnel, checks), the dashboard, then the wait.
	defer func() {
		cancel()
		if out.tui != nil {
			out.tui.Kill()
		}
		wg.Wait()
	}()
	if opts.TUI {
		// The dashboard runs from here on; its keys arrive as actions
		// once the processes exist.
		app := filepath.Base(cfg.Dir)
		dash := tui.New(app, cfg.Tunnel.Relay, tui.Actions{})
		dash.Tools = toolsLabel(cfg.Tunnel.Tools)
		prog := tea.NewProgram(dash, tea.WithOutput(opts.IO.Out), tea.WithInput(opts.IO.In),
			tea.WithoutSignalHandler(), tea.WithFPS(10)) // the screen changes at most a few times a second
		out.startTUI(prog, &wg, cancel)
	}

	states := &procStates{m: map[string]procState{}, unchecked: map[string]bool{}}
	for _, spec := range cfg.Processes {
		// Nothing tells when such a process is ready: it is running.
		states.unchecked[spec.Name] = spec.Port == 0 && spec.Health == ""
	}
	checkTarget := cfg.Tunnel.Target
	checks := make(chan string, 4) // causes
	var targetReady atomic.Bool    // the process serving the target is ready
	procs := map[string]*supervise.Process{}
	for _, spec := range cfg.Processes {
		name := spec.Name
		env := make([]string, 0, len(spec.Env))
		for k, v := range spec.Env {
			env = append(env, k+"="+v)
		}
		sort.Strings(env)
		dir := cfg.Dir
		if spec.Dir != "" {
			dir = filepath.Join(cfg.Dir, spec.Dir)
		}
		servesTarget := spec.Port != 0 && strings.HasSuffix(checkTarget, ":"+strconv.Itoa(spec.Port))
		p := supervise.New(supervise.Spec{Name: name, Command: spec.Command, Dir: dir, Env: env, Port: spec.Port,
			Health: spec.Health, ReadyTimeout: spec.ReadyTimeout, Restart: spec.Restart}, func(e supervise.Event) {
			states.set(name, e.Kind, e.PID)
			switch e.Kind {
			case supervise.Output:
				out.proc("output", name, "[%s] %s", name, e.Line)
			case supervise.Started:
				out.line("started", "%s started (pid %d)", name, e.PID)
				if servesTarget {
					targetReady.Store(false)
				}
			case supervise.Ready:
				out.line("ready", "%s ready (pid %d)", name, e.PID)
				if servesTarget {
					targetReady.Store(true)
					select {
					case checks <- name + " ready":
					default:
					}
				}
			case supervise.NotReady:
				out.line("not-ready", "%s is not ready: %v", name, e.Err)
			case supervise.Exited:
				if e.Output != "" {
					out.line("exited", "%s exited (code %d): %s", name, e.Code, e.Output)
				} else {
					out.line("exited", "%s exited (code %d)", name, e.Code)
				}
				if servesTarget {
					// The last check's verdict no longer holds.
					out.line("check", "check: %s down since %s; the last check is stale", name, time.Now().Format("15:04:05"))
				}
			case supervise.Restarting:
				if e.Wait > 0 {
					out.line("restarting", "%s %s; restarting in %s", name, e.Cause, e.Wait)
				} else {
					out.line("restarted", "%s restarted: %s", name, e.Cause)
				}
			case supervise.CrashLoop:
				out.line("crash-loop", "%s keeps crashing: %s", name, e.Cause)
				if missingModules(e.Cause) {
					out.line("hint", "%s cannot find its npm packages: run npm install in %s", name, cfg.Dir)
				}
			}
		})
		procs[name] = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Run(ctx); err != nil {
				out.line("error", "%s: %v", name, err)
			}
		}()
	}

	// Watch files: a change under a process's globs restarts it.
	var ignores []string
	watched := false
	for _, p := range cfg.Processes {
		ignores = append(ignores, p.Ignore...)
		watched = watched || (len(p.Watch) > 0 && !p.SelfWatching)
	}
	if watched {
		newWatcher := opts.NewWatcher
		if newWatcher == nil {
			newWatcher = watch.New
		}
		w, err := newWatcher(cfg.Dir, watch.Options{Ignore: ignores})
		if err != nil {
			return fmt.Errorf("watching %s: %w", cfg.Dir, err)
		}
		changes := make(chan watch.Change, 64)
		wg.Add(2)
		go func() { defer wg.Done(); _ = w.Run(ctx, changes) }()
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case c := <-changes:
					for _, spec := range cfg.Processes {
						if spec.SelfWatching {
							continue
						}
						for _, g := range spec.Watch {
							if watch.Match(g, c.Path) {
								procs[spec.Name].Restart(c.Path + " changed")
								break
							}
						}
					}
				}
			}
		}()
	}

	// The tunnel.
	var tc *tunnel.Client
	if !opts.NoTunnel {
		var err error
		tc, err = startTunnel(ctx, opts, out, &wg, checks, targetReady.Load)
		if err != nil {
			cancel()
			return err
		}
	}

	// Checks after every start of the server.
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last map[string]string
		for {
			select {
			case <-ctx.Done():
				return
			case cause := <-checks:
				last = runCheck(ctx, out, "http://"+checkTarget+"/mcp", tc, cause, last)
			}
		}
	}()

	var interrupted atomic.Bool
	if out.tui != nil {
		serverName := ""
		for _, spec := range cfg.Processes {
			if spec.Port != 0 && strings.HasSuffix(checkTarget, ":"+strconv.Itoa(spec.Port)) {
				serverName = spec.Name
			}
		}
		var connections func() (int64, int64)
		if tc != nil {
			connections = tc.Connections
		}
		var decide func(string, bool) (string, error)
		if tc != nil {
			decide = func(code string, allow bool) (string, error) {
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				verb := "approve"
				if !allow {
					verb = "deny"
				}
				return tc.Access(ctx, verb, code)
			}
		}
		out.tui.Send(tui.Actions{
			Decide:      decide,
			Connections: connections,
			Quit:        cancel,
			Interrupt:   func() { interrupted.Store(true); cancel() },
			Restart: func() {
				if p, ok := procs[serverName]; ok {
					p.Restart("r pressed")
				}
			},
			Check: func() {
				select {
				case checks <- "i pressed":
				default:
				}
			},
			OpenURL: func(u string) {
				if opts.OpenBrowser != nil {
					_ = opts.OpenBrowser(u)
				}
			},
			Processes: func() []tui.Proc {
				var rows []tui.Proc
				for _, spec := range cfg.Processes {
					st := states.get(spec.Name)
					p := procs[spec.Name]
					rows = append(rows, tui.Proc{Name: spec.Name, State: st.state, PID: p.PID(), Port: spec.Port, Restarts: p.Restarts(), Since: st.since})
				}
				return rows
			},
		})
	}

	<-ctx.Done()
	out.line("stopping", "stopping...")
	cancel()
	if out.tui != nil {
		out.tui.Quit()
	}
	wg.Wait()
	if interrupted.Load() {
		return context.Canceled // Ctrl-C in the dashboard: interrupted (130), as SIGINT
	}
	return opts.Ctx.Err() // nil after q: quit on purpose (0)
}

type procState struct {
	state string
	since time.Time
}

// procStates is the dashboard's view of each process.
type procStates struct {
	mu        sync.Mutex
	m         map[string]procState
	unchecked map[string]bool // no port or health to wait for (read-only)
}

func (s *procStates) set(name, kind string, pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[name]
	switch kind {
	case supervise.Started:
		st = procState{state: "starting", since: time.Now()}
		if s.unchecked[name] {
			st.state = "running"
		}
	case supervise.Ready:
		st.state = "ready"
	case supervise.NotReady:
		st.state = "not ready"
	case supervise.Exited:
		st.state = "exited"
	case supervise.Restarting:
		st.state = "restarting"
	case supervise.CrashLoop:
		st.state = "crash loop"
	case supervise.Stopped:
		st.state = "stopped"
	default:
		return
	}
	s.m[name] = st
}

func (s *procStates) get(name string) procState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[name]
	if st.state == "" {
		st.state = "starting"
	}
	return st
}

func startTunnel(ctx context.Context, opts *Options, out *printer, wg *sync.WaitGroup, checks chan<- string, targetReady func() bool) (*tunnel.Client, error) {
	cfg := opts.Config
	ra, err := config.ParseRelay(cfg.Tunnel.Relay)
	if err != nil {
		return nil, exitcode.Usagef("--relay: %v", err)
	}
	signer, _, created, err := tunnel.LoadOrCreateIdentity(opts.ConfigDir)
	if err != nil {
		return nil, err
	}
	if created {
		out.line("identity", "created pomdev's key (%s)", ssh.FingerprintSHA256(signer.PublicKey()))
	}
	addr, remoteURL, known := ra.Addr(), cfg.Tunnel.RemoteURL, filepath.Join(opts.ConfigDir, tunnel.KnownHostsFile)
	if ra.Local {
		sl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		hl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			sl.Close()
			return nil, err
		}
		relayLog := slog.New(slog.DiscardHandler) // its events are the tunnel's lines already
		if cfg.Log.Level == "debug" {
			relayLog = opts.Log.With("component", "local-relay")
		}
		r, _, err := relay.New(relay.Config{SSHListener: sl, HTTPListener: hl, StateDir: filepath.Join(opts.ConfigDir, "local-relay"),
			SingleRoute: true, Logger: relayLog, HTTPAuth: opts.HTTPAuth})
		if err != nil {
			return nil, err
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.Serve(ctx) }()
		addr = sl.Addr().String()
		remoteURL = "http://" + hl.Addr().String()
		if opts.HTTPAuth == relay.HTTPAuthOwner {
			// OAuth resources are the route's own URL, as on a public relay.
			remoteURL = ""
		}
		known = filepath.Join(opts.ConfigDir, "local-relay", "known_hosts") // its key is per state dir
		out.line("relay", "local relay on %s (SSH %s)", "http://"+hl.Addr().String(), addr)
	}
	var urlOnce sync.Once
	tc, err := tunnel.New(tunnel.Config{
		Addr: addr, User: ra.User, Signers: []ssh.Signer{signer}, KnownHosts: known,
		Targets: []string{cfg.Tunnel.Target}, RemoteURL: remoteURL, Logger: opts.Log,
		ToolsAllow: cfg.Tunnel.Tools.Allow, ToolsDeny: cfg.Tunnel.Tools.Deny,
		SignIn: func(name, link string) {
			// The link is printed by the sign-in event either way.
			if opts.OpenBrowser != nil {
				_ = opts.OpenBrowser(link)
			}
		},
		OnEvent: func(e event.Tunnel) {
			switch e.Kind {
			case event.TunnelSignIn:
				out.line("sign-in", "%s: %s (waiting for approval)", e.Message, e.URL)
			case event.TunnelReady:
				if out.tui != nil {
					out.line("url", "%s", e.URL)
				}
				out.line("ready", "Remote URL: %s", e.URL)
				if ra.Local {
					out.line("ready", "MCP endpoint: %s/mcp (this machine only: ChatGPT and Claude cannot reach it; without --relay, pom.run gives a public URL)", e.URL)
				} else {
					out.line("ready", "MCP endpoint: %s/mcp (paste it into ChatGPT or Claude)", e.URL)
				}
				// The check runs when the server is ready; if it already
				// was, check through the new tunnel now.
				urlOnce.Do(func() {
					if targetReady() {
						select {
						case checks <- "tunnel ready":
						default:
						}
					}
				})
			case event.TunnelRequest:
				line := e.Request.Line()
				if e.Request.RPCMethod == "server/discover" && e.Request.Status == 400 {
					// pomdev's check asks for the newest protocol first.
					line += " (protocol probe: the server speaks an earlier MCP version; not an error)"
				}
				out.line("request", "%s", line)
			case event.TunnelDisconnected:
				out.line("disconnected", "tunnel disconnected (%s); %s", e.Err, e.Message)
			case event.TunnelRefused, event.TunnelLog, event.TunnelHolding:
				out.line("tunnel", "%s", e.Message)
			case event.TunnelAccess:
				out.access(*e.Access)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	// `pomdev access approve CODE` from another terminal reaches the
	// relay through this tunnel's SSH connection.
	if stop, err := ownerctl.Listen(opts.ConfigDir, func(ctx context.Context, verb, code string) (string, error) {
		if code == "" {
			return tc.Access(ctx, verb)
		}
		return tc.Access(ctx, verb, code)
	}); err == nil {
		context.AfterFunc(ctx, stop)
	} else {
		out.line("tunnel", "pomdev access will not reach this tunnel: %v", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		// A relay never reached (pom.run down, no network) is retried with
		// backoff, its state in the header; a tunnel that was up
		// reconnects inside Run.
		delays := &backoff.Backoff{Min: time.Second, Max: 30 * time.Second}
		for {
			err := tc.Run(ctx)
			if err == nil || ctx.Err() != nil {
				return
			}
			if exitcode.Code(err) != exitcode.Unreachable {
				out.line("error", "tunnel: %v", err)
				return
			}
			wait := delays.Next()
			out.line("unreachable", "%s unreachable: %s · retrying in %s (offline: pomdev up --relay local; without a tunnel: --no-tunnel)",
				cfg.Tunnel.Relay, netReason(err), wait)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}()
	return tc, nil
}

// plural is "1 tool", "2 tools".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// netReason says in a few words why a relay could not be reached.
func netReason(err error) string {
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		return "DNS lookup failed (" + dns.Name + ")"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "no route to the network"
	}
	return err.Error()
}

// runCheck lists tools locally and through the tunnel and says what
// changed since the last check (tool name to schema signature; nil before
// the first).
func runCheck(ctx context.Context, out *printer, local string, tc *tunnel.Client, cause string, last map[string]string) map[string]string {
	rep, err := mcpcheck.Run(ctx, mcpcheck.Options{URL: local, Timeout: 15 * time.Second})
	if err != nil {
		out.line("check", "check (%s): local %s failed: %v", cause, local, err)
		return last
	}
	now := map[string]string{}
	var names []string
	for _, t := range rep.Tools {
		names = append(names, t.Name)
		now[t.Name] = t.Signature()
	}
	sort.Strings(names)
	var errs []mcpcheck.Finding
	for _, f := range rep.Findings {
		if f.Severity == mcpcheck.SeverityError {
			errs = append(errs, f)
		}
	}
	lint := "0 lint errors"
	switch {
	case len(errs) == 1:
		lint = fmt.Sprintf("1 lint error: %s %s: %s (pomdev inspect %s)", errs[0].Rule, errs[0].Subject, errs[0].Message, local)
	case len(errs) > 1:
		lint = fmt.Sprintf("%d lint errors, first %s %s: %s (pomdev inspect %s)", len(errs), errs[0].Rule, errs[0].Subject, errs[0].Message, local)
	}
	out.line("check", "check (%s): local OK, %s: %s; %s", cause, plural(len(names), "tool"), strings.Join(names, ", "), lint)
	if last != nil {
		added, removed, changed := diffTools(last, now)
		if len(added)+len(removed)+len(changed) > 0 {
			out.line("check", "tools changed: added [%s], removed [%s], changed schemas [%s]; hosts cache tool lists: refresh the connector",
				strings.Join(added, ", "), strings.Join(removed, ", "), strings.Join(changed, ", "))
		}
	}
	if tc != nil && tc.URL() != "" {
		trep, err := mcpcheck.Run(ctx, mcpcheck.Options{URL: tc.URL() + "/mcp", Timeout: 15 * time.Second})
		var ae *mcpcheck.AuthError
		gated := false
		if errors.As(err, &ae) {
			// A pomdev relay's OAuth gate: pass it as the owner, with a
			// token the relay mints over the SSH connection, so that the
			// check goes through everything a host goes through.
			if tok, _, terr := tc.OwnerToken(ctx); terr == nil {
				gated = true
				trep, err = mcpcheck.Run(ctx, mcpcheck.Options{URL: tc.URL() + "/mcp", Timeout: 15 * time.Second,
					Headers: map[string]string{"Authorization": "Bearer " + tok}})
			}
		}
		switch {
		case err == nil && gated:
			out.line("check", "check: through the tunnel OK (%s/mcp, as its owner through the relay's OAuth gate)", tc.URL())
		case err == nil:
			out.line("check", "check: through the tunnel OK (%s/mcp)", tc.URL())
			for _, f := range trep.Findings {
				if f.Rule == "APP010" {
					out.line("check", "warning: widget %s loads assets from localhost, which hosts such as Claude.ai cannot reach; run pomdev up --inline (or serve the widgets from a public origin)", f.Subject)
				}
			}
		case errors.As(err, &ae):
			out.line("check", "check: through the tunnel: protected by OAuth — tunnel OK")
		default:
			out.line("check", "check: through the tunnel failed: %v", err)
		}
	}
	return now
}

// diffTools compares two tool lists (name to schema signature), each
// result sorted.
func diffTools(last, now map[string]string) (added, removed, changed []string) {
	for n, sig := range now {
		old, ok := last[n]
		switch {
		case !ok:
			added = append(added, n)
		case old != sig:
			changed = append(changed, n)
		}
	}
	for n := range last {
		if _, ok := now[n]; !ok {
			removed = append(removed, n)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	slices.Sort(changed)
	return added, removed, changed
}

// missingNodeModules returns the first directory among the app's and its
// processes' that has a package.json and no node_modules (npm workspaces
// install into the app's), or "".
func missingNodeModules(cfg *config.Loaded) string {
	dirs := []string{cfg.Dir}
	for _, p := range cfg.Processes {
		if p.Dir != "" {
			dirs = append(dirs, filepath.Join(cfg.Dir, p.Dir))
		}
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "package.json")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "node_modules")); err == nil {
			return ""
		}
		if d == cfg.Dir {
			return d
		}
		// A workspace package: the app's node_modules serves it.
		if _, err := os.Stat(filepath.Join(cfg.Dir, "node_modules")); err != nil {
			return d
		}
	}
	return ""
}

// missingModules reports crash output that says npm packages are not
// installed.
func missingModules(output string) bool {
	for _, s := range []string{"ERR_MODULE_NOT_FOUND", "Cannot find module", "Cannot find package", ": not found", "command not found"} {
		if strings.Contains(output, s) {
			return true
		}
	}
	return false
}

// toolsLabel is the tunnel's own tool rules for the dashboard ("" none),
// written as the relay shows them.
func toolsLabel(t config.ToolRules) string {
	rules, err := policy.ParseTunnelTools(strings.Join(t.Allow, ","), strings.Join(t.Deny, ","))
	if err != nil || rules.Empty() {
		return ""
	}
	return rules.String()
}
