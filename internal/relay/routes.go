package relay

import (
	"errors"
	"fmt"
	"github.com/pomdev/pomdev/internal/relay/console"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/relay/front"
	"github.com/pomdev/pomdev/internal/toolrule"
	"golang.org/x/crypto/ssh"
)

// route is a name on the HTTP front held by one connection.
type route struct {
	name     string
	static   bool
	bindAddr string // as requested in tcpip-forward
	bindPort uint32 // as requested (static) or allocated (dynamic)
	c        *conn
	url      string
	created  time.Time

	// link is the front's state: the forwarded channels carrying HTTP,
	// requests in flight per source.
	link *front.Link
}

// view is the route as a session shows it.
func (rt *route) view() *console.Route {
	return &console.Route{Name: rt.name, URL: rt.url, Static: rt.static}
}

// closeIdle closes the route's idle channels.
func (rt *route) closeIdle() { rt.link.CloseIdle() }

// The route is the front's Tunnel.
var _ front.Tunnel = (*route)(nil)

func (rt *route) Owner() string     { return rt.c.fp }
func (rt *route) AppAuth() bool     { return rt.c.appAuth.Load() }
func (rt *route) Link() *front.Link { return rt.link }
func (rt *route) Begin()            { rt.c.active.Add(1) }

func (rt *route) End(ev *event.Request) {
	rt.c.active.Add(-1)
	rt.c.notify(note{Req: ev})
}

// UpstreamHost is, as pom.run does, the target's own address for a
// dynamic route, which MCP servers' DNS-rebinding checks require; a
// static route keeps the request's Host.
func (rt *route) UpstreamHost() string {
	if rt.static {
		return ""
	}
	return rt.c.targetOf()
}

func (rt *route) PublicPath(req *http.Request) bool { return rt.c.r.publicPath(rt, req) }
func (rt *route) Tools() toolrule.ToolSet           { return rt.c.r.toolsFor(rt) }

// routeTable is the relay's routes as the front sees them.
type routeTable struct{ r *Relay }

func (t routeTable) Lookup(name string) (front.Tunnel, bool) {
	rt, known := t.r.lookup(name)
	if rt == nil {
		return nil, known
	}
	return rt, known
}

func (t routeTable) Only() string { return t.r.onlyRoute() }

// onlyRoute is the name of the single live route, "" when there are none
// or several.
func (r *Relay) onlyRoute() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.routes) != 1 {
		return ""
	}
	for name := range r.routes {
		return name
	}
	return ""
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
				c.notify(note{Log: "remote forward " + net.JoinHostPort(fr.Addr, strconv.Itoa(int(fr.Port))) + " refused: not permitted for this key (authorized_keys: restrict, no-port-forwarding or permitlisten)"})
				_ = req.Reply(false, nil)
				return
			}
			rt, err := c.r.addRoute(c, fr)
			if err != nil {
				c.log.Info("remote forward refused", "address", fr.Addr, "port", fr.Port, "err", err)
				c.notify(note{Log: "remote forward " + net.JoinHostPort(fr.Addr, strconv.Itoa(int(fr.Port))) + " refused: " + err.Error()})
				_ = req.Reply(false, nil)
				return
			}
			var payload []byte
			if fr.Port == 0 {
				payload = ssh.Marshal(forwardReply{Port: rt.bindPort})
			}
			_ = req.Reply(true, payload)
			c.log.Info("tunnel open", "route", rt.name, "url", rt.url, "static", rt.static)
			c.notify(note{Route: rt.view()})
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
		if !front.ValidLabel(fr.Addr) || fr.Addr == "localhost" {
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
	rt := &route{c: c, bindAddr: fr.Addr, bindPort: fr.Port, static: kind == "static", name: name, link: front.NewLink(r.cfg.MaxStreams)}
	if !rt.static {
		rt.bindPort = virtualPort(c.fp)
	}

	var takeover []*conn
	now := r.cfg.Now()
	// A name stays with the key that had it until it goes unused for
	// RouteNameTTL: no other key is given it, dynamic or static, by this
	// relay or any other of its store. The database decides (claim),
	// before the relay's mu is taken: routing does not wait on it.
	var learned []knownRoute
	if rt.static {
		// The policy first, so that a name the key may not hold is
		// not reserved for it.
		if err := r.mayHold(c, rt.name); err != nil {
			return nil, err
		}
		ok, held, err := r.book.claim(rt.name, c.fp, now, r.releasedByPolicy(rt.name))
		if err != nil {
			r.log.Warn("cannot claim a route name", "route", rt.name, "err", err)
			return nil, errors.New("the relay cannot reach its store of route names; try again shortly")
		}
		if !ok {
			r.mu.Lock()
			r.book.learn(held)
			r.mu.Unlock()
			return nil, fmt.Errorf("route %q belongs to another key", rt.name)
		}
	} else {
		// The key's own name, or the first alternative no other key holds.
		rt.name = ""
		for i := range maxNameTries {
			name := dynamicName(c.fp, i)
			ok, held, err := r.book.claim(name, c.fp, now, r.releasedByPolicy(name))
			if err != nil {
				r.log.Warn("cannot claim a route name", "route", name, "err", err)
				return nil, errors.New("the relay cannot reach its store of route names; try again shortly")
			}
			if ok {
				rt.name = name
				break
			}
			learned = append(learned, held)
		}
		if rt.name == "" {
			return nil, fmt.Errorf("no free route name for this key (%d tried)", maxNameTries)
		}
	}
	r.mu.Lock()
	for _, k := range learned {
		r.book.learn(k)
	}
	if r.closed {
		r.mu.Unlock()
		return nil, errors.New("relay is shutting down")
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
	// In memory too; claim wrote the row (with this time) already.
	r.book.use(rt.name, c.fp, now, r.isLive)
	r.mu.Unlock()

	c.mu.Lock()
	c.routes[rt.name] = rt
	c.mu.Unlock()
	for _, old := range takeover {
		old.log.Info("taken over by a new connection with the same key", "route", rt.name)
		_ = old.sc.Close()
	}
	r.pruneRoutes()
	r.leaseRoute(rt.name, true)
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
		r.leaseRoute(rt.name, false)
	}
}

func (r *Relay) lookup(name string) (rt *route, known bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt = r.routes[name]
	return rt, rt != nil || r.book.owner(name, r.cfg.Now()) != ""
}
