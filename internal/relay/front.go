package relay

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pomdev/pomdev/internal/loopback"
	"github.com/pomdev/pomdev/internal/mcpwire"
	"github.com/pomdev/pomdev/internal/relay/access"
	"github.com/pomdev/pomdev/internal/relay/oidcrp"
	"github.com/pomdev/pomdev/internal/relay/policy"
)

// ServeHTTP is the HTTP(S) front: it routes by Host to the tunnel holding
// the route. The bare domain serves /healthz and the sign-in page.
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	defer r.recoverPanic(req)
	r.clientAddr(req)
	w = watchUnread(w, req)
	name, apex, ok := routeFromHost(req.Host, r.cfg.Domain)
	if !ok && r.cfg.SingleRoute && loopbackHost(req.Host) {
		// An embedded relay with one tunnel: a loopback Host
		// (127.0.0.1:port) reaches it, so its URL needs no DNS for
		// *.localhost. Only a loopback one: a page whose name an attacker
		// rebinds to 127.0.0.1 sends its own Host, and must not reach the
		// app (which would see the target's Host, rewritten by the tunnel).
		if only := r.onlyRoute(); only != "" {
			name, ok = only, true
		}
	}
	switch {
	case apex:
		r.serveApex(w, req)
		return
	case !ok:
		r.page(w, http.StatusNotFound, "Unknown host",
			fmt.Sprintf("%s is not a tunnel of this relay. Tunnel URLs look like %s.", req.Host, r.urlFor("name")))
		return
	}
	rt, known := r.lookup(name)
	if rt == nil {
		// The public gets one answer whether the name was ever used or
		// not, so names cannot be listed by probing; the log keeps the
		// difference.
		if known {
			r.log.Info("request for an offline tunnel", "route", name, "remote", req.RemoteAddr)
		} else {
			r.log.Debug("request for an unknown route", "route", name, "remote", req.RemoteAddr)
		}
		r.page(w, http.StatusNotFound, "No tunnel here",
			fmt.Sprintf("No tunnel is connected at this address. If it is yours, start it again (ssh -R 0 %s, or pomdev tunnel) and retry.", r.cfg.Domain))
		return
	}
	// Only the relay asserts identities.
	req.Header.Del(access.IdentityHeader)
	if r.gated(rt) {
		if access.PRMPath(req.URL.Path) {
			r.access.ServePRM(w, req, name)
			return
		}
		if r.publicPath(rt, req) {
			// A widget's asset: hosts load it in frames that cannot send
			// credentials. No token, no identity; the audit marks it.
			req.Header.Del("Authorization")
			r.serveRoute(w, req, name, rt, &access.Caller{Route: name, Owner: rt.c.fp, Public: true})
			return
		}
		r.access.Gate(w, req, name, rt.c.fp, func(req *http.Request, c access.Caller) { r.serveRoute(w, req, name, rt, &c) })
		return
	}
	r.serveRoute(w, req, name, rt, nil)
}

// serveRoute forwards an admitted request to the tunnel holding rt;
// caller is who the gate let through (nil on an ungated route).
func (r *Relay) serveRoute(w http.ResponseWriter, req *http.Request, name string, rt *route, caller *access.Caller) {
	src := hostOf(req.RemoteAddr)
	if !rt.enter(src, r.cfg.MaxStreamsPerSource) {
		w.Header().Set("Retry-After", "1")
		r.page(w, http.StatusTooManyRequests, "Too many requests",
			fmt.Sprintf("At most %d requests from one address may be in flight on a tunnel; retry when one has finished.", r.cfg.MaxStreamsPerSource))
		return
	}
	defer rt.leave(src)
	rt.requests.Add(1)
	rt.last.Store(time.Now().UnixNano())
	ctx := req.Context()
	if req.Body != nil && req.Body != http.NoBody {
		// A body too slow cancels the request to the tunnel, so the local
		// server sees it aborted rather than cut short.
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		rb := &rateBody{rc: http.NewResponseController(w), body: req.Body, grace: r.cfg.BodyGrace, rate: r.cfg.MinBodyRate, cancel: cancel}
		req.Body = rb
	}
	rt.c.active.Add(1)
	if ctx != req.Context() {
		req = req.WithContext(ctx)
	}
	// The origin address reaches the forwarded-tcpip channel's payload.
	var h http.Handler = forwarder{r: r, rt: rt, origin: req.RemoteAddr}
	var d policy.Decision
	enforced := false
	if ts := r.toolsFor(rt); !ts.Empty() {
		h, enforced = enforcing(ts, &d, h), true
	}
	ev := mcpwire.Observe(w, req, h)
	rt.c.active.Add(-1)
	ev.Route = name
	if enforced {
		// One reader for policy, events and audit: what the enforcement
		// read decides what they name.
		ev.RPCMethod, ev.Tool = d.Method, d.Tool
	}
	if d.Rule != "" {
		r.log.Info("request refused by the tool policy", "route", name, "tool", d.Denied, "rule", d.Rule, "remote", req.RemoteAddr)
		ev.Err = "policy: " + d.Rule
	}
	if caller != nil {
		decision, reason := "allow", ""
		switch {
		case d.Rule != "":
			decision, reason = "deny", d.Rule
		case d.Hidden > 0:
			reason = fmt.Sprintf("policy hid %d tools", d.Hidden)
		}
		if caller.Public && decision == "allow" {
			decision, reason = "public", "public path "+req.URL.Path
		}
		r.access.AuditRequest(*caller, ev.RPCMethod, ev.Tool, ev.Status, src, decision, reason)
	}
	rt.c.notify(note{req: &ev})
}

// loopbackHost reports whether a Host header names this machine by a
// loopback address or localhost name.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return loopback.IsLoopback(strings.Trim(host, "[]"))
}

// slowBody reports whether req ended because its body was too slow: the
// rate check cancels the request with errSlowBody before anything else
// can cancel it.
func slowBody(req *http.Request) bool {
	return errors.Is(context.Cause(req.Context()), errSlowBody)
}

// errSlowBody ends a request whose body arrives slower than the minimum
// rate.
var errSlowBody = errors.New("request body slower than the minimum rate")

// rateBody enforces a minimum rate on a request body: after n bytes, the
// next must arrive by start + grace + n/rate. A timer armed for each read
// marks the body too slow, cancels the request to the tunnel (so the
// local server sees it aborted rather than cut short) and then unblocks the
// read through the connection's read deadline. Nothing is armed once the
// body has ended, so a long response is never touched.
type rateBody struct {
	rc     *http.ResponseController
	body   io.ReadCloser
	grace  time.Duration
	rate   int64
	cancel context.CancelCauseFunc

	start   time.Time
	n       int64
	tripped atomic.Bool

	mu    sync.Mutex // guards done and timer against trip
	done  bool
	timer *time.Timer
}

func (b *rateBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return b.body.Read(p)
	}
	if b.start.IsZero() {
		b.start = time.Now()
	}
	wait := time.Until(b.start.Add(b.grace + time.Duration(b.n*int64(time.Second)/b.rate)))
	if b.timer == nil {
		b.timer = time.AfterFunc(wait, b.trip)
	} else {
		b.timer.Reset(wait)
	}
	b.mu.Unlock()

	n, err := b.body.Read(p)

	b.mu.Lock()
	defer b.mu.Unlock()
	b.timer.Stop()
	b.n += int64(n)
	if err != nil {
		b.done = true
		if b.tripped.Load() {
			err = errSlowBody
		}
	}
	return n, err
}

// trip runs when a read waited past its time.
func (b *rateBody) trip() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.tripped.Store(true)
	b.cancel(errSlowBody)
	_ = b.rc.SetReadDeadline(time.Now())
}

func (b *rateBody) Close() error { return b.body.Close() }

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

// tokenSafe reports whether the admin token may be sent to req's front:
// not in clear over a network.
func (r *Relay) tokenSafe(req *http.Request) bool {
	if req.TLS != nil || r.cfg.Scheme == "https" {
		return true
	}
	a, ok := r.cfg.HTTPListener.Addr().(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}

func (r *Relay) serveApex(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/healthz" && req.Method == http.MethodGet {
		r.serveApexPage(w, req)
		return
	}
	r.guardApex(w, req, r.serveApexPage)
}

func (r *Relay) serveApexPage(w http.ResponseWriter, req *http.Request) {
	switch {
	case req.URL.Path == "/healthz":
		w.Header().Set("Content-Type", "application/json")
		r.mu.Lock()
		n := len(r.routes)
		r.mu.Unlock()
		fmt.Fprintf(w, `{"status":"ok","tunnels":%d}`+"\n", n)
	case r.access != nil && access.Handles(req.URL.Path):
		r.access.ServeHTTP(w, req)
	case req.URL.Path == oidcrp.CallbackPath && r.rp != nil:
		r.rp.ServeCallback(w, req)
	case req.URL.Path == signinOIDCPath && r.signin != nil:
		r.serveSigninOIDC(w, req)
	case strings.HasPrefix(req.URL.Path, "/.pomdev/sign_in") && r.signin != nil:
		r.signin.servePage(w, req, r.tokenSafe(req))
	default:
		r.page(w, http.StatusNotFound, "pomdev relay",
			fmt.Sprintf("This is a pomdev relay. Open a tunnel with: ssh -R 0 -p PORT %s (or pomdev tunnel), then use the URL it prints.", r.cfg.Domain))
	}
}

// recoverPanic logs a panic of a handler at error, with the request, and
// lets net/http end the request as it does (a panic never stops the relay,
// but net/http alone would log it at debug, where no one looks).
func (r *Relay) recoverPanic(req *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	r.log.Error("panic serving a request", "panic", fmt.Sprint(v), "method", req.Method, "host", req.Host,
		"path", req.URL.Path, "remote", req.RemoteAddr, "stack", string(debug.Stack()))
	panic(http.ErrAbortHandler)
}

// page writes a small HTML (or, for clients that ask, plain text) answer
// that names the relay.
func (r *Relay) page(w http.ResponseWriter, code int, title, msg string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Pomdev-Relay", "1")
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintf(w, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>%d %s</title></head>\n<body><h1>%s</h1>\n<p>%s</p>\n<hr><p><small>pomdev relay</small></p></body></html>\n",
		code, html.EscapeString(title), html.EscapeString(title), html.EscapeString(msg))
}
