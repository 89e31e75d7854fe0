// Package devloop is the engine of `pomdev up`: a Session runs the app's
// processes (internal/supervise), restarts them when their watched files
// change (internal/watch), opens the tunnel (internal/tunnel, with a relay
// embedded for --relay local) and checks /mcp locally and through the
// tunnel after every start of the server (internal/mcpcheck). It reports
// what happens as typed events (events.go) and leaves flags, rendering
// and exit codes to the command.
//
// Lifecycle: everything a session starts runs in one errgroup under the
// context given to Run; Run returns once all of it has stopped, whether
// the context ended or something failed (the first failure cancels the
// rest).
package devloop

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/mcpcheck"
	"github.com/pomdev/pomdev/internal/preview"
	"github.com/pomdev/pomdev/internal/supervise"
	"github.com/pomdev/pomdev/internal/tunnel"
	"github.com/pomdev/pomdev/internal/watch"
	"golang.org/x/sync/errgroup"
)

// Config is what a session runs and where it reports.
type Config struct {
	// App is the app with its processes resolved (Prepare).
	App *config.Loaded
	// ConfigDir holds pomdev's key, known hosts and the embedded relay's
	// state.
	ConfigDir string
	NoTunnel  bool
	// HTTPAuth is the embedded relay's --http-auth (none or owner).
	HTTPAuth string
	Logger   *slog.Logger
	// OnEvent receives every event, from the session's goroutines; it
	// should return promptly.
	OnEvent func(Event)
	// OpenBrowser opens sign-in links; nil leaves them to the events.
	OpenBrowser func(string) error
	// NewWatcher starts the file watcher (watch.New when nil).
	NewWatcher func(root string, o watch.Options) (*watch.Watcher, error)
	// NoPreview leaves out the local preview page (internal/preview).
	NoPreview bool
}

// RelayError is a relay address (--relay, tunnel.relay) that cannot be
// used.
type RelayError struct{ Err error }

func (e *RelayError) Error() string { return e.Err.Error() }
func (e *RelayError) Unwrap() error { return e.Err }

// WatchError is a file watcher that could not start (inotify limits).
type WatchError struct {
	Dir string
	Err error
}

func (e *WatchError) Error() string { return fmt.Sprintf("watching %s: %v", e.Dir, e.Err) }
func (e *WatchError) Unwrap() error { return e.Err }

// Session is one run of an app: build it with New, run it with Run. Its
// other methods are what a dashboard's keys do; they may be called before
// and during Run, from any goroutine.
type Session struct {
	cfg    Config
	app    *config.Loaded
	relay  config.RelayAddr
	target string // host:port the tunnel forwards to and the checks ask
	server string // the process serving target, "" when none does
	emit   func(Event)

	procs   map[string]*supervise.Process
	states  *procStates
	checks  chan string // causes of checks to run
	ready   atomic.Bool // the server is ready
	tc      atomic.Pointer[tunnel.Client]
	pv      atomic.Pointer[preview.Server]
	started atomic.Bool
}

// New builds the session for a prepared app; nothing runs before Run.
func New(cfg Config) (*Session, error) {
	app := cfg.App
	s := &Session{cfg: cfg, app: app, target: app.Tunnel.Target, emit: cfg.OnEvent,
		procs: map[string]*supervise.Process{}, checks: make(chan string, 4),
		states: &procStates{m: map[string]procState{}, unchecked: map[string]bool{}}}
	if s.emit == nil {
		s.emit = func(Event) {}
	}
	if s.cfg.Logger == nil {
		s.cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if !cfg.NoTunnel {
		ra, err := config.ParseRelay(app.Tunnel.Relay)
		if err != nil {
			return nil, &RelayError{Err: err}
		}
		s.relay = ra
	}
	for _, spec := range app.Processes {
		if s.servesTarget(spec) {
			s.server = spec.Name
		}
		// Nothing tells when such a process is ready: it is running.
		s.states.unchecked[spec.Name] = spec.Port == 0 && spec.Health == ""
		s.procs[spec.Name] = s.newProcess(spec)
	}
	return s, nil
}

func (s *Session) servesTarget(spec config.Process) bool {
	return spec.Port != 0 && strings.HasSuffix(s.target, ":"+strconv.Itoa(spec.Port))
}

// newProcess supervises spec, reporting its events.
func (s *Session) newProcess(spec config.Process) *supervise.Process {
	env := make([]string, 0, len(spec.Env))
	for k, v := range spec.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	dir := s.app.Dir
	if spec.Dir != "" {
		dir = filepath.Join(s.app.Dir, spec.Dir)
	}
	name, serves := spec.Name, s.servesTarget(spec)
	return supervise.New(supervise.Spec{Name: name, Command: spec.Command, Dir: dir, Env: env, Port: spec.Port,
		Health: spec.Health, ReadyTimeout: spec.ReadyTimeout, Restart: spec.Restart}, func(e supervise.Event) {
		s.states.set(name, e.Kind)
		s.emit(Process{Event: e, ServesTarget: serves})
		switch e.Kind {
		case supervise.Started:
			if serves {
				s.ready.Store(false)
			}
		case supervise.Ready:
			if serves {
				s.ready.Store(true)
				s.Check(name + " ready")
				if pv := s.pv.Load(); pv != nil {
					pv.Reload(name + " ready") // open previews render again
				}
			}
		case supervise.Exited:
			if serves {
				s.emit(CheckStale{Process: name, Since: time.Now()})
			}
		case supervise.CrashLoop:
			if missingModules(e.Cause) {
				s.emit(MissingModules{Dir: s.app.Dir, Process: name})
			}
		}
	})
}

// Run runs everything until ctx ends or something fails, stops it all,
// and returns the failure (nil when ctx ended). A session runs once.
func (s *Session) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return fmt.Errorf("devloop: session already run")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		<-ctx.Done()
		s.emit(Stopping{})
		return nil
	})
	for _, spec := range s.app.Processes {
		p := s.procs[spec.Name]
		g.Go(func() error {
			if err := p.Run(ctx); err != nil {
				s.emit(ProcessFailed{Process: spec.Name, Err: err})
			}
			return nil
		})
	}
	if err := s.watch(ctx, g); err != nil {
		cancel()
		_ = g.Wait()
		return err
	}
	if !s.cfg.NoPreview && s.target != "" {
		// The preview asks the local server (not the tunnel): it works
		// offline and shows what the app serves right now.
		pv, err := preview.Start(ctx, preview.Options{MCP: mcpcheck.Options{URL: "http://" + s.target + "/mcp", Timeout: checkTimeout}})
		if err != nil {
			s.cfg.Logger.Warn("preview unavailable", "err", err)
		} else {
			s.pv.Store(pv)
			g.Go(func() error {
				<-ctx.Done()
				return pv.Close()
			})
			s.emit(Preview{URL: pv.URL()})
		}
	}
	if !s.cfg.NoTunnel {
		tc, err := s.startTunnel(ctx, g)
		if err != nil {
			cancel()
			_ = g.Wait()
			return err
		}
		s.tc.Store(tc)
	}
	g.Go(func() error {
		var last map[string]string
		for {
			select {
			case <-ctx.Done():
				return nil
			case cause := <-s.checks:
				last = s.check(ctx, cause, last)
			}
		}
	})
	return g.Wait()
}

// watch starts the file watcher when a process watches files: a change
// under a process's globs restarts it.
func (s *Session) watch(ctx context.Context, g *errgroup.Group) error {
	var ignores []string
	watched := false
	for _, p := range s.app.Processes {
		ignores = append(ignores, p.Ignore...)
		watched = watched || (len(p.Watch) > 0 && !p.SelfWatching)
	}
	if !watched {
		return nil
	}
	newWatcher := s.cfg.NewWatcher
	if newWatcher == nil {
		newWatcher = watch.New
	}
	w, err := newWatcher(s.app.Dir, watch.Options{Ignore: ignores})
	if err != nil {
		return &WatchError{Dir: s.app.Dir, Err: err}
	}
	changes := make(chan watch.Change, 64)
	g.Go(func() error { _ = w.Run(ctx, changes); return nil })
	g.Go(func() error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case c := <-changes:
				s.changed(c.Path)
			}
		}
	})
	return nil
}

// changed restarts every process watching path.
func (s *Session) changed(path string) {
	for _, spec := range s.app.Processes {
		if spec.SelfWatching {
			continue
		}
		for _, g := range spec.Watch {
			if watch.Match(g, path) {
				s.procs[spec.Name].Restart(path + " changed")
				break
			}
		}
	}
}

// Restart restarts the MCP server (the process serving the tunnel's
// target), if there is one.
func (s *Session) Restart(cause string) {
	if p, ok := s.procs[s.server]; ok {
		p.Restart(cause)
	}
}

// Check runs the check again (at most four wait).
func (s *Session) Check(cause string) {
	select {
	case s.checks <- cause:
	default:
	}
}

// ProcessRow is one process as a dashboard shows it.
type ProcessRow struct {
	Name     string
	State    string // starting, running, ready, not ready, exited, restarting, crash loop, stopped
	PID      int
	Port     int
	Restarts int
	Since    time.Time
}

// Processes returns every process, in the order of the configuration.
func (s *Session) Processes() []ProcessRow {
	rows := make([]ProcessRow, 0, len(s.app.Processes))
	for _, spec := range s.app.Processes {
		st := s.states.get(spec.Name)
		p := s.procs[spec.Name]
		rows = append(rows, ProcessRow{Name: spec.Name, State: st.state, PID: p.PID(), Port: spec.Port, Restarts: p.Restarts(), Since: st.since})
	}
	return rows
}

// Connections reports the tunnel's open and total connections (zero
// before the tunnel starts).
func (s *Session) Connections() (open, total int64) {
	if tc := s.tc.Load(); tc != nil {
		return tc.Connections()
	}
	return 0, 0
}

// Decide approves or denies an app's access request on the relay.
func (s *Session) Decide(ctx context.Context, code string, allow bool) (string, error) {
	tc := s.tc.Load()
	if tc == nil {
		return "", fmt.Errorf("the tunnel is not open yet")
	}
	verb := "approve"
	if !allow {
		verb = "deny"
	}
	return tc.Access(ctx, verb, code)
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

// stateOf is the table's word for each process event that changes it.
var stateOf = map[string]string{
	supervise.Ready:      "ready",
	supervise.NotReady:   "not ready",
	supervise.Exited:     "exited",
	supervise.Restarting: "restarting",
	supervise.CrashLoop:  "crash loop",
	supervise.Stopped:    "stopped",
}

func (s *procStates) set(name, kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[name]
	switch state, ok := stateOf[kind]; {
	case kind == supervise.Started:
		st = procState{state: "starting", since: time.Now()}
		if s.unchecked[name] {
			st.state = "running"
		}
	case ok:
		st.state = state
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
