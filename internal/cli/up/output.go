package up

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/pomdev/pomdev/internal/devloop"
	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/tui"
)

// output shows a session's events: plain or JSON lines, or the
// dashboard. event is called from the session's goroutines.
type output interface {
	event(devloop.Event)
	// close ends the output once the session has stopped.
	close()
}

// lines writes one line per rendered line (JSON objects with --log-format
// json).
type lines struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
}

func (o *lines) event(e devloop.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, l := range render(e) {
		if l.Kind == kindURL {
			continue // the dashboard's; lines have "Remote URL:"
		}
		text := l.Text
		if l.Kind == kindPreview {
			text = "Preview: " + text + " (the app's widgets, rendered as a host would)"
		}
		if l.Kind == "output" {
			text = "[" + l.Process + "] " + text
		}
		if o.json {
			if b, err := json.Marshal(map[string]any{"time": time.Now(), "kind": l.Kind, "message": text}); err == nil {
				_, _ = o.w.Write(append(b, '\n'))
			}
			continue
		}
		_, _ = io.WriteString(o.w, text+"\n")
	}
}

func (o *lines) close() {}

// dashboard runs the live dashboard (internal/tui) for a session.
type dashboard struct {
	prog *tea.Program
	done chan struct{}
}

// quitReason is why the session's context ended from the dashboard.
type quitReason struct{ interrupted bool }

func (quitReason) Error() string { return "quit" }

// startDashboard runs the dashboard on the terminal of opts with the
// session's actions; stop ends the session (with a quitReason cause).
func startDashboard(opts *Options, app string, s *devloop.Session, stop context.CancelCauseFunc) *dashboard {
	cfg := opts.Config
	actions := tui.Actions{
		Quit:      func() { stop(quitReason{}) },
		Interrupt: func() { stop(quitReason{interrupted: true}) },
		Restart:   func() { s.Restart("r pressed") },
		Check:     func() { s.Check("i pressed") },
		Processes: func() []tui.Proc {
			rows := s.Processes()
			procs := make([]tui.Proc, len(rows))
			for i, r := range rows {
				procs[i] = tui.Proc{Name: r.Name, State: r.State, PID: r.PID, Port: r.Port, Restarts: r.Restarts, Since: r.Since}
			}
			return procs
		},
	}
	if open := opts.OpenBrowser; open != nil {
		actions.OpenURL = func(u string) { _ = open(u) }
	}
	if !opts.NoTunnel {
		actions.Connections = s.Connections
		actions.Decide = func(code string, allow bool) (string, error) {
			ctx, cancel := context.WithTimeout(opts.Ctx, 10*time.Second)
			defer cancel()
			return s.Decide(ctx, code, allow)
		}
	}
	m := tui.New(filepath.Base(app), cfg.Tunnel.Relay, actions)
	m.Tools = toolsLabel(cfg.Tunnel.Tools)
	d := &dashboard{done: make(chan struct{}),
		prog: tea.NewProgram(m, tea.WithOutput(opts.IO.Out), tea.WithInput(opts.IO.In),
			tea.WithoutSignalHandler(), tea.WithFPS(10))} // the screen changes at most a few times a second
	go func() {
		defer close(d.done)
		_, _ = d.prog.Run()
		stop(quitReason{}) // a dashboard that ended ends the session
	}()
	return d
}

// event sends the rendered lines to the dashboard (Send waits for its
// loop; the program runs from startDashboard on), and an access request
// to its Access pane.
func (d *dashboard) event(e devloop.Event) {
	for _, l := range render(e) {
		d.prog.Send(l)
	}
	if t, ok := e.(devloop.Tunnel); ok && t.Kind == event.TunnelAccess && t.Access != nil {
		d.prog.Send(*t.Access)
	}
}

// close quits the dashboard, restoring the terminal; one that does not
// end within two seconds is killed.
func (d *dashboard) close() {
	d.prog.Quit()
	select {
	case <-d.done:
	case <-time.After(2 * time.Second):
		d.prog.Kill()
		<-d.done
	}
}
