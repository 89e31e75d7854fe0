package relay

import (
	"context"
	"fmt"
	"github.com/pomdev/pomdev/internal/publicpath"
	"github.com/pomdev/pomdev/internal/relay/console"
	"github.com/pomdev/pomdev/internal/toolrule"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// EventsCommand is the exec command that asks the relay for the
// machine-readable status stream (JSON lines, see docs/RELAY.md); with the
// argument --no-requests it leaves out request events:
//
//	ssh -R 0 -T relay pomdev-events
const EventsCommand = console.EventsCommand

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
		w.send(note{Route: rt.view()})
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
		resize  = make(chan console.Size, 8)
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
			_ = c.spawn(func() {
				code := c.runSession(ch, mode, pty, resize, ended)
				_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(exitStatus{Status: code}))
				_ = ch.Close()
				if mode == "screen" {
					// Quitting the status screen ends the tunnel, as on
					// pom.run; ssh would otherwise wait for the forwarded
					// channels kept open for reuse.
					_ = c.sc.Close()
				}
			})
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
					_ = c.spawn(func() { c.notify(note{Log: e.Name + " refused: " + err.Error()}) })
					_ = req.Reply(false, nil)
					continue
				}
			}
			if e.Name == publicpath.Env {
				if err := c.setPublic(e.Value); err != nil {
					c.log.Info("public paths from the tunnel refused", "value", e.Value, "err", err)
					_ = c.spawn(func() { c.notify(note{Log: publicpath.Env + " refused: " + err.Error()}) })
					_ = req.Reply(false, nil)
					continue
				}
			}
			if e.Name == EnvHTTPAuth {
				switch {
				case e.Value == "app" && c.r.access != nil && !c.r.cfg.AllowAppAuth:
					c.log.Info("POMDEV_HTTP_AUTH=app refused: the relay does not allow it")
					_ = c.spawn(func() {
						c.notify(note{Log: "POMDEV_HTTP_AUTH=app refused: this relay authorizes every request itself (its admin can allow it with --allow-app-auth)"})
					})
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
				case resize <- console.Size{Cols: wc.Cols, Rows: wc.Rows}:
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
				_ = c.spawn(func() {
					code := c.runAccess(console.CRLFIf(ch, crlf), fields[1:])
					_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(exitStatus{Status: code}))
					_ = ch.Close()
				})
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
func (c *conn) runSession(ch ssh.Channel, mode string, pty *ptyRequest, resize <-chan console.Size, ended <-chan struct{}) uint32 {
	w := c.watch()
	defer c.unwatch(w)
	if a := c.r.access; a != nil {
		// A session that starts late still learns what waits for this key.
		if qs, err := a.Pending(c.ctx, c.fp); err == nil {
			for i := range qs {
				w.send(note{Access: &qs[i]})
			}
		}
	}
	s := console.Session{Notes: w.ch, Ended: ended, Target: c.targetOf}
	switch mode {
	case "screen":
		defer c.releaseScreen()
		sc := console.Screen{Size: console.Size{Cols: pty.Cols, Rows: pty.Rows}, Term: pty.Term, Resize: resize, Open: c.active.Load}
		if a := c.r.access; a != nil {
			sc.Decide = func(code string, allow bool) error {
				ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
				defer cancel()
				_, err := a.Decide(ctx, code, allow, c.fp, "key "+c.fp+" (status screen)")
				return err
			}
		}
		if err := console.RunScreen(ch, s, sc); err != nil {
			c.log.Debug("status screen ended", "err", err)
		}
		return 0
	case "events", "events-quiet":
		_ = c.spawn(func() { _, _ = io.Copy(io.Discard, ch) })
		console.Events(ch, s, mode == "events")
		return 0
	default:
		// The client's stdin is not used; its EOF (ssh -T < /dev/null)
		// does not end the session, closing the channel does.
		_ = c.spawn(func() { _, _ = io.Copy(io.Discard, ch) })
		var out io.Writer = ch
		if pty != nil {
			// The client's terminal is raw.
			out = console.CRLFWriter{W: ch}
		}
		if mode == "lines-busy" {
			w.send(note{Log: fmt.Sprintf("status screen unavailable (at most one per connection and %d on this relay); showing lines", maxScreens)})
		}
		console.Lines(out, s)
		return 0
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
