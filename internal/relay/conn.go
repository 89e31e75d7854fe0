package relay

import (
	"context"
	"errors"
	"fmt"
	"github.com/pomdev/pomdev/internal/publicpath"
	"github.com/pomdev/pomdev/internal/relay/console"
	"github.com/pomdev/pomdev/internal/taskgroup"
	"github.com/pomdev/pomdev/internal/toolrule"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// conn is one authenticated SSH connection.
type conn struct {
	r    *Relay
	sc   *ssh.ServerConn
	fp   string
	opts *keyOptions // from authorized_keys (keys mode); nil restricts nothing
	log  *slog.Logger
	// ctx is cancelled when the connection ends (or the relay stops):
	// work done for it runs under it.
	ctx    context.Context
	cancel context.CancelFunc
	// tasks are the connection's goroutines (sessions, pings, channel
	// opens); its serve loop closes and waits for them before it returns.
	tasks taskgroup.Group

	active   atomic.Int64                   // requests in flight through this connection
	sessions atomic.Int32                   // open session channels
	screen   atomic.Bool                    // a session draws the status screen
	appAuth  atomic.Bool                    // POMDEV_HTTP_AUTH=app: requests reach the app as sent
	tools    atomic.Pointer[toolrule.Tools] // the tunnel's own tool rules (POMDEV_TOOLS_*)
	public   atomic.Pointer[publicpath.Set] // asset paths served without a token (POMDEV_PUBLIC_PATHS)

	mu      sync.Mutex
	pinging bool   // a keepalive is waiting for its answer
	missed  int    // keepalive intervals without an answer
	target  string // POMDEV_TARGET from an env request, "" for the default
	// toolsAllow and toolsDeny are the POMDEV_TOOLS_* values as sent.
	toolsAllow, toolsDeny string
	routes                map[string]*route
	watchers              map[*watcher]struct{}
	// early are log notes said before any session watched (maxEarlyNotes).
	early []note
}

// maxSessions is how many session channels one connection may have open.
const maxSessions = 8

// handleConn runs the SSH handshake of nc, calling handshaken when it ends
// either way, and then serves the connection.
func (r *Relay) handleConn(nc net.Conn, handshaken func()) {
	_ = nc.SetDeadline(time.Now().Add(r.cfg.HandshakeTimeout))
	hc := newHandshakeConn(nc, handshaken)
	sc, chans, reqs, err := ssh.NewServerConn(hc, r.serverConfig(hc))
	hc.release()
	if err != nil {
		r.log.Debug("ssh handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
		_ = nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	c := &conn{
		r:        r,
		sc:       sc,
		fp:       sc.Permissions.Extensions[extFingerprint],
		opts:     optionsOf(sc.Permissions),
		routes:   map[string]*route{},
		watchers: map[*watcher]struct{}{},
	}
	c.ctx, c.cancel = context.WithCancel(r.ctx)
	c.log = r.log.With("fingerprint", c.fp, "remote", sc.RemoteAddr().String())
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		c.cancel()
		_ = sc.Close()
		return
	}
	r.conns[c] = struct{}{}
	r.mu.Unlock()
	c.log.Info("client connected", "user", sc.User(), "client", string(sc.ClientVersion()))

	// The connection is served on a new goroutine: the handshake's key
	// exchange grew this one's stack, which a parked connection would keep.
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		c.serve(chans, reqs)
	}()
}

// serve handles the connection's channel opens and global requests until
// it ends. One goroutine serves both: an idle tunnel costs the relay this
// goroutine beside x/crypto's own.
func (c *conn) serve(chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request) {
	for chans != nil || reqs != nil {
		select {
		case nch, ok := <-chans:
			if !ok {
				chans = nil
				continue
			}
			c.handleChannel(nch)
		case req, ok := <-reqs:
			if !ok {
				reqs = nil
				continue
			}
			// A request is handled on a goroutine of its own, waited
			// for so that requests stay in order: adding a route (the
			// database) grows a stack that this parked goroutine would
			// otherwise keep for the connection's life.
			done := make(chan struct{})
			go func() {
				defer close(done)
				c.handleGlobal(req)
			}()
			<-done
		}
	}
	if err := c.sc.Wait(); err != nil && !errors.Is(err, io.EOF) {
		c.log.Debug("connection ended", "err", err)
	}
	c.teardown()
	c.tasks.Close()
	c.tasks.Wait()
	c.log.Info("client disconnected")
}

// spawn runs f on a goroutine the connection waits for; once the
// connection has ended it runs nothing and reports false.
func (c *conn) spawn(f func()) bool { return c.tasks.Go(f) }

func (c *conn) handleChannel(nch ssh.NewChannel) {
	switch nch.ChannelType() {
	case "session":
		// Each session may buffer up to a channel window of input; a
		// handful is all a client needs.
		if c.sessions.Add(1) > maxSessions {
			c.sessions.Add(-1)
			_ = nch.Reject(ssh.ResourceShortage, fmt.Sprintf("at most %d sessions per connection", maxSessions))
			return
		}
		if !c.spawn(func() {
			defer c.sessions.Add(-1)
			c.handleSession(nch)
		}) {
			c.sessions.Add(-1)
			_ = nch.Reject(ssh.ConnectionFailed, "the connection is closing")
		}
	default:
		_ = nch.Reject(ssh.Prohibited, "this relay accepts only sessions and remote forwards (ssh -R)")
	}
}

// optionsOf is the authorized_keys options the handshake found for the key.
func optionsOf(p *ssh.Permissions) *keyOptions {
	if p == nil {
		return nil
	}
	ko, _ := p.ExtraData[keyOptionsKey{}].(*keyOptions)
	return ko
}

// teardown releases the connection's routes and forgets it.
func (c *conn) teardown() {
	defer c.cancel()
	c.mu.Lock()
	routes := make([]*route, 0, len(c.routes))
	for _, rt := range c.routes {
		routes = append(routes, rt)
	}
	c.routes = map[string]*route{}
	c.mu.Unlock()
	for _, rt := range routes {
		c.r.releaseRoute(rt)
	}
	c.r.mu.Lock()
	delete(c.r.conns, c)
	c.r.mu.Unlock()
	c.notify(note{Closed: true})
}

// ping sends one keepalive@openssh.com request, unless one is still
// waiting for its answer; KeepaliveMax intervals without an answer close the
// connection. The relay's keepalive loop calls it for every connection.
func (c *conn) ping() {
	c.mu.Lock()
	if c.pinging {
		c.missed++
		missed := c.missed
		c.mu.Unlock()
		if missed >= c.r.cfg.KeepaliveMax {
			c.log.Info("client stopped answering keepalives; closing", "missed", missed)
			_ = c.sc.Close()
		}
		return
	}
	c.pinging = true
	c.mu.Unlock()
	_ = c.spawn(func() {
		_, _, err := c.sc.SendRequest("keepalive@openssh.com", true, nil)
		c.mu.Lock()
		c.pinging = false
		if err == nil {
			c.missed = 0
		}
		c.mu.Unlock()
	})
}

// targetOf is where a dynamic forward of c CONNECTs.
func (c *conn) targetOf() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.target != "" {
		return c.target
	}
	return c.r.cfg.DefaultTarget
}

// note is what a connection tells its watchers (status sessions).
type note = console.Note

func (c *conn) notify(n note) {
	c.mu.Lock()
	if len(c.watchers) == 0 && n.Log != "" {
		// Said before any session watches (an env request refused before
		// the shell starts): kept for the first one, a few at most.
		if len(c.early) < maxEarlyNotes {
			c.early = append(c.early, n)
		}
		c.mu.Unlock()
		return
	}
	ws := make([]*watcher, 0, len(c.watchers))
	for w := range c.watchers {
		ws = append(ws, w)
	}
	c.mu.Unlock()
	for _, w := range ws {
		w.send(n)
	}
}

// maxEarlyNotes bounds the notes kept for a connection's first session.
const maxEarlyNotes = 8
