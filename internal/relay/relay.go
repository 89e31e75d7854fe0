// Package relay is pomdev's self-hostable, pom.run-compatible tunnel relay:
// an SSH server that accepts reverse forwards (dynamic, with SOCKS5 inside
// each forwarded channel, or static by route name) and an HTTP(S) front
// that routes requests by Host to the tunnel holding the route. It also
// owns sign-in (keyboard-interactive with a link approved in a browser or
// with `pomdev relay approve`) and what a connected client sees: a status
// screen on a PTY, plain lines without one, JSON events on request.
//
// A Relay has no globals and takes its listeners from the caller, so
// `pomdev up --relay local` can run one in-process on loopback.
package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"github.com/pomdev/pomdev/internal/relay/control"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pomdev/pomdev/internal/relay/access"
	"github.com/pomdev/pomdev/internal/relay/fleet"
	"github.com/pomdev/pomdev/internal/relay/front"
	"github.com/pomdev/pomdev/internal/relay/oidcrp"
	"github.com/pomdev/pomdev/internal/relay/policy"
	relaystore "github.com/pomdev/pomdev/internal/relay/store"
	"github.com/pomdev/pomdev/internal/relayrule"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sync/errgroup"
)

// Authentication modes.
const (
	AuthOpen   = "open"
	AuthKeys   = "keys"
	AuthSignin = "signin"
)

// Config configures a Relay. SSHListener, HTTPListener and StateDir are
// required; zero values elsewhere take the documented defaults.
type Config struct {
	SSHListener  net.Listener
	HTTPListener net.Listener
	// Domain routes are under: <route>.<domain>. Default "localhost".
	Domain string
	// Scheme of printed URLs: http or https (default https when TLS is
	// set, else http).
	Scheme string
	// PublicPort in printed URLs; 0 means the HTTP listener's port. The
	// port is left out when it is the scheme's default.
	PublicPort int
	// StateDir holds the host key, admin token, the control socket and,
	// without Store, relay.db (route names, sign-in sessions, OAuth state).
	StateDir string
	// Store, when set, is the PostgreSQL database (postgres://…) that
	// holds what relay.db would: relays given the same store share it.
	Store string
	// FleetAddr is where a relay on a PostgreSQL store listens for the
	// requests other relays of the store pass it (mutual TLS with the
	// fleet's CA); default: the HTTP listener's host, a free port.
	FleetAddr string
	// Auth is open, keys or signin (default open).
	Auth string
	// AuthorizedKeys is the OpenSSH authorized_keys file for keys mode.
	AuthorizedKeys string
	// DefaultTarget is what dynamic forwards CONNECT to (default
	// localhost:8080); a client overrides it with the env request
	// POMDEV_TARGET=host:port.
	DefaultTarget string
	// TLS, when set, serves HTTPS on the HTTP listener.
	TLS *tls.Config
	// SingleRoute sends requests whose Host names no route to the only live
	// route (pomdev up --relay local: http://127.0.0.1:<port> works without
	// DNS for *.localhost).
	SingleRoute bool

	SessionTTL        time.Duration // sign-in validity per key (24h)
	CodeTTL           time.Duration // sign-in code validity (15m)
	KeepaliveInterval time.Duration // server pings (15s)
	KeepaliveMax      int           // missed pings before a client is dropped (3)
	MaxTunnelsPerKey  int           // routes one key may hold at once (8)
	// TrustedProxies are proxies in front of the HTTP front: a request
	// from one has its client taken from X-Forwarded-For (clientip.go).
	TrustedProxies []netip.Prefix
	MaxStreams     int // concurrent channels per tunnel (128)
	// MaxStreamsPerSource bounds one source address's requests in flight
	// on one tunnel (MaxStreams/4, at least 4), so no client can take all
	// of a tunnel's streams. Behind a proxy every request has the proxy's
	// address: raise it to MaxStreams there.
	MaxStreamsPerSource int
	// A request body must arrive at MinBodyRate bytes/s (4096) after a
	// grace of BodyGrace (10s) from its first read, or the request ends
	// with 408: slow uploads cannot hold a tunnel's streams.
	MinBodyRate int64
	BodyGrace   time.Duration
	// RouteNameTTL is how long a route name stays reserved for its key
	// after its last use (90 days); MaxRouteNames bounds the names kept
	// (100,000; past it the least recently used offline names go).
	RouteNameTTL     time.Duration
	MaxRouteNames    int
	HandshakeTimeout time.Duration // SSH handshake without sign-in (30s)
	// MaxStartups bounds the connections still in their SSH handshake
	// (not yet authenticated), relay-wide (128) and per source address
	// (MaxStartupsPerSource, 16), as OpenSSH's MaxStartups and
	// PerSourceMaxStartups do; connections past either are closed at once.
	MaxStartups          int
	MaxStartupsPerSource int
	// RekeyThreshold is how many bytes the relay sends or receives before
	// it asks for new keys (0: x/crypto's default for the cipher, 1 GiB or
	// more).
	RekeyThreshold uint64

	// HTTPAuth is how the public front authorizes requests: owner (OAuth
	// grants the tunnel's owner approves; the default on a non-loopback
	// front) or none (the default on loopback).
	HTTPAuth string
	// AllowAppAuth lets a tunnel ask (POMDEV_HTTP_AUTH=app) that its app
	// get requests as sent, Authorization included, to do its own OAuth.
	AllowAppAuth bool
	// OwnerApproval, with HTTPAuth oidc, also asks the tunnel's owner to
	// approve each app once its person has signed in and is allowed.
	OwnerApproval bool
	GrantTTL      time.Duration // remembered approval per (owner key, client) (30 days)
	AccessTTL     time.Duration // access token lifetime (1 h)
	// FetchRoots are the CAs trusted for client metadata documents (nil:
	// the system's; tests set their own).
	FetchRoots *x509.CertPool

	// PolicyFile is the policy file (policy.yaml): who may open tunnels,
	// which names they may hold, which tools may be called. It is reloaded
	// when it changes; "" is no policy.
	PolicyFile string
	// OIDC, when its Issuer is set, signs people in with an OpenID Connect
	// provider: SSH sign-in links (Auth signin) lead through it and bind the
	// key to the person (sub, email), whom the policy can name.
	OIDC oidcrp.Config

	Logger *slog.Logger
	Now    func() time.Time
}

func (c *Config) setDefaults() error {
	if c.SSHListener == nil || c.HTTPListener == nil {
		return errors.New("relay: both listeners are required")
	}
	if c.StateDir == "" {
		return errors.New("relay: a state directory is required")
	}
	if c.Domain == "" {
		c.Domain = relayrule.DefaultDomain
	}
	if c.Scheme == "" {
		c.Scheme = "http"
		if c.TLS != nil {
			c.Scheme = "https"
		}
	}
	if c.Scheme != "http" && c.Scheme != "https" {
		return fmt.Errorf("relay: relay.public_url_scheme %q is not http or https", c.Scheme)
	}
	if c.PublicPort == 0 {
		if a, ok := c.HTTPListener.Addr().(*net.TCPAddr); ok {
			c.PublicPort = a.Port
		}
	}
	if c.Auth == "" {
		c.Auth = AuthOpen
	}
	switch c.Auth {
	case AuthOpen, AuthSignin, AuthKeys:
	default:
		return fmt.Errorf("relay: relay.auth %q is not one of open, keys, signin", c.Auth)
	}
	if c.DefaultTarget == "" {
		c.DefaultTarget = relayrule.DefaultTarget
	}
	if _, _, err := splitTarget(c.DefaultTarget); err != nil {
		return fmt.Errorf("relay: relay.default_target: %w", err)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.SessionTTL, relayrule.DefaultSessionTTL)
	def(&c.CodeTTL, 15*time.Minute)
	def(&c.KeepaliveInterval, relayrule.DefaultKeepaliveInterval)
	def(&c.HandshakeTimeout, 30*time.Second)
	if c.KeepaliveMax <= 0 {
		c.KeepaliveMax = 3
	}
	if c.MaxTunnelsPerKey <= 0 {
		c.MaxTunnelsPerKey = relayrule.DefaultMaxTunnelsPerKey
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 128
	}
	def(&c.RouteNameTTL, relayrule.DefaultRouteNameTTL)
	def(&c.GrantTTL, relayrule.DefaultGrantTTL)
	if c.MaxRouteNames <= 0 {
		c.MaxRouteNames = 100_000
	}
	if c.MaxStreamsPerSource <= 0 {
		c.MaxStreamsPerSource = max(4, c.MaxStreams/4)
	}
	if c.MinBodyRate <= 0 {
		c.MinBodyRate = 4096
	}
	def(&c.BodyGrace, 10*time.Second)
	if c.MaxStartups <= 0 {
		c.MaxStartups = 128
	}
	if c.MaxStartupsPerSource <= 0 {
		c.MaxStartupsPerSource = 16
	}
	if c.HTTPAuth == "" {
		c.HTTPAuth = HTTPAuthOwner
		if a, ok := c.HTTPListener.Addr().(*net.TCPAddr); ok && a.IP.IsLoopback() {
			c.HTTPAuth = HTTPAuthNone
		}
	}
	if c.HTTPAuth != HTTPAuthOwner && c.HTTPAuth != HTTPAuthNone && c.HTTPAuth != HTTPAuthOIDC {
		return fmt.Errorf("relay: relay.http_auth %q is not owner, oidc or none", c.HTTPAuth)
	}
	// The cross-field rules are pomdev.yaml's (relayrule): the CLI has
	// checked them already, with where each value came from.
	var errs []error
	for _, p := range relayrule.Check(relayrule.Settings{Auth: c.Auth, AuthorizedKeys: c.AuthorizedKeys, HTTPAuth: c.HTTPAuth,
		OIDCIssuer: c.OIDC.Issuer, OIDCClientID: c.OIDC.ClientID, OwnerApproval: c.OwnerApproval, Store: c.Store, FleetAddr: c.FleetAddr}) {
		errs = append(errs, fmt.Errorf("relay: %w", p))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

func splitTarget(s string) (string, int, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil || h == "" || strings.ContainsFunc(h, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return "", 0, fmt.Errorf("%q is not host:port", s)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("%q has an invalid port", s)
	}
	return h, n, nil
}

// Relay is a running relay.
//
// Lock order: Relay.mu, then conn.mu, then route.mu (addRoute holds mu
// while it counts a connection's routes); Relay.startMu is taken alone.
// No lock is held while calling the access server, writing to a channel
// or the database (but for pruning route names past MaxRouteNames, rare,
// under mu), or sending to a watcher (sends never block), and the
// access server holds none of its own while it calls back into the relay
// (Resolver).
type Relay struct {
	apex       *apexGate // bounds the relay's own endpoints (apexguard.go)
	cfg        Config
	log        *slog.Logger
	hostKey    ssh.Signer
	sshConfig  *ssh.ServerConfig
	keys       *authorizedKeys
	signin     *signin
	access     *access.Server // nil with HTTPAuth none
	adminToken string         // decides sign-ins and access requests on the relay's pages
	db         *sql.DB        // relay.db or Store: route names, sign-in sessions, OAuth state
	front      *front.Front
	http       *http.Server
	control    *http.Server
	controlLn  net.Listener
	policy     *policy.Watcher   // nil without a policy file
	rp         *oidcrp.RP        // nil without an identity provider
	fleet      *fleet.Node       // nil but on a PostgreSQL store
	readiness  relaystore.Pinger // the store's last answer, for /readyz

	mu     sync.Mutex
	routes map[string]*route  // live routes by name
	book   *routeBook         // route name -> key, persisted; its map is guarded by mu
	conns  map[*conn]struct{} // live SSH connections
	closed bool
	// wg tracks every connection's goroutines (handshake, serve loop);
	// Shutdown waits for them.
	wg sync.WaitGroup
	// ctx is the relay's root: cancelled by Shutdown, the parent of each
	// connection's.
	ctx    context.Context
	cancel context.CancelFunc

	screens atomic.Int32 // status screens drawn (maxScreens)

	// startMu guards the handshakes in progress; it is never held with mu.
	startMu       sync.Mutex
	startups      int
	startupsBySrc map[string]int
}

// Info is what a started relay tells its operator.
type Info struct {
	HostKeyFingerprint string
	HostKeyCreated     bool
	AdminToken         string // signin mode only
	AdminTokenCreated  bool
}

// New prepares a relay: state directory, host key, authentication.
func New(cfg Config) (*Relay, Info, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, Info{}, err
	}
	if err := ensureStateDir(cfg.StateDir); err != nil {
		return nil, Info{}, err
	}
	r := &Relay{
		apex:   newApexGate(),
		cfg:    cfg,
		log:    cfg.Logger,
		routes: map[string]*route{},
		conns:  map[*conn]struct{}{},

		startupsBySrc: map[string]int{},
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	var info Info
	var err error
	if r.db, err = relaystore.Open(cfg.StateDir, cfg.Store); err != nil {
		return nil, Info{}, fmt.Errorf("relay: %w", err)
	}
	r.readiness.DB = r.db
	r.hostKey, info.HostKeyCreated, err = loadOrCreateHostKey(cfg.StateDir, r.db)
	if err != nil {
		r.db.Close()
		return nil, Info{}, err
	}
	info.HostKeyFingerprint = ssh.FingerprintSHA256(r.hostKey.PublicKey())
	if r.book, err = openRouteBook(r.db, cfg.StateDir, cfg.RouteNameTTL, cfg.MaxRouteNames, cfg.Now()); err != nil {
		r.db.Close()
		return nil, Info{}, fmt.Errorf("relay: route names in %s: %w", cfg.StateDir, err)
	}
	if err := r.prepareAuth(&info); err != nil {
		if r.access != nil {
			r.access.Close()
		}
		r.db.Close()
		return nil, Info{}, err
	}
	err = r.prepareOIDC()
	if err == nil {
		err = r.loadPolicy()
	}
	if err != nil {
		if r.access != nil {
			r.access.Close()
		}
		if r.controlLn != nil {
			r.controlLn.Close()
			_ = os.Remove(control.SocketPath(cfg.StateDir))
		}
		r.db.Close()
		return nil, Info{}, err
	}
	r.sshConfig = r.newSSHConfig()
	r.front = front.New(front.Config{
		Domain: cfg.Domain, Scheme: cfg.Scheme, URLFor: r.urlFor, SingleRoute: cfg.SingleRoute,
		MaxStreamsPerSource: cfg.MaxStreamsPerSource, MinBodyRate: cfg.MinBodyRate, BodyGrace: cfg.BodyGrace,
		TrustedProxies: cfg.TrustedProxies, Tunnels: routeTable{r}, Access: r.access,
		Apex: http.HandlerFunc(r.serveApex), Remote: r.remote, Log: r.log,
	})
	r.http = &http.Server{
		Handler:           r,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
		TLSConfig:         cfg.TLS,
	}
	if err := r.joinFleet(); err != nil {
		r.closeBeforeFleet()
		return nil, Info{}, err
	}
	return r, info, nil
}

// prepareAuth sets up SSH and HTTP authentication and the control socket.
func (r *Relay) prepareAuth(info *Info) error {
	cfg := r.cfg
	var err error
	if cfg.Auth == AuthKeys {
		r.keys = &authorizedKeys{path: cfg.AuthorizedKeys, log: cfg.Logger}
		if err := r.keys.reload(); err != nil {
			return err
		}
	}
	if cfg.Auth == AuthSignin {
		if r.signin, err = newSignin(r.db, cfg.StateDir, cfg.SessionTTL, cfg.CodeTTL, cfg.Now); err != nil {
			return err
		}
		info.AdminToken, info.AdminTokenCreated = r.signin.token, r.signin.tokenCreated
	}
	if cfg.HTTPAuth == HTTPAuthOwner || cfg.HTTPAuth == HTTPAuthOIDC {
		if r.signin != nil {
			r.adminToken = r.signin.token
		} else {
			if r.adminToken, info.AdminTokenCreated, err = loadOrCreateToken(cfg.StateDir, r.db); err != nil {
				return fmt.Errorf("admin token: %w", err)
			}
			info.AdminToken = r.adminToken
		}
		if r.access, err = r.newAccess(); err != nil {
			return err
		}
	}
	if r.signin != nil || r.access != nil || cfg.PolicyFile != "" {
		// Listening here, not in Serve, makes `relay approve` and `relay
		// access` work as soon as New returns.
		if r.controlLn, err = control.Listen(cfg.StateDir); err != nil {
			return err
		}
		r.control = &http.Server{Handler: control.Handler(r.controlBackend()), ReadHeaderTimeout: 5 * time.Second}
	}
	return nil
}

// BaseURL is the relay's own public address (sign-in links live here).
func (r *Relay) BaseURL() string { return r.urlFor("") }

// urlFor is the public URL of a route ("" for the apex).
func (r *Relay) urlFor(name string) string {
	host := r.cfg.Domain
	if name != "" {
		host = name + "." + host
	}
	port := r.cfg.PublicPort
	if port != 0 && !(r.cfg.Scheme == "http" && port == 80) && !(r.cfg.Scheme == "https" && port == 443) {
		host = net.JoinHostPort(host, strconv.Itoa(port))
	}
	return r.cfg.Scheme + "://" + host
}

// Serve runs the SSH and HTTP servers (and, in signin mode, the control
// socket) until ctx is cancelled, then shuts down gracefully: stop
// accepting, drain in-flight requests for up to 10 s, close tunnels.
//
// Every goroutine Serve starts is in one errgroup: the SSH accept loop
// (whose connections are in wg, which Shutdown waits for), the keepalive
// ticker, the HTTP server and the control socket's. The first to fail
// stops the others; Serve returns only when all of them have, with the
// first error (the control socket's included).
func (r *Relay) Serve(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(r.serveSSH)
	g.Go(func() error {
		r.keepalive(gctx.Done())
		return nil
	})
	g.Go(func() error {
		var err error
		if r.cfg.TLS != nil {
			err = r.http.ServeTLS(r.cfg.HTTPListener, "", "")
		} else {
			err = r.http.Serve(r.cfg.HTTPListener)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("http: %w", err)
	})
	if r.fleet != nil {
		g.Go(func() error {
			if err := r.fleet.Serve(); err != nil {
				return fmt.Errorf("fleet: %w", err)
			}
			return nil
		})
	}
	if r.control != nil {
		g.Go(func() error {
			err := r.control.Serve(r.controlLn)
			if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("control socket: %w", err)
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return r.Shutdown(sctx)
	})
	return g.Wait()
}

// Shutdown stops accepting, waits for in-flight HTTP requests until ctx
// ends, then closes every tunnel.
func (r *Relay) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	defer r.cancel()
	if r.fleet != nil {
		// Other nodes stop passing requests here at once.
		if err := r.fleet.Close(); err != nil {
			r.log.Warn("fleet: cannot record that this node left", "err", err)
		}
	}
	_ = r.cfg.SSHListener.Close()
	if r.control != nil {
		_ = r.control.Close()
		_ = r.controlLn.Close()
		_ = os.Remove(control.SocketPath(r.cfg.StateDir))
	}
	err := r.http.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		_ = r.http.Close()
		err = nil
	}
	if r.signin != nil {
		r.signin.shutdown() // a sign-in waiting for a person does not hold up the stop
	}
	cerr := r.close()
	// With the tunnels' connections closed, what the front started ends:
	// upgraded connections are cut, channel watchers see their channels
	// close.
	r.front.Close()
	r.wg.Wait()
	r.front.Wait()
	if r.policy != nil {
		r.policy.Close()
	}
	if r.access != nil {
		if aerr := r.access.Close(); cerr == nil {
			cerr = aerr
		}
	}
	if derr := r.db.Close(); cerr == nil {
		cerr = derr
	}
	if err == nil {
		err = cerr
	}
	return err
}

func (r *Relay) close() error {
	for _, c := range r.liveConns() {
		_ = c.sc.Close()
	}
	return nil
}

// liveConns is a snapshot of the connections, to act on without the lock.
func (r *Relay) liveConns() []*conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	conns := make([]*conn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	return conns
}

// serveSSH accepts SSH connections until the listener closes. Accept
// errors (EMFILE when out of file descriptors, for one) are retried with a
// growing delay, as net/http's server does, rather than ending the relay.
func (r *Relay) serveSSH() error {
	var delay time.Duration
	for {
		nc, err := r.cfg.SSHListener.Accept()
		if err != nil {
			r.mu.Lock()
			closed := r.closed
			r.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			r.log.Warn("ssh accept failed; retrying", "err", err, "delay", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		src := front.HostOf(nc.RemoteAddr().String())
		if !r.startHandshake(src) {
			r.log.Debug("too many connections in their handshake; closing", "remote", nc.RemoteAddr().String())
			_ = nc.Close()
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.handleConn(nc, func() { r.endHandshake(src) })
		}()
	}
}

// startHandshake counts a connection entering its handshake, unless that
// would pass MaxStartups or MaxStartupsPerSource.
func (r *Relay) startHandshake(src string) bool {
	r.startMu.Lock()
	defer r.startMu.Unlock()
	if r.startups >= r.cfg.MaxStartups || r.startupsBySrc[src] >= r.cfg.MaxStartupsPerSource {
		return false
	}
	r.startups++
	r.startupsBySrc[src]++
	return true
}

func (r *Relay) endHandshake(src string) {
	r.startMu.Lock()
	defer r.startMu.Unlock()
	r.startups--
	if r.startupsBySrc[src]--; r.startupsBySrc[src] <= 0 {
		delete(r.startupsBySrc, src)
	}
}

// keepalive pings every connection each KeepaliveInterval.
func (r *Relay) keepalive(stop <-chan struct{}) {
	t := time.NewTicker(r.cfg.KeepaliveInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		for _, c := range r.liveConns() {
			c.ping()
		}
	}
}

// Routes lists the live routes and their URLs (for logs and tests).
func (r *Relay) Routes() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.routes))
	for name := range r.routes {
		out[name] = r.urlFor(name)
	}
	return out
}
