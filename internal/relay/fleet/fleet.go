// Package fleet joins the relays of one PostgreSQL store into a fleet: each
// relay (a node) announces an internal address in the store and beats
// there; a node that holds a live route records a lease on it; a request
// that reaches a node for a route another node holds is passed to that
// node over mutually authenticated TLS and answered as if it had arrived
// there. The holder's front does everything else (the gate, the tool
// policy, the audit), once.
//
// Trust needs nothing but the store: the fleet's CA is a secret of the
// store (created by the first node, or seeded from fleet_ca.pem in a
// node's state directory), and each node issues itself a certificate from
// it when it starts. A node accepts on its internal listener only
// connections whose client certificate that CA signed.
package fleet

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pomdev/pomdev/internal/bufpool"
	"github.com/pomdev/pomdev/internal/relay/front"
	"golang.org/x/time/rate"
)

// ClientHeader carries, from the node that received a request to the one
// that holds its route, the address the request came from. It is read
// only on the internal listener (whose peers the fleet's CA vouches for)
// and removed there.
const ClientHeader = "X-Pomdev-Fleet-Client"

// TLSHeader says ("1") that the request reached the first node over TLS;
// without it the holder serves the request as arrived in plain HTTP (its
// own hop is TLS either way).
const TLSHeader = "X-Pomdev-Fleet-Tls"

// Defaults.
const (
	// DefaultBeat is how often a node records that it lives.
	DefaultBeat = time.Second
	// DefaultDeadAfter is how long after its last beat a node's leases
	// stop counting: requests for its routes then find no holder.
	DefaultDeadAfter = 5 * time.Second
	// lookupTTL is how long a node remembers where a route is held (or
	// that no node holds it): the store is not asked per request.
	lookupTTL = time.Second
	// maxCached bounds the remembered lookups (random names under a
	// flood); past it they are forgotten at once.
	maxCached = 16384
	// forgetDead is when a node's row (and its leases) is deleted by the
	// others after its last beat.
	forgetDead = time.Minute
)

// Config configures a Node.
type Config struct {
	DB *sql.DB
	// Listener is the internal listener (plain TCP; the node serves TLS
	// on it) and Addr the address announced for it (its own when "").
	Listener net.Listener
	Addr     string
	// StateDir may hold fleet_ca.pem, the operator's CA, used when the
	// store has none yet.
	StateDir string
	// Handler serves the requests other nodes pass here: the front.
	Handler http.Handler
	// Gone answers a request for a route whose node left and that no
	// other node holds (the front's "no tunnel" page).
	Gone http.Handler
	// DSN is the store's URL, for the connection that listens to the
	// fleet's notifications.
	DSN string
	// Changed is told what another node changed: "revoked" (drop cached
	// token verdicts; also after notifications were lost), or "held" and
	// a route this node may hold too (its tunnel reconnected elsewhere:
	// the one here is stale).
	Changed func(kind, route string)
	Log     *slog.Logger
	// Beat and DeadAfter default to DefaultBeat and DefaultDeadAfter.
	Beat, DeadAfter time.Duration
	// LookupRate bounds the store lookups of routes not remembered, per
	// second (default 2000), and SourceLookupRate one client address's
	// (default 100): a flood of random names costs the store no more, and
	// one stranger's flood does not spend everyone's lookups.
	LookupRate, SourceLookupRate float64
}

// Node is one relay of the fleet.
type Node struct {
	cfg    Config
	id     string
	addr   string
	ca     *authority
	server *http.Server
	proxy  *httputil.ReverseProxy
	limit  *rate.Limiter            // lookups, node-wide
	bySrc  map[string]*rate.Limiter // lookups per client address; guarded by mu

	mu        sync.Mutex
	cached    map[string]where
	listening atomic.Bool  // notifications are heard
	lostAt    atomic.Int64 // when they were last lost (UnixNano)

	stop       chan struct{}
	done       chan struct{}
	listenDone chan struct{}
}

// where a route is held: addr "" is nowhere (or here).
type where struct {
	addr  string
	until time.Time
}

// Start joins the fleet of cfg.DB: it records the node, starts its beat
// and returns; Serve serves the internal listener.
func Start(cfg Config) (*Node, error) {
	if cfg.Beat <= 0 {
		cfg.Beat = DefaultBeat
	}
	if cfg.DeadAfter <= 0 {
		cfg.DeadAfter = DefaultDeadAfter
	}
	if cfg.LookupRate <= 0 {
		cfg.LookupRate = 2000
	}
	if cfg.SourceLookupRate <= 0 {
		cfg.SourceLookupRate = 100
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Gone == nil {
		cfg.Gone = http.NotFoundHandler()
	}
	if cfg.Changed == nil {
		cfg.Changed = func(string, string) {}
	}
	ca, err := loadAuthority(cfg.DB, cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("fleet CA: %w", err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	n := &Node{cfg: cfg, id: hex.EncodeToString(b), ca: ca, cached: map[string]where{},
		limit: rate.NewLimiter(rate.Limit(cfg.LookupRate), int(cfg.LookupRate)), bySrc: map[string]*rate.Limiter{},
		stop: make(chan struct{}), done: make(chan struct{}), listenDone: make(chan struct{})}
	n.addr = cfg.Addr
	if n.addr == "" {
		n.addr = cfg.Listener.Addr().String()
	}
	leaf, err := ca.issue()
	if err != nil {
		return nil, fmt.Errorf("fleet certificate: %w", err)
	}
	n.server = &http.Server{
		Handler:           http.HandlerFunc(n.serveFleet),
		TLSConfig:         ca.serverTLS(leaf),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(cfg.Log.Handler(), slog.LevelDebug),
	}
	tr := &http.Transport{
		TLSClientConfig:     ca.clientTLS(leaf),
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
		DisableCompression:  true,
	}
	n.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(pr.In.Context().Value(targetKey{}).(*attempt).target)
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(ClientHeader, pr.In.RemoteAddr)
			pr.Out.Header.Del(TLSHeader)
			if pr.In.TLS != nil {
				pr.Out.Header.Set(TLSHeader, "1")
			}
		},
		Transport:     tr,
		BufferPool:    bufpool.Proxy,
		FlushInterval: -1, // SSE events as they come
		ErrorHandler:  n.proxyError,
		ErrorLog:      slog.NewLogLogger(cfg.Log.Handler(), slog.LevelDebug),
	}
	now := time.Now().UnixMilli()
	if _, err := cfg.DB.Exec(`INSERT INTO nodes (id, addr, started, seen) VALUES ($1, $2, $3, $3)`, n.id, n.addr, now); err != nil {
		return nil, fmt.Errorf("fleet: record this node: %w", err)
	}
	go n.beat()
	go n.listen()
	cfg.Log.Info("joined the fleet", "node", n.id, "addr", n.addr)
	return n, nil
}

// ID is the node's id in the store.
func (n *Node) ID() string { return n.id }

// Addr is the internal address the node announced.
func (n *Node) Addr() string { return n.addr }

// Serve serves the internal listener until Close.
func (n *Node) Serve() error {
	err := n.server.ServeTLS(n.cfg.Listener, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close leaves the fleet: the node's row and leases go (other nodes stop
// passing requests here at once), and the internal listener closes.
func (n *Node) Close() error {
	select {
	case <-n.stop:
		return nil
	default:
	}
	close(n.stop)
	<-n.done
	<-n.listenDone
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := n.cfg.DB.ExecContext(ctx, `DELETE FROM leases WHERE node = $1`, n.id)
	if _, err2 := n.cfg.DB.ExecContext(ctx, `DELETE FROM nodes WHERE id = $1`, n.id); err == nil {
		err = err2
	}
	n.server.Close()
	n.proxy.Transport.(*http.Transport).CloseIdleConnections()
	return err
}

// beat records every Beat that the node lives, and forgets nodes dead for
// long (their rows and leases).
func (n *Node) beat() {
	defer close(n.done)
	t := time.NewTicker(n.cfg.Beat)
	defer t.Stop()
	failing := false
	for i := 0; ; i++ {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.DeadAfter)
		now := time.Now().UnixMilli()
		res, err := n.cfg.DB.ExecContext(ctx, `UPDATE nodes SET seen = $1 WHERE id = $2`, now, n.id)
		if err == nil {
			if c, _ := res.RowsAffected(); c == 0 {
				// Forgotten while the store was away: announce again,
				// and the routes held here (the relay holds them).
				_, err = n.cfg.DB.ExecContext(ctx, `INSERT INTO nodes (id, addr, started, seen) VALUES ($1, $2, $3, $3) ON CONFLICT (id) DO UPDATE SET seen = excluded.seen`, n.id, n.addr, now)
			}
		}
		if err == nil && i%30 == 0 {
			old := now - forgetDead.Milliseconds()
			_, err = n.cfg.DB.ExecContext(ctx, `DELETE FROM leases WHERE node IN (SELECT id FROM nodes WHERE seen < $1)`, old)
			if err == nil {
				_, err = n.cfg.DB.ExecContext(ctx, `DELETE FROM nodes WHERE seen < $1`, old)
			}
		}
		cancel()
		switch {
		case err != nil && !failing:
			n.cfg.Log.Warn("fleet: cannot reach the store; this node's routes are not reachable through other nodes until it can", "err", err)
			failing = true
		case err == nil && failing:
			n.cfg.Log.Info("fleet: the store is reachable again")
			failing = false
		}
	}
}

// Hold records that this node holds route (a live tunnel): requests other
// nodes get for it come here.
func (n *Node) Hold(ctx context.Context, route string) error {
	_, err := n.cfg.DB.ExecContext(ctx, `INSERT INTO leases (route, node, since) VALUES ($1, $2, $3)
		ON CONFLICT (route) DO UPDATE SET node = excluded.node, since = excluded.since`, route, n.id, time.Now().UnixMilli())
	n.forget(route)
	if err == nil {
		n.publish(changeHeld + " " + route + " " + n.id)
	}
	return err
}

// Release drops this node's lease on route (its tunnel closed).
func (n *Node) Release(ctx context.Context, route string) error {
	_, err := n.cfg.DB.ExecContext(ctx, `DELETE FROM leases WHERE route = $1 AND node = $2`, route, n.id)
	n.forget(route)
	return err
}

func (n *Node) forget(route string) {
	n.mu.Lock()
	delete(n.cached, route)
	n.mu.Unlock()
}

type targetKey struct{}

type fleetKey struct{}

// FromFleet reports whether req came from another node: it is answered
// here or not at all, never passed on again.
func FromFleet(req *http.Request) bool { return req.Context().Value(fleetKey{}) != nil }

// Remote is the handler that passes req to the node holding route, nil
// when no other node does (or req came from one). A store that cannot
// be asked gives a handler that answers 503.
func (n *Node) Remote(req *http.Request, route string) http.Handler {
	if FromFleet(req) {
		return nil
	}
	addr, err := n.holder(req.Context(), route, front.HostOf(req.RemoteAddr))
	if errors.Is(err, errBusy) {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "Too many requests for tunnels this relay does not hold; retry in a second.", http.StatusTooManyRequests)
		})
	}
	if err != nil {
		n.cfg.Log.Warn("fleet: cannot look up a route's node", "route", route, "err", err)
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "2")
			http.Error(w, "This relay cannot reach its store to find the tunnel's relay; retry shortly.", http.StatusServiceUnavailable)
		})
	}
	if addr == "" {
		return nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.pass(w, r, &attempt{route: route, target: &url.URL{Scheme: "https", Host: addr}})
	})
}

// errBusy is a lookup over its rate (the node's, or its source's).
var errBusy = errors.New("too many lookups")

// maxSources bounds the per-source limiters; a flood of addresses resets
// them all rather than growing the map.
const maxSources = 10_000

// allowLookup spends a lookup of src's and the node's.
func (n *Node) allowLookup(src string) bool {
	n.mu.Lock()
	l := n.bySrc[src]
	if l == nil {
		if len(n.bySrc) >= maxSources {
			clear(n.bySrc)
		}
		l = rate.NewLimiter(rate.Limit(n.cfg.SourceLookupRate), int(n.cfg.SourceLookupRate))
		n.bySrc[src] = l
	}
	n.mu.Unlock()
	return l.Allow() && n.limit.Allow()
}

// attempt is one request passed to a node: where to, and whether it was
// passed again after that node could not be reached.
type attempt struct {
	route  string
	target *url.URL
	again  bool
}

func (n *Node) pass(w http.ResponseWriter, r *http.Request, a *attempt) {
	n.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, a)))
}

// holder is the internal address of the live node that holds route, ""
// when none (or this one) does.
func (n *Node) holder(ctx context.Context, route, src string) (string, error) {
	now := time.Now()
	n.mu.Lock()
	w, ok := n.cached[route]
	n.mu.Unlock()
	if ok && now.Before(w.until) {
		return w.addr, nil
	}
	if !n.allowLookup(src) {
		return "", errBusy
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var id, addr string
	err := n.cfg.DB.QueryRowContext(ctx, `SELECT n.id, n.addr FROM leases l JOIN nodes n ON n.id = l.node WHERE l.route = $1 AND n.seen > $2`,
		route, now.Add(-n.cfg.DeadAfter).UnixMilli()).Scan(&id, &addr)
	switch {
	case errors.Is(err, sql.ErrNoRows), err == nil && id == n.id:
		addr = ""
	case err != nil:
		// The store does not answer: where the route was found last,
		// for CacheGrace (its node may well hold it still).
		if ok && w.addr != "" && now.Sub(w.until.Add(-lookupTTL)) < CacheGrace {
			return w.addr, nil
		}
		return "", err
	}
	n.mu.Lock()
	if len(n.cached) >= maxCached {
		clear(n.cached)
	}
	n.cached[route] = where{addr: addr, until: now.Add(lookupTTL)}
	n.mu.Unlock()
	return addr, nil
}

// proxyError answers a request the holding node did not. A node that
// cannot be dialled (it stopped, or died) was sent nothing: the store is
// asked again, and the request goes to the route's new node if it has
// one, or gets the answer for a route no relay holds. Any other failure
// is a 502: the request may have reached the node.
func (n *Node) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return // the client left
	}
	a, _ := r.Context().Value(targetKey{}).(*attempt)
	if a != nil {
		n.forgetNode(a.target.Host)
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" && !a.again {
			addr, lerr := n.holder(r.Context(), a.route, front.HostOf(r.RemoteAddr))
			switch {
			case lerr == nil && addr == "":
				n.cfg.Gone.ServeHTTP(w, r)
				return
			case lerr == nil && addr != a.target.Host:
				n.pass(w, r, &attempt{route: a.route, target: &url.URL{Scheme: "https", Host: addr}, again: true})
				return
			}
		}
	}
	n.cfg.Log.Warn("fleet: the tunnel's node did not answer", "host", r.Host, "err", err)
	w.Header().Set("Retry-After", "2")
	http.Error(w, "The relay holding this tunnel did not answer; if it stopped, the tunnel reconnects to another one shortly. Retry.", http.StatusBadGateway)
}

// forgetNode drops the lookups that led to addr.
func (n *Node) forgetNode(addr string) {
	n.mu.Lock()
	for route, w := range n.cached {
		if w.addr == addr {
			delete(n.cached, route)
		}
	}
	n.mu.Unlock()
}

// serveFleet serves a request another node passed here: from the address
// it carries, to the front, never passed on again.
func (n *Node) serveFleet(w http.ResponseWriter, req *http.Request) {
	if req.TLS == nil || len(req.TLS.VerifiedChains) == 0 {
		http.Error(w, "fleet peers only", http.StatusForbidden) // the TLS config already refuses them
		return
	}
	if a := req.Header.Get(ClientHeader); a != "" {
		if _, _, err := net.SplitHostPort(a); err == nil {
			req.RemoteAddr = a
		}
	}
	if req.Header.Get(TLSHeader) != "1" {
		req.TLS = nil
	}
	req.Header.Del(ClientHeader)
	req.Header.Del(TLSHeader)
	n.cfg.Handler.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), fleetKey{}, true)))
}

// Channel is the PostgreSQL notification channel of a fleet: what one
// node changes that the others must know within a second.
const Channel = "pomdev_fleet"

// CacheGrace is how long, with the store's notifications lost, a node
// still trusts what it cached (token verdicts): a revocation elsewhere
// reaches it through the store only.
const CacheGrace = 30 * time.Second

// Published changes (the payload's first word).
const (
	changeHeld    = "held"    // held ROUTE NODE: ROUTE's tunnel is on NODE now
	changeRevoked = "revoked" // tokens were revoked: drop cached verdicts
)

// Revoked tells every node that tokens were revoked here.
func (n *Node) Revoked() { n.publish(changeRevoked) }

func (n *Node) publish(payload string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := n.cfg.DB.ExecContext(ctx, `SELECT pg_notify($1, $2)`, Channel, payload); err != nil {
		n.cfg.Log.Warn("fleet: cannot tell the other nodes", "change", payload, "err", err)
	}
}

// Fresh reports whether the node hears the fleet's notifications, or
// lost them less than CacheGrace ago: what it cached may be used.
func (n *Node) Fresh() bool {
	return n.listening.Load() || time.Since(time.Unix(0, n.lostAt.Load())) < CacheGrace
}

// listen hears the fleet's notifications on a connection of its own,
// reconnecting when it breaks; each (re)connection first forgets what
// may have been missed.
func (n *Node) listen() {
	defer close(n.listenDone)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-n.stop; cancel() }()
	backoff := 250 * time.Millisecond
	for ctx.Err() == nil {
		err := n.listenOnce(ctx)
		if n.listening.Swap(false) {
			n.lostAt.Store(time.Now().UnixNano())
		}
		if ctx.Err() != nil {
			return
		}
		n.cfg.Log.Warn("fleet: notifications from the store lost; reconnecting", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (n *Node) listenOnce(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, n.cfg.DSN)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return err
	}
	// Heard from now on; what was published while deaf is unknown.
	n.forgetAll()
	n.cfg.Changed(changeRevoked, "")
	n.listening.Store(true)
	for {
		note, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		n.heard(note.Payload)
	}
}

// heard acts on a notification.
func (n *Node) heard(payload string) {
	f := strings.Fields(payload)
	switch {
	case len(f) == 1 && f[0] == changeRevoked:
		n.cfg.Changed(changeRevoked, "")
	case len(f) == 3 && f[0] == changeHeld:
		n.forget(f[1])
		if f[2] != n.id {
			n.cfg.Changed(changeHeld, f[1])
		}
	}
}

func (n *Node) forgetAll() {
	n.mu.Lock()
	clear(n.cached)
	n.mu.Unlock()
}
