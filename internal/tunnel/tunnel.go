// Package tunnel is pomdev's embedded SSH tunnel client: what
// `ssh -R 0 pom.run` does, without an ssh binary. It authenticates with
// pomdev's own key (or the user's), trusts relays on first use through its
// own known_hosts, shows sign-in links, asks the relay for a remote forward
// (dynamic with SOCKS5 inside each channel, or static by name), serves each
// forwarded channel with an HTTP-aware reverse proxy to the local target
// (holding requests while the target restarts), finds the public URL, keeps
// the connection alive and reconnects. Everything it does is an Event.
package tunnel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/pomdev/pomdev/internal/loopback"
	"github.com/pomdev/pomdev/internal/publicpath"
	"github.com/pomdev/pomdev/internal/toolrule"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pomdev/pomdev/internal/backoff"
	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/safeurl"
	"golang.org/x/crypto/ssh"
)

// Config configures a Client.
type Config struct {
	// Addr is the relay's host:port.
	Addr string
	// User is the SSH user name (pom.run ignores it; default "pomdev").
	User string
	// Signers authenticate the client (pomdev's key, an agent's keys).
	Signers []ssh.Signer
	// KnownHosts is the known_hosts file (trust on first use).
	KnownHosts string
	// OnNewHostKey is told when a relay's key is first trusted.
	OnNewHostKey func(host, fingerprint string)
	// Targets are the local host:port the tunnel may reach; the first is
	// used for channels without SOCKS (static mode, plain OpenSSH).
	Targets []string
	// Static, when set, asks for the route NAME on StaticPort (443)
	// instead of a dynamic forward.
	Static     string
	StaticPort int
	// HoldTimeout is how long a request waits for a target that is not
	// accepting connections (restarting) before a 503 (10 s).
	HoldTimeout time.Duration
	// RemoteURL overrides the URL read from the relay.
	RemoteURL string
	// SignIn is called with a sign-in request's name and instruction (the
	// link), once, when the relay asks; the client answers at once and
	// waits as long as the relay does.
	SignIn func(name, instruction string)
	// Questions answers keyboard-interactive prompts that have questions;
	// nil refuses them with an error that says a terminal is needed.
	Questions func(name, instruction string, questions []string, echos []bool) ([]string, error)
	// ToolsAllow and ToolsDeny are tool names (or prefixes ending in *)
	// the relay lets through or refuses on this tunnel, on top of its own
	// policy. They need a pomdev relay: against any other, Run fails.
	ToolsAllow, ToolsDeny []string
	// PublicPaths are asset paths a pomdev relay serves without a token
	// (publicpath: POMDEV_PUBLIC_PATHS).
	PublicPaths []string
	// OnEvent receives every event; it must not block for long.
	OnEvent func(event.Tunnel)
	Logger  *slog.Logger

	KeepaliveInterval time.Duration // 15 s
	KeepaliveMax      int           // 3 misses
	URLTimeout        time.Duration // bound on finding the URL (10 s)
	// Dial replaces the TCP dialer (tests).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Client is a tunnel to one relay.
type Client struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	url   string
	conn  *ssh.Client // the live connection to a pomdev relay, nil otherwise
	owner ownerToken  // OwnerToken's cache

	// Connections through the tunnel: open now, and accepted in all.
	open, total atomic.Int64
}

// Connections reports how many connections from the relay are open now
// and how many were accepted since the client started.
func (c *Client) Connections() (open, total int64) { return c.open.Load(), c.total.Load() }

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.Addr == "" {
		return nil, errors.New("tunnel: no relay address")
	}
	if len(cfg.Signers) == 0 {
		return nil, errors.New("tunnel: no key to authenticate with")
	}
	if len(cfg.Targets) == 0 {
		return nil, errors.New("tunnel: no local target")
	}
	for _, t := range cfg.Targets {
		if _, _, err := net.SplitHostPort(t); err != nil {
			return nil, fmt.Errorf("tunnel: target %q is not host:port", t)
		}
	}
	if cfg.User == "" {
		cfg.User = "pomdev"
	}
	if cfg.StaticPort == 0 {
		cfg.StaticPort = 443
	}
	if cfg.HoldTimeout <= 0 {
		cfg.HoldTimeout = 10 * time.Second
	}
	if cfg.KeepaliveInterval <= 0 {
		cfg.KeepaliveInterval = 15 * time.Second
	}
	if cfg.KeepaliveMax <= 0 {
		cfg.KeepaliveMax = 3
	}
	if cfg.URLTimeout <= 0 {
		cfg.URLTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Dial == nil {
		// A relay at *.localhost is this machine.
		cfg.Dial = loopback.DialContext
	}
	return &Client{cfg: cfg, log: cfg.Logger}, nil
}

// URL is the remote URL, "" until known.
func (c *Client) URL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.url
}

func (c *Client) emit(e event.Tunnel) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if c.cfg.OnEvent != nil {
		c.cfg.OnEvent(e)
	}
}

// fatal errors end Run instead of reconnecting.
type fatalError struct{ err error }

func (f *fatalError) Error() string { return f.err.Error() }
func (f *fatalError) Unwrap() error { return f.err }

// UnreachableError is a relay never reached: a wrong address, a relay
// that is down, no network. Err says which.
type UnreachableError struct {
	Addr string
	Err  error
}

func (e *UnreachableError) Error() string { return e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

// KeyRefusedError is a relay that accepted none of the keys (or whose
// sign-in was denied).
type KeyRefusedError struct {
	Addr string
	Err  error
}

func (e *KeyRefusedError) Error() string {
	return fmt.Sprintf("relay %s refused the key: %v", e.Addr, e.Err)
}
func (e *KeyRefusedError) Unwrap() error { return e.Err }

// Run keeps the tunnel up until ctx ends: it connects, serves, and on any
// disconnect reconnects with exponential backoff and jitter (1 s to 30 s).
// A changed host key or a refused authentication ends it with an error.
func (c *Client) Run(ctx context.Context) error {
	delays := &backoff.Backoff{Min: time.Second, Max: 30 * time.Second, Jitter: true}
	everConnected := false
	for attempt := 1; ; attempt++ {
		c.emit(event.Tunnel{Kind: event.TunnelConnecting, Attempt: attempt, Message: "connecting to " + c.cfg.Addr})
		started := time.Now()
		connected, err := c.session(ctx)
		everConnected = everConnected || connected
		if ctx.Err() != nil {
			return nil
		}
		var fe *fatalError
		if errors.As(err, &fe) {
			return fe.err
		}
		if !everConnected {
			// Never reached: a wrong address or a relay that is down is
			// reported at once; reconnecting is for tunnels that were up.
			return &UnreachableError{Addr: c.cfg.Addr, Err: err}
		}
		if time.Since(started) > time.Minute {
			delays.Reset() // it was up for a while: start over
		}
		wait := delays.Next()
		c.emit(event.Tunnel{Kind: event.TunnelDisconnected, Err: errString(err), Message: "reconnecting in " + wait.Round(100*time.Millisecond).String()})
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// session runs one connection until it fails or ctx ends; connected
// reports whether the SSH handshake succeeded.
func (c *Client) session(ctx context.Context) (connected bool, err error) {
	hostKeyCB, err := trustOnFirstUse(c.cfg.KnownHosts, c.cfg.OnNewHostKey)
	if err != nil {
		return false, &fatalError{err}
	}
	nc, err := c.cfg.Dial(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return false, fmt.Errorf("relay %s unreachable: %w", c.cfg.Addr, err)
	}
	// Closing the connection is how ctx cancels a handshake that waits for
	// a sign-in.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()

	signInShown := false
	cc := &ssh.ClientConfig{
		User: c.cfg.User,
		Auth: []ssh.AuthMethod{
			ssh.PublicKeys(c.cfg.Signers...),
			ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
				if len(questions) == 0 {
					// A message (pom.run's sign-in link, or why it failed):
					// show it and answer at once; the relay then waits. Only
					// a lone https link (http to this machine) is a sign-in
					// link that may be opened in a browser.
					if !signInShown && safeurl.ForBrowser(strings.TrimSpace(instruction)) == nil {
						instruction = strings.TrimSpace(instruction)
						signInShown = true
						c.emit(event.Tunnel{Kind: event.TunnelSignIn, URL: instruction, Message: name})
						if c.cfg.SignIn != nil {
							c.cfg.SignIn(name, instruction)
						}
					} else if name != "" || instruction != "" {
						c.emit(event.Tunnel{Kind: event.TunnelLog, Message: strings.TrimSpace(name + ": " + instruction)})
					}
					return []string{}, nil
				}
				if c.cfg.Questions == nil {
					return nil, fmt.Errorf("the relay asks %q and there is no terminal to answer on; run pomdev in a terminal", questions[0])
				}
				return c.cfg.Questions(name, instruction, questions, echos)
			}),
		},
		HostKeyCallback: hostKeyCB,
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, c.cfg.Addr, cc)
	if err != nil {
		nc.Close()
		var hk *HostKeyChangedError
		if errors.As(err, &hk) {
			return false, &fatalError{hk}
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return false, &fatalError{&KeyRefusedError{Addr: c.cfg.Addr, Err: err}}
		}
		return false, fmt.Errorf("relay %s: %w", c.cfg.Addr, err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	defer client.Close()
	if strings.Contains(string(sc.ServerVersion()), "pomdev-relay") {
		c.mu.Lock()
		c.conn = client
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			c.conn = nil
			c.mu.Unlock()
		}()
	}
	c.emit(event.Tunnel{Kind: event.TunnelConnected, Message: "connected to " + c.cfg.Addr + " (" + string(sc.ServerVersion()) + ")"})

	// pomdev relay takes the dynamic target from an env request on a
	// session; it must arrive before the forward so that no request goes to
	// the relay's default target (which the tunnel would refuse).
	var events *ssh.Session
	pomdevRelay := strings.Contains(string(sc.ServerVersion()), "pomdev-relay")
	tools := len(c.cfg.ToolsAllow)+len(c.cfg.ToolsDeny) > 0
	if tools && !pomdevRelay {
		// The rules are the developer's protection: a relay that cannot
		// enforce them must not expose the tools anyway.
		return true, &fatalError{fmt.Errorf("tool rules (--allow-tools, --deny-tools, tunnel.tools) need a pomdev relay to enforce them, and %s is not one (%s); drop the rules or use --relay local or a pomdev relay", c.cfg.Addr, sc.ServerVersion())}
	}
	public := len(c.cfg.PublicPaths) > 0
	if public && !pomdevRelay {
		c.emit(event.Tunnel{Kind: event.TunnelLog, Message: "public paths (" + strings.Join(c.cfg.PublicPaths, ",") + ") are a pomdev relay's: " + c.cfg.Addr + " decides itself what needs a token"})
	}
	if pomdevRelay && (c.cfg.Static == "" || tools || public) {
		if events, err = client.NewSession(); err != nil && tools {
			return true, &fatalError{fmt.Errorf("relay %s: cannot send the tool rules: %w", c.cfg.Addr, err)}
		}
		if err == nil && c.cfg.Static == "" {
			if err := events.Setenv("POMDEV_TARGET", c.cfg.Targets[0]); err != nil {
				c.emit(event.Tunnel{Kind: event.TunnelLog, Message: "the relay did not accept the target " + c.cfg.Targets[0] + ": " + err.Error()})
			}
		}
		if tools {
			if err := c.sendTools(events); err != nil {
				return true, &fatalError{err}
			}
		}
		if public && events != nil {
			v := strings.Join(c.cfg.PublicPaths, ",")
			if err := events.Setenv(publicpath.Env, v); err != nil {
				return true, &fatalError{fmt.Errorf("relay %s refused the public paths %s=%s (see its message above; a relay older than this pomdev does not know them)", c.cfg.Addr, publicpath.Env, v)}
			}
			c.emit(event.Tunnel{Kind: event.TunnelLog, Message: "served without a token by the relay: " + v})
		}
	}

	var ln net.Listener
	if c.cfg.Static != "" {
		ln, err = client.Listen("tcp", net.JoinHostPort(c.cfg.Static, strconv.Itoa(c.cfg.StaticPort)))
	} else {
		ln, err = client.Listen("tcp", "localhost:0")
	}
	if err != nil {
		return true, &fatalError{fmt.Errorf("relay %s refused the remote forward: %w", c.cfg.Addr, err)}
	}
	port := 0
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		port = a.Port
	}

	fw := newForwarder(c)
	defer fw.close()
	go fw.serve(ln)

	errc := make(chan error, 2)
	go func() { errc <- client.Wait() }()
	go func() {
		ping := func() error {
			_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
			return err
		}
		if err := keepalive(ctx, c.cfg.KeepaliveInterval, c.cfg.KeepaliveMax, ping, func() { client.Close() }); err != nil {
			errc <- err
		}
	}()
	go c.findURL(ctx, client, events, string(sc.ServerVersion()), port)

	select {
	case <-ctx.Done():
		return true, nil
	case err := <-errc:
		return true, err
	}
}

// keepalive pings the relay every interval (keepalive@openssh.com, as
// OpenSSH's ServerAliveInterval) until ctx ends or a ping fails (the
// connection is gone: Wait reports it). max intervals in a row without an
// answer close the connection and return the error that says so.
func keepalive(ctx context.Context, interval time.Duration, max int, ping func() error, closeConn func()) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		done := make(chan error, 1)
		go func() { done <- ping() }()
		wait := time.NewTimer(interval)
		select {
		case err := <-done:
			wait.Stop()
			if err != nil {
				return nil
			}
			missed = 0
		case <-wait.C:
			missed++
			if missed >= max {
				closeConn()
				return fmt.Errorf("relay stopped answering keepalives (%d missed)", missed)
			}
		case <-ctx.Done():
			wait.Stop()
			return nil
		}
	}
}

// ErrNotPomdevRelay is returned by Access when the relay is not a pomdev
// relay (pom.run authorizes requests itself).
var ErrNotPomdevRelay = errors.New("the tunnel is not connected to a pomdev relay")

// Access runs the relay's access command (pomdev-access ARGS…) on the
// live connection, as this key: approve or deny a request for one of its
// routes, mint a token for its own checks. It returns what the relay
// printed.
func (c *Client) Access(ctx context.Context, args ...string) (string, error) {
	c.mu.Lock()
	client := c.conn
	c.mu.Unlock()
	if client == nil {
		return "", ErrNotPomdevRelay
	}
	sess, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	var out limitedBuffer
	sess.Stdout, sess.Stderr = &out, &out
	err = sess.Run("pomdev-access " + strings.Join(args, " "))
	text := strings.TrimSpace(out.String())
	if err != nil {
		if text != "" {
			return "", errors.New(text)
		}
		return "", err
	}
	return text, nil
}

// OwnerToken is a token the relay mints for the tunnel's owner, so that
// pomdev's own check through the tunnel passes the relay's OAuth gate.
// A token is reused until a minute before it expires, so checks do not
// mint one each.
func (c *Client) OwnerToken(ctx context.Context) (token string, expires time.Time, err error) {
	url := c.URL()
	c.mu.Lock()
	cached := c.owner
	c.mu.Unlock()
	if cached.url == url && time.Until(cached.expires) > time.Minute {
		return cached.token, cached.expires, nil
	}
	out, err := c.Access(ctx, "token")
	if err != nil {
		return "", time.Time{}, err
	}
	for line := range strings.Lines(out) {
		var t struct {
			URL     string    `json:"url"`
			Token   string    `json:"token"`
			Expires time.Time `json:"expires"`
		}
		if json.Unmarshal([]byte(line), &t) == nil && t.URL == url {
			c.mu.Lock()
			c.owner = ownerToken{url: url, token: t.Token, expires: t.Expires}
			c.mu.Unlock()
			return t.Token, t.Expires, nil
		}
	}
	return "", time.Time{}, fmt.Errorf("the relay minted no token for %s", url)
}

// ownerToken is the last token OwnerToken got, for url.
type ownerToken struct {
	url, token string
	expires    time.Time
}

// limitedBuffer keeps the first 64 KiB written to it.
type limitedBuffer struct{ b strings.Builder }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 64<<10 - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return l.b.String() }

func (c *Client) setURL(u string) {
	c.mu.Lock()
	c.url = u
	c.mu.Unlock()
	c.emit(event.Tunnel{Kind: event.TunnelReady, URL: u})
}

// sendTools sends the tool rules on s; the relay refuses rules it cannot
// read, and then nothing is exposed.
func (c *Client) sendTools(s *ssh.Session) error {
	var said []string
	for _, e := range []struct {
		name  string
		globs []string
	}{{toolrule.EnvAllow, c.cfg.ToolsAllow}, {toolrule.EnvDeny, c.cfg.ToolsDeny}} {
		if len(e.globs) == 0 {
			continue
		}
		v := strings.Join(e.globs, ",")
		if err := s.Setenv(e.name, v); err != nil {
			return fmt.Errorf("relay %s refused the tool rules %s=%s (a relay older than this pomdev, or a rule it cannot read; see its message above)", c.cfg.Addr, e.name, v)
		}
		said = append(said, strings.ToLower(strings.TrimPrefix(e.name, "POMDEV_TOOLS_"))+" "+v)
	}
	c.emit(event.Tunnel{Kind: event.TunnelLog, Message: "tool rules enforced by the relay on this tunnel: " + strings.Join(said, "; ")})
	return nil
}
