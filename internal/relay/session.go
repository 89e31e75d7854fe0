package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/pomdev/pomdev/internal/publicpath"
	"github.com/pomdev/pomdev/internal/toolrule"
	"io"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/pomdev/pomdev/internal/termsafe"
	"golang.org/x/crypto/ssh"
)

// EventsCommand is the exec command that asks the relay for the
// machine-readable status stream (JSON lines, see docs/RELAY.md); with the
// argument --no-requests it leaves out request events:
//
//	ssh -R 0 -T relay pomdev-events
const EventsCommand = "pomdev-events"

// EnvTarget is the env request a client sends to choose the target of its
// dynamic forwards: ssh -o SetEnv=POMDEV_TARGET=localhost:3000 -R 0 relay.
const EnvTarget = "POMDEV_TARGET"

// watcher receives a connection's notes. Sends never block: a slow status
// session drops notes rather than stall requests.
type watcher struct {
	ch chan note
}

func (w *watcher) send(n note) {
	select {
	case w.ch <- n:
	default:
	}
}

func (c *conn) watch() *watcher {
	w := &watcher{ch: make(chan note, 256)}
	c.mu.Lock()
	c.watchers[w] = struct{}{}
	for _, n := range c.early {
		w.send(n)
	}
	c.early = nil
	for _, rt := range c.routes {
		w.send(note{route: rt})
	}
	c.mu.Unlock()
	return w
}

func (c *conn) unwatch(w *watcher) {
	c.mu.Lock()
	delete(c.watchers, w)
	c.mu.Unlock()
}

type ptyRequest struct {
	Term   string
	Cols   uint32
	Rows   uint32
	Width  uint32
	Height uint32
	Modes  string
}

type windowChange struct {
	Cols   uint32
	Rows   uint32
	Width  uint32
	Height uint32
}

type envRequest struct {
	Name  string
	Value string
}

type execRequest struct {
	Command string
}

type exitStatus struct {
	Status uint32
}

// handleSession serves a session channel: env (POMDEV_TARGET), pty-req,
// window-change, then shell or exec start what the client sees.
func (c *conn) handleSession(nch ssh.NewChannel) {
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	var (
		pty     *ptyRequest
		once    sync.Once
		resize  = make(chan windowChange, 8)
		started = false
		ended   = make(chan struct{}) // the client closed the channel
	)
	defer close(ended)
	// The session's goroutines get the PTY as it was when they started: a
	// pty-req after shell or exec is refused and changes nothing they read.
	start := func(mode string) {
		once.Do(func() {
			started = true
			pty := pty
			go func() {
				code := c.runSession(ch, mode, pty, resize, ended)
				_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(exitStatus{Status: code}))
				_ = ch.Close()
				if mode == "screen" {
					// Quitting the status screen ends the tunnel, as on
					// pom.run; ssh would otherwise wait for the forwarded
					// channels kept open for reuse.
					_ = c.sc.Close()
				}
			}()
		})
	}
	for req := range reqs {
		switch req.Type {
		case "pty-req":
			var p ptyRequest
			if err := ssh.Unmarshal(req.Payload, &p); err != nil || c.opts != nil && c.opts.noPTY || started {
				// no-pty / restrict: the client gets lines instead; once
				// the session has started, its terminal is what it was.
				_ = req.Reply(false, nil)
				continue
			}
			pty = &p
			_ = req.Reply(true, nil)
		case "env":
			var e envRequest
			if err := ssh.Unmarshal(req.Payload, &e); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			if e.Name == EnvTarget {
				if _, _, err := splitTarget(e.Value); err != nil {
					c.log.Info("bad POMDEV_TARGET", "value", e.Value, "err", err)
					_ = req.Reply(false, nil)
					continue
				}
				c.mu.Lock()
				c.target = e.Value
				c.mu.Unlock()
				// Channels kept open for the old target must not be reused.
				c.closeIdle()
			}
			if e.Name == toolrule.EnvAllow || e.Name == toolrule.EnvDeny {
				if err := c.setTunnelTools(e.Name, e.Value); err != nil {
					c.log.Info("bad tool policy from the tunnel", "env", e.Name, "err", err)
					go c.notify(note{log: e.Name + " refused: " + err.Error()})
					_ = req.Reply(false, nil)
					continue
				}
			}
			if e.Name == publicpath.Env {
				if err := c.setPublic(e.Value); err != nil {
					c.log.Info("public paths from the tunnel refused", "value", e.Value, "err", err)
					go c.notify(note{log: publicpath.Env + " refused: " + err.Error()})
					_ = req.Reply(false, nil)
					continue
				}
			}
			if e.Name == EnvHTTPAuth {
				switch {
				case e.Value == "app" && c.r.access != nil && !c.r.cfg.AllowAppAuth:
					c.log.Info("POMDEV_HTTP_AUTH=app refused: the relay does not allow it")
					go c.notify(note{log: "POMDEV_HTTP_AUTH=app refused: this relay authorizes every request itself (its admin can allow it with --allow-app-auth)"})
					_ = req.Reply(false, nil)
					continue
				case e.Value == "app":
					c.appAuth.Store(true)
				case e.Value == "relay" || e.Value == "":
					c.appAuth.Store(false)
				default:
					_ = req.Reply(false, nil)
					continue
				}
			}
			_ = req.Reply(true, nil)
		case "window-change":
			var wc windowChange
			if ssh.Unmarshal(req.Payload, &wc) == nil {
				select {
				case resize <- wc:
				default:
				}
			}
		case "shell":
			_ = req.Reply(!started, nil)
			switch {
			case pty == nil || started:
				start("lines")
			case c.takeScreen():
				start("screen")
			default:
				// Screens cost memory: past the limits the client gets
				// the same facts as lines.
				start("lines-busy")
			}
		case "exec":
			var e execRequest
			if err := ssh.Unmarshal(req.Payload, &e); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(!started, nil)
			switch fields := strings.Fields(e.Command); {
			case len(fields) > 0 && fields[0] == EventsCommand:
				mode := "events"
				if len(fields) > 1 && fields[1] == "--no-requests" {
					mode = "events-quiet"
				}
				start(mode)
			case len(fields) > 0 && fields[0] == AccessCommand:
				crlf := pty != nil
				go func() {
					code := c.runAccess(crlfIf(ch, crlf), fields[1:])
					_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(exitStatus{Status: code}))
					_ = ch.Close()
				}()
				started = true
			default:
				start("lines")
			}
		default:
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}
}

func (c *conn) closeIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rt := range c.routes {
		rt.closeIdle()
	}
}

// runSession shows the connection's tunnels and requests until the client
// ends the session (or, on the status screen, presses q or Ctrl-C).
func (c *conn) runSession(ch ssh.Channel, mode string, pty *ptyRequest, resize <-chan windowChange, ended <-chan struct{}) uint32 {
	w := c.watch()
	defer c.unwatch(w)
	if a := c.r.access; a != nil {
		// A session that starts late still learns what waits for this key.
		if qs, err := a.Pending(c.ctx, c.fp); err == nil {
			for i := range qs {
				w.send(note{access: &qs[i]})
			}
		}
	}
	switch mode {
	case "screen":
		defer c.releaseScreen()
		return c.runScreen(ch, pty, resize, w)
	case "events", "events-quiet":
		go func() { _, _ = io.Copy(io.Discard, ch) }()
		return c.runEvents(ch, w, ended, mode == "events")
	default:
		// The client's stdin is not used; its EOF (ssh -T < /dev/null)
		// does not end the session, closing the channel does.
		go func() { _, _ = io.Copy(io.Discard, ch) }()
		var out io.Writer = ch
		if pty != nil {
			// The client's terminal is raw.
			out = crlfWriter{ch}
		}
		if mode == "lines-busy" {
			w.send(note{log: fmt.Sprintf("status screen unavailable (at most one per connection and %d on this relay); showing lines", maxScreens)})
		}
		return c.runLines(out, w, ended)
	}
}

// maxScreens is how many status screens the relay draws at once; each
// holds its cells (up to ≈ 6 MiB at the largest size).
const maxScreens = 64

// takeScreen reserves this connection's one status screen and a place
// among the relay's.
func (c *conn) takeScreen() bool {
	if !c.screen.CompareAndSwap(false, true) {
		return false
	}
	if c.r.screens.Add(1) > maxScreens {
		c.r.screens.Add(-1)
		c.screen.Store(false)
		return false
	}
	return true
}

func (c *conn) releaseScreen() {
	c.r.screens.Add(-1)
	c.screen.Store(false)
}

// runLines writes plain lines: "Remote: <url>" per tunnel first, then one
// line per request, until the client closes the session.
func (c *conn) runLines(ch io.Writer, w *watcher, ended <-chan struct{}) uint32 {
	return c.stream(ch, w, ended, func(buf []byte, n note) []byte {
		return append(append(buf, c.lineOf(n)...), '\n')
	})
}

// stream writes what render makes of each note until the session ends.
// Notes are gathered for up to lineBatch after the first of a batch and
// go out in one write: under load one SSH packet carries many lines, not
// one each (a person reading the lines does not see 20 ms).
func (c *conn) stream(ch io.Writer, w *watcher, ended <-chan struct{}, render func([]byte, note) []byte) uint32 {
	var buf []byte
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var n note
		select {
		case <-ended:
			return 0
		case n = <-w.ch:
		}
		buf = buf[:0]
		timer.Reset(lineBatch)
	batch:
		for {
			if n.closed {
				_, _ = ch.Write(buf)
				return 0
			}
			buf = render(buf, n)
			if len(buf) >= 16<<10 {
				break
			}
			select {
			case n = <-w.ch:
			case <-timer.C:
				break batch
			case <-ended:
				return 0
			}
		}
		timer.Stop()
		if len(buf) == 0 {
			continue
		}
		if _, err := ch.Write(buf); err != nil {
			return 0
		}
	}
}

// lineBatch is how long session lines are gathered before a write.
const lineBatch = 20 * time.Millisecond

// lineOf is a note as a line of the plain session output.
func (c *conn) lineOf(n note) string {
	switch {
	case n.route != nil:
		line := "Remote: " + n.route.url
		if !n.route.static {
			line += "\nLocal: " + c.targetOf()
		}
		return line
	case n.req != nil:
		return n.req.Line()
	case n.access != nil:
		return accessLine(*n.access)
	default:
		return "Log: " + termsafe.String(n.log)
	}
}

// Event is one line of the machine-readable stream (EventsCommand).
type Event struct {
	Type    string `json:"type"` // tunnel, request, access, log
	Route   string `json:"route,omitempty"`
	URL     string `json:"url,omitempty"`
	Target  string `json:"target,omitempty"`
	Static  bool   `json:"static,omitempty"`
	Message string `json:"message,omitempty"`
	Request any    `json:"request,omitempty"`
	Access  any    `json:"access,omitempty"`
}

func (c *conn) runEvents(ch ssh.Channel, w *watcher, ended <-chan struct{}, requests bool) uint32 {
	return c.stream(ch, w, ended, func(buf []byte, n note) []byte {
		var ev Event
		switch {
		case n.route != nil:
			ev = Event{Type: "tunnel", Route: n.route.name, URL: n.route.url, Static: n.route.static}
			if !n.route.static {
				ev.Target = c.targetOf()
			}
		case n.req != nil:
			if !requests {
				return buf
			}
			ev = Event{Type: "request", Route: n.req.Route, Request: n.req}
		case n.access != nil:
			ev = Event{Type: "access", Route: n.access.Route, Access: n.access}
		default:
			ev = Event{Type: "log", Message: n.log}
		}
		// A person may read the stream raw (ssh -T relay pomdev-events):
		// the JSON is kept free of terminal controls.
		line, err := json.Marshal(ev)
		if err != nil {
			return buf
		}
		return append(append(buf, termsafe.JSON(line)...), '\n')
	})
}

// Screen sizes a client may ask for: the screen's cells are allocated
// from them (≈ 220 bytes each), so a terminal of 60000 x 2000 would take
// gigabytes; 300 x 100 takes ≈ 6.5 MiB.
const (
	maxScreenCols, maxScreenRows         = 300, 100
	defaultScreenCols, defaultScreenRows = 80, 24
)

// screenSize clamps a client's terminal size to what the status screen
// draws; zero means the classic 80 x 24.
func screenSize(cols, rows uint32) (int, int) {
	w, h := int(min(cols, maxScreenCols)), int(min(rows, maxScreenRows))
	if w == 0 {
		w = defaultScreenCols
	}
	if h == 0 {
		h = defaultScreenRows
	}
	return w, h
}

// termName keeps a client's TERM printable and short.
func termName(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f {
			return "xterm-256color"
		}
	}
	return s
}

// runScreen draws the status screen with Bubble Tea over the channel. A
// panic in the screen ends this session only (Bubble Tea recovers it).
func (c *conn) runScreen(ch ssh.Channel, pty *ptyRequest, resize <-chan windowChange, w *watcher) uint32 {
	cols, rows := screenSize(pty.Cols, pty.Rows)
	m := newStatusModel(cols, rows, c.active.Load)
	if a := c.r.access; a != nil {
		m.decide = func(code string, allow bool) error {
			ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
			defer cancel()
			_, err := a.Decide(ctx, code, allow, c.fp, "key "+c.fp+" (status screen)")
			return err
		}
	}
	env := []string{"TERM=" + termName(pty.Term)}
	p := tea.NewProgram(m,
		tea.WithInput(ch),
		tea.WithOutput(crlfWriter{ch}),
		tea.WithEnvironment(env),
		tea.WithWindowSize(cols, rows),
		tea.WithoutSignalHandler(),
	)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case wc := <-resize:
				cols, rows := screenSize(wc.Cols, wc.Rows)
				p.Send(tea.WindowSizeMsg{Width: cols, Height: rows})
			case n := <-w.ch:
				if n.closed {
					p.Quit()
					return
				}
				msg := noteMsg{note: n}
				if n.route != nil {
					msg.target = c.targetOf()
				}
				p.Send(msg)
			}
		}
	}()
	if _, err := p.Run(); err != nil {
		c.log.Debug("status screen ended", "err", err)
	}
	return 0
}

// crlfIf maps newlines for a client's raw terminal.
func crlfIf(w io.Writer, pty bool) io.Writer {
	if pty {
		return crlfWriter{w}
	}
	return w
}

// crlfWriter turns "\n" into "\r\n". Bubble Tea, given an input that is
// not a terminal, assumes the output terminal maps newlines (ONLCR) as a
// local PTY would; over SSH the client's terminal is raw, so the relay maps
// them itself.
type crlfWriter struct{ w io.Writer }

func (c crlfWriter) Write(p []byte) (int, error) {
	if bytes.IndexByte(p, '\n') < 0 {
		return c.w.Write(p)
	}
	out := make([]byte, 0, len(p)+16)
	for i, b := range p {
		if b == '\n' && (i == 0 || p[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, b)
	}
	if _, err := c.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
