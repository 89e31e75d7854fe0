// Package front is the relay's HTTP(S) front: it routes a request by Host
// to the tunnel holding the name and passes it through one chain — the
// OAuth gate, per-source limits, the tool policy, observation, and the
// forwarder that carries it on the tunnel's channels. The relay's core
// gives it tunnels through the Tunnels interface; nothing here knows SSH,
// so the front is tested over net.Pipe tunnels.
package front

import (
	"context"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/loopback"
	"github.com/pomdev/pomdev/internal/mcpwire"
	"github.com/pomdev/pomdev/internal/relay/access"
	"github.com/pomdev/pomdev/internal/relay/policy"
	"github.com/pomdev/pomdev/internal/taskgroup"
	"github.com/pomdev/pomdev/internal/toolrule"
)

// Tunnel is one live route as the front sees it.
type Tunnel interface {
	// Owner is the fingerprint of the SSH key holding the route.
	Owner() string
	// AppAuth reports that the app authenticates its own requests
	// (POMDEV_HTTP_AUTH=app): the gate lets them through as sent.
	AppAuth() bool
	// PublicPath reports whether req is for one of the asset paths the
	// tunnel serves without a token (already checked against the
	// relay's policy).
	PublicPath(req *http.Request) bool
	// Tools is the tool rules in force on the route.
	Tools() toolrule.ToolSet
	// UpstreamHost is the Host the app sees; "" keeps the request's.
	UpstreamHost() string
	// Dial opens a byte stream to the app for a request from origin (the
	// public client's address). Failures are *OfflineError or
	// *TargetError where they are the tunnel's.
	Dial(ctx context.Context, origin string) (net.Conn, error)
	// Link is the front's own state for the tunnel.
	Link() *Link
	// Begin is called as a request enters the tunnel, End with what
	// happened once it has ended.
	Begin()
	End(ev *event.Request)
}

// Tunnels is the relay's route table.
type Tunnels interface {
	// Lookup is the live tunnel named name (nil when none); known
	// reports a name that is reserved for a key even while offline.
	Lookup(name string) (t Tunnel, known bool)
	// Only is the name of the single live route, "" when there are none
	// or several.
	Only() string
}

// Config is what the front needs of the relay.
type Config struct {
	// Domain is the relay's domain: NAME.Domain reaches a route, Domain
	// itself the relay's own pages.
	Domain string
	// Scheme is the public scheme ("https" behind a TLS proxy).
	Scheme string
	// URLFor is the public URL of a route ("" for the relay itself).
	URLFor func(name string) string
	// SingleRoute lets a loopback Host reach the only live route.
	SingleRoute bool
	// MaxStreamsPerSource bounds one address's requests in flight on one
	// tunnel.
	MaxStreamsPerSource int
	// MinBodyRate (bytes/s) after BodyGrace ends request bodies that
	// arrive slower.
	MinBodyRate int64
	BodyGrace   time.Duration
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client.
	TrustedProxies []netip.Prefix

	Tunnels Tunnels
	// Access is the OAuth gate; nil serves every route ungated.
	Access *access.Server
	// Apex serves the relay's own pages (the bare domain).
	Apex http.Handler
	// Remote, when set, is the handler of a route no tunnel here holds
	// (nil: none): another relay of the fleet that holds it.
	Remote func(req *http.Request, name string) http.Handler
	Log    *slog.Logger
}

// Front is the http.Handler of the relay's public listener.
type Front struct {
	cfg Config
	log *slog.Logger

	// tasks are the goroutines the front starts beside request handlers
	// (idle channel watchers, large bodies written, upgraded copies);
	// once closed (quit), it starts none.
	tasks taskgroup.Group
	quit  chan struct{}
}

// New is a front for cfg.
func New(cfg Config) *Front {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxStreamsPerSource <= 0 {
		cfg.MaxStreamsPerSource = 32
	}
	if cfg.MinBodyRate <= 0 {
		cfg.MinBodyRate = 1
	}
	return &Front{cfg: cfg, log: cfg.Log, quit: make(chan struct{})}
}

// spawn runs fn on a goroutine Wait waits for; once the front is closed
// it runs nothing and reports false.
func (f *Front) spawn(fn func()) bool { return f.tasks.Go(fn) }

// Close makes the front start nothing more and ends upgraded connections
// whose tunnel side has ended. Wait then returns once the front's
// goroutines have (their tunnels' channels closed).
func (f *Front) Close() {
	if f.tasks.Close() {
		close(f.quit)
	}
}

// Wait waits for the goroutines the front started.
func (f *Front) Wait() { f.tasks.Wait() }

// ServeHTTP routes req by Host: the bare domain to the relay's own pages,
// a route's name to its tunnel.
func (f *Front) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	defer f.recoverPanic(req)
	f.clientAddr(req)
	w = watchUnread(w, req)
	name, apex, ok := RouteFromHost(req.Host, f.cfg.Domain)
	if !ok && f.cfg.SingleRoute && loopbackHost(req.Host) {
		// An embedded relay with one tunnel: a loopback Host
		// (127.0.0.1:port) reaches it, so its URL needs no DNS for
		// *.localhost. Only a loopback one: a page whose name an attacker
		// rebinds to 127.0.0.1 sends its own Host, and must not reach the
		// app (which would see the target's Host, rewritten by the tunnel).
		if only := f.cfg.Tunnels.Only(); only != "" {
			name, ok = only, true
		}
	}
	switch {
	case apex:
		// Only the relay asserts identities, on its own pages too.
		req.Header.Del(access.IdentityHeader)
		f.cfg.Apex.ServeHTTP(w, req)
		return
	case !ok:
		Page(w, http.StatusNotFound, "Unknown host",
			fmt.Sprintf("%s is not a tunnel of this relay. Tunnel URLs look like %s.", req.Host, f.cfg.URLFor("name")))
		return
	}
	t, known := f.cfg.Tunnels.Lookup(name)
	if t == nil && f.cfg.Remote != nil {
		if h := f.cfg.Remote(req, name); h != nil {
			// Another relay of the fleet holds it: its front does the
			// rest (gate, policy, audit), once.
			h.ServeHTTP(w, req)
			return
		}
	}
	if t == nil {
		// The public gets one answer whether the name was ever used or
		// not, so names cannot be listed by probing; the log keeps the
		// difference.
		if known {
			f.log.Info("request for an offline tunnel", "route", name, "remote", req.RemoteAddr)
		} else {
			f.log.Debug("request for an unknown route", "route", name, "remote", req.RemoteAddr)
		}
		f.NoTunnel(w, req)
		return
	}
	// Only the relay asserts identities.
	req.Header.Del(access.IdentityHeader)
	if f.cfg.Access == nil || t.AppAuth() {
		f.serve(w, req, name, t, nil)
		return
	}
	if access.PRMPath(req.URL.Path) {
		f.cfg.Access.ServePRM(w, req, name)
		return
	}
	if t.PublicPath(req) {
		// A widget's asset: hosts load it in frames that cannot send
		// credentials. No token, no identity; the audit marks it.
		req.Header.Del("Authorization")
		f.serve(w, req, name, t, &access.Caller{Route: name, Owner: t.Owner(), Public: true})
		return
	}
	f.cfg.Access.Gate(w, req, name, t.Owner(), func(req *http.Request, c access.Caller) { f.serve(w, req, name, t, &c) })
}

// NoTunnel is the answer for a route no tunnel holds, whether its name
// was ever used or not.
func (f *Front) NoTunnel(w http.ResponseWriter, _ *http.Request) {
	Page(w, http.StatusNotFound, "No tunnel here",
		fmt.Sprintf("No tunnel is connected at this address. If it is yours, start it again (ssh -R 0 %s, or pomdev tunnel) and retry.", f.cfg.Domain))
}

// serve is the chain after the gate: per-source limits, the tool policy,
// observation, the forwarder; caller is who the gate let through (nil on
// an ungated route).
func (f *Front) serve(w http.ResponseWriter, req *http.Request, name string, t Tunnel, caller *access.Caller) {
	src := HostOf(req.RemoteAddr)
	link := t.Link()
	if !link.enter(src, f.cfg.MaxStreamsPerSource) {
		w.Header().Set("Retry-After", "1")
		Page(w, http.StatusTooManyRequests, "Too many requests",
			fmt.Sprintf("At most %d requests from one address may be in flight on a tunnel; retry when one has finished.", f.cfg.MaxStreamsPerSource))
		return
	}
	defer link.leave(src)
	link.requests.Add(1)
	link.last.Store(time.Now().UnixNano())
	ctx := req.Context()
	if req.Body != nil && req.Body != http.NoBody {
		// A body too slow cancels the request to the tunnel, so the local
		// server sees it aborted rather than cut short.
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		req.Body = MinRate(w, req.Body, f.cfg.BodyGrace, f.cfg.MinBodyRate, cancel)
		req = req.WithContext(ctx)
	}
	t.Begin()
	// The forwarder's outcome comes back here, whatever wraps its writer.
	var out outcome
	fw := forwarder{f: f, t: t, link: link, origin: req.RemoteAddr}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { out = fw.serve(w, req) })
	var d policy.Decision
	ts := t.Tools()
	if !ts.Empty() {
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { d = policy.Enforce(w, req, ts, next) })
	}
	ev := mcpwire.Observe(w, req, h)
	ev.Route = name
	if out.status != 0 {
		ev.Status = out.status
	}
	if out.err != nil {
		ev.Err = out.err.Error()
	}
	if !ts.Empty() {
		// One reader for policy, events and audit: what the enforcement
		// read decides what they name.
		ev.RPCMethod, ev.Tool, ev.Partial = d.Method, d.Tool, false
	}
	if d.Rule != "" {
		f.log.Info("request refused by the tool policy", "route", name, "tool", d.Denied, "rule", d.Rule, "remote", req.RemoteAddr)
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
		if ev.Partial && ev.Tool != "" && reason == "" {
			// Read from a large body's head: what follows could name
			// another tool to the app (a route with tool rules reads
			// bodies whole).
			reason = fmt.Sprintf("tool name from the body's first %d bytes, unverified", mcpwire.PeekLimit)
		}
		f.cfg.Access.AuditRequest(*caller, ev.RPCMethod, ev.Tool, ev.Status, src, decision, reason)
	}
	t.End(&ev)
}

// HostOf is an address without its port: the source address that limits
// are counted by, and the client IP of X-Forwarded-For.
func HostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// loopbackHost reports whether a Host header names this machine by a
// loopback address or localhost name.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return loopback.IsLoopback(strings.Trim(host, "[]"))
}

// recoverPanic logs a panic of a handler at error, with the request, and
// lets net/http end the request as it does (a panic never stops the relay,
// but net/http alone would log it at debug, where no one looks).
func (f *Front) recoverPanic(req *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	f.log.Error("panic serving a request", "panic", fmt.Sprint(v), "method", req.Method, "host", req.Host,
		"path", req.URL.Path, "remote", req.RemoteAddr, "stack", string(debug.Stack()))
	panic(http.ErrAbortHandler)
}

// Page writes a small HTML answer that names the relay.
func Page(w http.ResponseWriter, code int, title, msg string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Pomdev-Relay", "1")
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintf(w, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>%d %s</title></head>\n<body><h1>%s</h1>\n<p>%s</p>\n<hr><p><small>pomdev relay</small></p></body></html>\n",
		code, html.EscapeString(title), html.EscapeString(title), html.EscapeString(msg))
}

// RouteFromHost returns the route name addressed by an HTTP Host value
// ("name.domain" with an optional port), apex=true for the bare domain.
func RouteFromHost(host, domain string) (name string, apex, ok bool) {
	h := strings.ToLower(host)
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	if h == d {
		return "", true, true
	}
	if !strings.HasSuffix(h, "."+d) {
		return "", false, false
	}
	name = strings.TrimSuffix(h, "."+d)
	if !ValidLabel(name) {
		return "", false, false
	}
	return name, false, true
}

// ValidLabel reports whether s is a DNS label usable as a route name:
// 1 to 63 lowercase letters, digits and hyphens, not starting or ending
// with a hyphen.
func ValidLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
