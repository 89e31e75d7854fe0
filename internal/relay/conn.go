package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/relay/access"
	"github.com/pomdev/pomdev/internal/relay/policy"
	"github.com/pomdev/pomdev/internal/socks5"
	"golang.org/x/crypto/ssh"
)

// conn is one authenticated SSH connection.
type conn struct {
	r    *Relay
	sc   *ssh.ServerConn
	fp   string
	opts *keyOptions // from authorized_keys (keys mode); nil restricts nothing
	log  *slog.Logger

	active   atomic.Int64                 // requests in flight through this connection
	sessions atomic.Int32                 // open session channels
	screen   atomic.Bool                  // a session draws the status screen
	appAuth  atomic.Bool                  // POMDEV_HTTP_AUTH=app: requests reach the app as sent
	tools    atomic.Pointer[policy.Tools] // the tunnel's own tool rules (POMDEV_TOOLS_*)

	mu      sync.Mutex
	pinging bool   // a keepalive is waiting for its answer
	missed  int    // keepalive intervals without an answer
	target  string // POMDEV_TARGET from an env request, "" for the default
	// toolsAllow and toolsDeny are the POMDEV_TOOLS_* values as sent.
	toolsAllow, toolsDeny string
	routes                map[string]*route
	watchers              map[*watcher]struct{}
}

// maxSessions is how many session channels one connection may have open.
const maxSessions = 8

// route is a name on the HTTP front held by one connection.
type route struct {
	name     string
	static   bool
	bindAddr string // as requested in tcpip-forward
	bindPort uint32 // as requested (static) or allocated (dynamic)
	c        *conn
	url      string
	created  time.Time

	// streams are the forwarded channels carrying HTTP (forward.go).
	streams *streams

	requests atomic.Int64 // served through the front
	last     atomic.Int64 // unix nanoseconds of the last request

	mu sync.Mutex
	// inFlight counts requests per source address (entries only while
	// one is in flight).
	inFlight map[string]int
}

// enter counts a request from src, unless src already has limit in flight.
func (rt *route) enter(src string, limit int) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.inFlight[src] >= limit {
		return false
	}
	if rt.inFlight == nil {
		rt.inFlight = map[string]int{}
	}
	rt.inFlight[src]++
	return true
}

func (rt *route) leave(src string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.inFlight[src]--; rt.inFlight[src] <= 0 {
		delete(rt.inFlight, src)
	}
}

// closeIdle closes the route's idle channels.
func (rt *route) closeIdle() { rt.streams.closeIdle() }

// handleConn runs the SSH handshake of nc, calling handshaken when it ends
// either way, and then serves the connection.
func (r *Relay) handleConn(nc net.Conn, handshaken func()) {
	_ = nc.SetDeadline(time.Now().Add(r.cfg.HandshakeTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(nc, r.serverConfig(nc))
	handshaken()
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
	c.log = r.log.With("fingerprint", c.fp, "remote", sc.RemoteAddr().String())
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
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
			c.handleGlobal(req)
		}
	}
	if err := c.sc.Wait(); err != nil && !errors.Is(err, io.EOF) {
		c.log.Debug("connection ended", "err", err)
	}
	c.teardown()
	c.log.Info("client disconnected")
}

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
		go func() {
			defer c.sessions.Add(-1)
			c.handleSession(nch)
		}()
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
	c.notify(note{closed: true})
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
	go func() {
		_, _, err := c.sc.SendRequest("keepalive@openssh.com", true, nil)
		c.mu.Lock()
		c.pinging = false
		if err == nil {
			c.missed = 0
		}
		c.mu.Unlock()
	}()
}

type forwardRequest struct {
	Addr string
	Port uint32
}

type forwardReply struct {
	Port uint32
}

// handleGlobal runs on the connection's loop goroutine; nothing in it
// blocks for long.
func (c *conn) handleGlobal(req *ssh.Request) {
	{
		switch req.Type {
		case "tcpip-forward":
			var fr forwardRequest
			if err := ssh.Unmarshal(req.Payload, &fr); err != nil {
				_ = req.Reply(false, nil)
				return
			}
			if !c.opts.allowsListen(fr.Addr, fr.Port) {
				c.log.Info("remote forward refused by authorized_keys options", "address", fr.Addr, "port", fr.Port)
				c.notify(note{log: "remote forward " + net.JoinHostPort(fr.Addr, strconv.Itoa(int(fr.Port))) + " refused: not permitted for this key (authorized_keys: restrict, no-port-forwarding or permitlisten)"})
				_ = req.Reply(false, nil)
				return
			}
			rt, err := c.r.addRoute(c, fr)
			if err != nil {
				c.log.Info("remote forward refused", "address", fr.Addr, "port", fr.Port, "err", err)
				c.notify(note{log: "remote forward " + net.JoinHostPort(fr.Addr, strconv.Itoa(int(fr.Port))) + " refused: " + err.Error()})
				_ = req.Reply(false, nil)
				return
			}
			var payload []byte
			if fr.Port == 0 {
				payload = ssh.Marshal(forwardReply{Port: rt.bindPort})
			}
			_ = req.Reply(true, payload)
			c.log.Info("tunnel open", "route", rt.name, "url", rt.url, "static", rt.static)
			c.notify(note{route: rt})
		case "cancel-tcpip-forward":
			var fr forwardRequest
			if err := ssh.Unmarshal(req.Payload, &fr); err != nil {
				_ = req.Reply(false, nil)
				return
			}
			rt := c.findRoute(fr)
			if rt == nil {
				_ = req.Reply(false, nil)
				return
			}
			c.mu.Lock()
			delete(c.routes, rt.name)
			c.mu.Unlock()
			c.r.releaseRoute(rt)
			_ = req.Reply(true, nil)
			c.log.Info("tunnel closed by client", "route", rt.name)
		case "keepalive@openssh.com":
			_ = req.Reply(true, nil)
		default:
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}
}

func (c *conn) findRoute(fr forwardRequest) *route {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rt := range c.routes {
		if rt.bindAddr == fr.Addr && (rt.bindPort == fr.Port || (!rt.static && fr.Port == 0)) {
			return rt
		}
	}
	return nil
}

func isDynamicAddr(a string) bool {
	switch a {
	case "", "*", "localhost", "0.0.0.0", "::":
		return true
	}
	return false
}

// classifyForward says what a tcpip-forward asks for: a dynamic route
// (address localhost, "", * or a wildcard, port 0), named after the key,
// or a static route NAME on port 80 or 443.
func classifyForward(fr forwardRequest, fp string) (kind, name string, err error) {
	switch {
	case isDynamicAddr(fr.Addr) && fr.Port == 0:
		return "dynamic", dynamicName(fp, 0), nil
	case fr.Port == 80 || fr.Port == 443:
		if !validLabel(fr.Addr) || fr.Addr == "localhost" {
			return "", "", fmt.Errorf("%q is not a valid route name (lowercase letters, digits and -, at most 63)", fr.Addr)
		}
		return "static", fr.Addr, nil
	default:
		return "", "", errors.New("use -R 0 (dynamic) or -R NAME:80:HOST:PORT (static)")
	}
}

// addRoute registers the route a tcpip-forward asks for.
func (r *Relay) addRoute(c *conn, fr forwardRequest) (*route, error) {
	kind, name, err := classifyForward(fr, c.fp)
	if err != nil {
		return nil, err
	}
	rt := &route{c: c, bindAddr: fr.Addr, bindPort: fr.Port, static: kind == "static", name: name, streams: newStreams(r.cfg.MaxStreams)}
	if !rt.static {
		rt.bindPort = virtualPort(c.fp)
	}

	var takeover []*conn
	now := r.cfg.Now()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errors.New("relay is shutting down")
	}
	// A name stays with the key that had it until it goes unused for
	// RouteNameTTL: no other key is given it, dynamic or static.
	if rt.static {
		if owner := r.reservedFor(rt.name, now); owner != "" && owner != c.fp {
			r.mu.Unlock()
			return nil, fmt.Errorf("route %q belongs to another key", rt.name)
		}
	} else {
		// The key's own name, or the first alternative no other key holds.
		rt.name = ""
		for i := range maxNameTries {
			name := dynamicName(c.fp, i)
			if owner := r.reservedFor(name, now); owner == "" || owner == c.fp {
				rt.name = name
				break
			}
		}
		if rt.name == "" {
			r.mu.Unlock()
			return nil, fmt.Errorf("no free route name for this key (%d tried)", maxNameTries)
		}
	}
	if old, ok := r.routes[rt.name]; ok {
		if old.c.fp != c.fp {
			r.mu.Unlock()
			return nil, fmt.Errorf("route %q is in use by another key", rt.name)
		}
		if old.c != c {
			// The same key reconnected: its old connection is stale.
			takeover = append(takeover, old.c)
		} else {
			r.mu.Unlock()
			return nil, fmt.Errorf("route %q is already forwarded on this connection", rt.name)
		}
	}
	held := 0
	for _, other := range r.routes {
		if other.c.fp == c.fp && other.c != c && !contains(takeover, other.c) {
			held++
		}
	}
	c.mu.Lock()
	held += len(c.routes)
	c.mu.Unlock()
	if held >= r.cfg.MaxTunnelsPerKey {
		r.mu.Unlock()
		return nil, fmt.Errorf("this key already holds %d tunnels (the limit)", held)
	}
	if err := r.mayHold(c, rt.name); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	rt.url = r.urlFor(rt.name)
	rt.created = time.Now()
	r.routes[rt.name] = rt
	k := r.book.use(rt.name, c.fp, now, r.isLive)
	r.mu.Unlock()

	c.mu.Lock()
	c.routes[rt.name] = rt
	c.mu.Unlock()
	for _, old := range takeover {
		old.log.Info("taken over by a new connection with the same key", "route", rt.name)
		_ = old.sc.Close()
	}
	r.saveRoute(k)
	return rt, nil
}

// maxNameTries bounds the search for a dynamic name: the key's own name
// and alternatives when other keys hold it.
const maxNameTries = 64

// isLive reports whether a route of that name is connected; the caller
// holds mu.
func (r *Relay) isLive(name string) bool {
	_, ok := r.routes[name]
	return ok
}

func contains(cs []*conn, c *conn) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

// releaseRoute removes rt if it is still the live holder of its name.
func (r *Relay) releaseRoute(rt *route) {
	var k knownRoute
	r.mu.Lock()
	cur, ok := r.routes[rt.name]
	if ok && cur == rt {
		delete(r.routes, rt.name)
		// The name was last used now, not when the tunnel opened.
		k = r.book.use(rt.name, rt.c.fp, r.cfg.Now(), r.isLive)
	}
	r.mu.Unlock()
	rt.closeIdle()
	if k.Name != "" {
		r.saveRoute(k)
	}
}

func (r *Relay) lookup(name string) (rt *route, known bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt = r.routes[name]
	return rt, rt != nil || r.book.owner(name, r.cfg.Now()) != ""
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

// errTunnel marks failures to open a channel: the client is gone.
type errTunnel struct{ err error }

func (e *errTunnel) Error() string { return "tunnel offline: " + e.err.Error() }
func (e *errTunnel) Unwrap() error { return e.err }

// errTarget marks a SOCKS failure: the client could not reach the target.
type errTarget struct {
	target string
	err    error
}

func (e *errTarget) Error() string {
	return "local server not reachable on " + e.target + ": " + e.err.Error()
}
func (e *errTarget) Unwrap() error { return e.err }

type forwardedTCPPayload struct {
	Addr       string
	Port       uint32
	OriginAddr string
	OriginPort uint32
}

// dial opens a forwarded-tcpip channel for rt and, for dynamic routes,
// runs the SOCKS5 CONNECT to the target inside it.
func (rt *route) dial(ctx context.Context, origin string) (net.Conn, error) {
	oh, op := "127.0.0.1", 0
	if h, p, err := net.SplitHostPort(origin); err == nil {
		oh = h
		op, _ = strconv.Atoi(p)
	}
	payload := ssh.Marshal(forwardedTCPPayload{Addr: rt.bindAddr, Port: rt.bindPort, OriginAddr: oh, OriginPort: uint32(op)})
	type result struct {
		ch  ssh.Channel
		err error
	}
	done := make(chan result, 1)
	go func() {
		for attempt := 0; ; attempt++ {
			ch, reqs, err := rt.c.sc.OpenChannel("forwarded-tcpip", payload)
			if err == nil {
				go ssh.DiscardRequests(reqs)
			}
			// A client learns a dynamic forward's port from the reply to
			// tcpip-forward; a request racing that reply is refused as an
			// unknown forward. Retry briefly while the route is new.
			var oce *ssh.OpenChannelError
			if err != nil && errors.As(err, &oce) && attempt < 20 && time.Since(rt.created) < 2*time.Second {
				time.Sleep(25 * time.Millisecond)
				continue
			}
			done <- result{ch, err}
			return
		}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		go func() {
			if r := <-done; r.err == nil {
				_ = r.ch.Close()
			}
		}()
		return nil, ctx.Err()
	}
	if res.err != nil {
		return nil, &errTunnel{res.err}
	}
	cc := &chanConn{Channel: res.ch, local: rt.c.sc.LocalAddr(), remote: rt.c.sc.RemoteAddr()}
	if rt.static {
		return cc, nil
	}
	target := rt.c.targetOf()
	host, port, _ := splitTarget(target)
	errc := make(chan error, 1)
	go func() { errc <- socks5.Connect(cc, host, port) }()
	select {
	case err := <-errc:
		if err != nil {
			_ = cc.Close()
			return nil, &errTarget{target: target, err: err}
		}
	case <-ctx.Done():
		_ = cc.Close()
		return nil, ctx.Err()
	}
	return cc, nil
}

// chanConn adapts an ssh.Channel to net.Conn for http.Transport. Deadlines
// are not supported by channels; the transport does not need them.
type chanConn struct {
	ssh.Channel
	local, remote net.Addr
}

func (c *chanConn) LocalAddr() net.Addr                { return c.local }
func (c *chanConn) RemoteAddr() net.Addr               { return c.remote }
func (c *chanConn) SetDeadline(t time.Time) error      { return nil }
func (c *chanConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *chanConn) SetWriteDeadline(t time.Time) error { return nil }

// note is what a connection tells its watchers (status sessions).
type note struct {
	route  *route
	req    *event.Request
	access *access.Request
	log    string
	closed bool
}

func (c *conn) notify(n note) {
	c.mu.Lock()
	ws := make([]*watcher, 0, len(c.watchers))
	for w := range c.watchers {
		ws = append(ws, w)
	}
	c.mu.Unlock()
	for _, w := range ws {
		w.send(n)
	}
}
