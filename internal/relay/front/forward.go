package front

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pomdev/pomdev/internal/bufpool"
	"github.com/pomdev/pomdev/internal/httpwire"
	"github.com/pomdev/pomdev/internal/relay/access"
)

// The relay's leg into a tunnel: each public request is written on a
// forwarded channel from the request's own goroutine with HTTP/1.1
// framing, and its answer read back there too, instead of through
// http.Transport's read and write loops (two goroutine hand-offs less per
// request). Channels are kept for later requests (HTTP keep-alive inside
// each), so most requests cost no channel open and no SOCKS handshake.

// stream is one forwarded channel carrying HTTP/1.1.
type stream struct {
	conn net.Conn
	lim  *httpwire.HeadLimit
	br   *bufio.Reader
	bw   *bufio.Writer
	// While idle, a goroutine waits for the channel's next byte: a byte
	// or an end before a request was written means the channel is dead
	// (the client closed it); after a request, it is the answer arriving,
	// reported on first.
	first   chan error
	watched bool        // a watcher was started and has not reported yet
	idle    bool        // guarded by the Link's mu
	expire  *time.Timer // closes the channel after StreamIdle idle
	retired bool        // closed and its slot given back
}

// maxRespHeader bounds an answer's head from a tunnel client (as
// http.Transport's default does).
const maxRespHeader = 1 << 20

// StreamIdle is how long an idle channel is kept open (a variable for
// tests).
var StreamIdle = 60 * time.Second

var errHeadTooLarge = errors.New("answer head larger than 1 MiB")

// Link is the front's state for one tunnel: its kept channels (at most
// max open at once, the idle ones newest last), the requests in flight
// per source address, and counts the relay shows. The relay's core makes
// one per route (NewLink) and closes its idle channels when the route
// goes or its target changes (CloseIdle).
type Link struct {
	slots chan struct{}
	mu    sync.Mutex
	idle  []*stream

	requests atomic.Int64 // served through the front
	last     atomic.Int64 // unix nanoseconds of the last request

	fmu sync.Mutex
	// inFlight counts requests per source address (entries only while
	// one is in flight).
	inFlight map[string]int
}

// NewLink is a Link with at most max channels open.
func NewLink(max int) *Link { return &Link{slots: make(chan struct{}, max)} }

// Requests is how many requests the front passed to the tunnel.
func (l *Link) Requests() int64 { return l.requests.Load() }

// Last is when the last one came (zero before any).
func (l *Link) Last() time.Time {
	if n := l.last.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Open is how many channels are open.
func (l *Link) Open() int { return len(l.slots) }

// enter counts a request from src, unless src already has limit in flight.
func (l *Link) enter(src string, limit int) bool {
	l.fmu.Lock()
	defer l.fmu.Unlock()
	if l.inFlight[src] >= limit {
		return false
	}
	if l.inFlight == nil {
		l.inFlight = map[string]int{}
	}
	l.inFlight[src]++
	return true
}

func (l *Link) leave(src string) {
	l.fmu.Lock()
	defer l.fmu.Unlock()
	if l.inFlight[src]--; l.inFlight[src] <= 0 {
		delete(l.inFlight, src)
	}
}

// get returns an idle channel, or opens one through t when a slot is
// free, waiting for one otherwise. reused reports a channel that served
// before.
func (p *Link) get(ctx context.Context, t Tunnel, origin string) (s *stream, reused bool, err error) {
	p.mu.Lock()
	for len(p.idle) > 0 {
		s = p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		s.idle = false
		s.expire.Stop() // if it fires meanwhile, it finds s taken
		p.mu.Unlock()
		return s, true, nil
	}
	p.mu.Unlock()
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	conn, err := t.Dial(ctx, origin)
	if err != nil {
		<-p.slots
		return nil, false, err
	}
	s = &stream{conn: conn, bw: bufio.NewWriterSize(conn, 4096), first: make(chan error, 1)}
	s.lim = &httpwire.HeadLimit{R: conn, N: -1, Err: errHeadTooLarge}
	s.br = bufio.NewReaderSize(s.lim, 4096)
	return s, false, nil
}

// put keeps s for the next request, watching it while it waits (on a
// goroutine of f's), and closes it if it is still idle after StreamIdle.
func (p *Link) put(s *stream, f *Front) {
	p.mu.Lock()
	s.idle, s.watched = true, true
	p.idle = append(p.idle, s)
	if s.expire == nil {
		s.expire = time.AfterFunc(StreamIdle, func() { p.retireIdle(s) })
	} else {
		s.expire.Reset(StreamIdle)
	}
	p.mu.Unlock()
	if !f.spawn(func() {
		_, err := s.br.Peek(1)
		// Nothing was asked if s is still idle: the client closed the
		// channel (or sent what nobody asked for).
		if !p.retireIdle(s) {
			s.first <- err
		}
	}) {
		if !p.retireIdle(s) {
			s.first <- errStopping
		}
	}
}

// errStopping ends what the front would start once it is closed.
var errStopping = errors.New("the relay is stopping")

// retireIdle closes s if it is idle and reports whether it was.
func (p *Link) retireIdle(s *stream) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !s.idle {
		return false
	}
	for i, x := range p.idle {
		if x == s {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			break
		}
	}
	s.idle = false
	p.retireLocked(s)
	return true
}

// drop closes s and frees its slot.
func (p *Link) drop(s *stream) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retireLocked(s)
}

func (p *Link) retireLocked(s *stream) {
	if s.retired {
		return
	}
	s.retired = true
	if s.expire != nil {
		s.expire.Stop()
	}
	_ = s.conn.Close()
	<-p.slots
}

// CloseIdle closes the idle channels (a route released, a new target).
func (p *Link) CloseIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.idle {
		s.idle = false
		p.retireLocked(s)
	}
	p.idle = nil
}

// forwarder carries one request on a tunnel's channels.
type forwarder struct {
	f      *Front
	t      Tunnel
	link   *Link
	origin string // the public client's address, for forwarded-tcpip
}

// outcome is what the forwarder tells the chain: the status it answered
// when the writer could not see it (a hijacked upgrade) and why the
// request failed, if it did.
type outcome struct {
	status int
	err    error
}

func (f forwarder) serve(w http.ResponseWriter, req *http.Request) outcome {
	ctx := req.Context()
	upgrade := httpwire.IsUpgrade(req.Header)
	for attempt := 0; ; attempt++ {
		s, reused, err := f.link.get(ctx, f.t, f.origin)
		if err != nil {
			return f.fail(w, req, err)
		}
		// A public client that leaves (or a body too slow) closes the
		// channel, which ends whatever waits on it.
		stop := context.AfterFunc(ctx, func() { _ = s.conn.Close() })
		resp, err := f.exchange(s, req, upgrade)
		if err != nil {
			stop()
			f.link.drop(s)
			// A kept channel the client closed just as it was taken: a
			// request without a body is sent again on a fresh one.
			if reused && attempt == 0 && !errors.Is(err, httpwire.ErrBody) && (req.Body == nil || req.Body == http.NoBody) && ctx.Err() == nil {
				continue
			}
			return f.fail(w, req, err)
		}
		if resp.StatusCode == http.StatusSwitchingProtocols && upgrade {
			stop()
			return f.switchProtocols(w, s, resp)
		}
		return f.answer(w, req, s, resp, stop)
	}
}

// exchange writes req on s and reads the head of the answer.
func (f forwarder) exchange(s *stream, req *http.Request, upgrade bool) (*http.Response, error) {
	bw := s.bw
	host := req.Host
	if h := f.t.UpstreamHost(); h != "" {
		// As pom.run does: the upstream sees its own address as Host,
		// which MCP servers' DNS-rebinding checks require.
		host = h
	}
	httpwire.WriteRequestLine(bw, req, host)
	hdr := req.Header
	httpwire.WriteHeader(bw, withoutForwarded(hdr))
	_, _ = bw.WriteString("X-Forwarded-For: " + HostOf(req.RemoteAddr) + "\r\n")
	_, _ = bw.WriteString("X-Forwarded-Host: " + req.Host + "\r\n")
	proto := "http"
	if req.TLS != nil || f.f.cfg.Scheme == "https" {
		proto = "https"
	}
	_, _ = bw.WriteString("X-Forwarded-Proto: " + proto + "\r\n")
	hasBody := httpwire.WriteFraming(bw, req, upgrade)
	var bodyErr chan error
	if hasBody {
		if req.ContentLength >= 0 && req.ContentLength <= 64<<10 {
			// Small bodies (MCP messages) are written here, before the
			// answer is read.
			if err := writeBody(bw, req); err != nil {
				return nil, err
			}
		} else {
			// Large or streamed bodies are written alongside reading the
			// answer, so a server that answers early cannot deadlock us.
			if err := bw.Flush(); err != nil {
				return nil, err
			}
			bodyErr = make(chan error, 1)
			if !f.f.spawn(func() { bodyErr <- writeBody(bw, req) }) {
				return nil, errStopping
			}
		}
	}
	if bodyErr == nil {
		if err := bw.Flush(); err != nil {
			return nil, err
		}
	}
	// The answer's first byte: from the idle watcher of a kept channel,
	// else read here.
	if s.watched {
		s.watched = false
		if err := <-s.first; err != nil {
			return nil, err
		}
	}
	resp, err := httpwire.ReadResponse(s.br, s.lim, maxRespHeader, req)
	if err != nil {
		if bodyErr != nil {
			if berr := <-bodyErr; berr != nil {
				return nil, berr
			}
		}
		return nil, err
	}
	if bodyErr != nil {
		// The answer's body may stream while the request's is still
		// being written; the stream is not reused then.
		resp.Close = true
	}
	return resp, nil
}

// clientClaims are the fields that name a request's client or its
// identity, which only the relay may write: forwarding fields of every
// proxy's dialect, and the relay's identity assertion. They are compared
// without case and with "_" read as "-", as CGI-style servers (WSGI, PHP,
// Rack) fold them: X_Pomdev_Identity arrives there as X-Pomdev-Identity.
var clientClaims = []string{
	"forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
	"x-forwarded-port", "x-forwarded-server", "x-real-ip", "true-client-ip",
	"x-client-ip", "cf-connecting-ip", "fastly-client-ip", "x-cluster-client-ip",
	"x-original-forwarded-for", "x-pomdev-identity",
}

// claimEqual reports whether the header name k is claim (lower case, with
// "-"), reading k without case and "_" as "-"; it allocates nothing.
func claimEqual(k, claim string) bool {
	if len(k) != len(claim) {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != claim[i] {
			return false
		}
	}
	return true
}

// isClientClaim reports whether the field k a client sent must be left
// out; the relay's own identity assertion (set by the gate, in canonical
// form, after the client's were deleted) stays.
func isClientClaim(k string) bool {
	if k == access.IdentityHeader {
		return false
	}
	for _, c := range clientClaims {
		if claimEqual(k, c) {
			return true
		}
	}
	return false
}

// withoutForwarded leaves out the client claims a client sent; the relay
// writes its own X-Forwarded-* fields.
func withoutForwarded(h http.Header) http.Header {
	found := false
	for k := range h {
		if isClientClaim(k) {
			found = true
			break
		}
	}
	if !found {
		return h
	}
	out := h.Clone()
	for k := range out {
		if isClientClaim(k) {
			delete(out, k)
		}
	}
	return out
}

// writeBody copies req's body to bw with its framing and flushes.
func writeBody(bw *bufio.Writer, req *http.Request) error {
	buf := bufpool.Proxy.Get()
	defer bufpool.Proxy.Put(buf)
	return httpwire.WriteBody(bw, req, buf)
}

// answer copies resp to w: bodies of known length as they come, streams
// (event streams, unknown length) flushed at every read. A public client
// that leaves ends the copy; a channel whose answer was read whole is kept.
func (f forwarder) answer(w http.ResponseWriter, req *http.Request, s *stream, resp *http.Response, stop func() bool) outcome {
	h := w.Header()
	httpwire.CopyHeader(h, resp.Header)
	switch {
	case resp.StatusCode < 200 || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified:
	case req.Method == http.MethodHead:
		if cl := resp.Header.Get("Content-Length"); cl != "" {
			h.Set("Content-Length", cl)
		}
	case resp.ContentLength >= 0:
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	stream := resp.ContentLength < 0 || strings.HasPrefix(strings.ToLower(resp.Header.Get("Content-Type")), "text/event-stream")
	buf := bufpool.Proxy.Get()
	var err error
	if stream {
		// The head goes out at once: an event stream may wait long for
		// its first event.
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		for {
			n, rerr := resp.Body.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					err = werr
					break
				}
				_ = rc.Flush()
			}
			if rerr != nil {
				if rerr != io.EOF {
					err = rerr
				}
				break
			}
		}
	} else {
		_, err = io.CopyBuffer(w, resp.Body, buf)
	}
	bufpool.Proxy.Put(buf)
	resp.Body.Close()
	if !stop() || err != nil || resp.Close || req.Close {
		f.link.drop(s)
		if err != nil && req.Context().Err() == nil {
			return outcome{err: err}
		}
		return outcome{}
	}
	f.link.put(s, f.f)
	return outcome{}
}

// switchProtocols passes a 101 answer to the public client and then bytes
// both ways; the channel is not reused.
func (f forwarder) switchProtocols(w http.ResponseWriter, s *stream, resp *http.Response) outcome {
	defer f.link.drop(s)
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return f.fail(w, nil, err)
	}
	defer conn.Close()
	out := outcome{status: http.StatusSwitchingProtocols}
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	httpwire.WriteHeader(brw.Writer, resp.Header)
	_, _ = brw.WriteString("Connection: Upgrade\r\nUpgrade: " + resp.Header.Get("Upgrade") + "\r\n\r\n")
	if err := brw.Flush(); err != nil {
		out.err = err
		return out
	}
	done := make(chan struct{}, 2)
	if !f.f.spawn(func() {
		_, _ = io.Copy(s.conn, brw.Reader)
		closeWrite(s.conn)
		done <- struct{}{}
	}) {
		return out
	}
	if !f.f.spawn(func() {
		_, _ = io.Copy(conn, s.br)
		closeWrite(conn)
		done <- struct{}{}
	}) {
		_ = s.conn.Close()
		<-done
		return out
	}
	<-done
	// One side has finished: the other gets UpgradeLinger to finish too
	// (a peer that keeps its half open after the other's end holds
	// nothing for longer), and none once the relay stops.
	t := time.NewTimer(UpgradeLinger)
	defer t.Stop()
	select {
	case <-done:
		return out
	case <-t.C:
	case <-f.f.quit:
	}
	_ = conn.Close()
	_ = s.conn.Close()
	<-done
	return out
}

// UpgradeLinger is how long an upgraded connection's other half may stay
// open after one half has ended (a variable for tests).
var UpgradeLinger = 10 * time.Second

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = c.Close()
	}
}

// OfflineError is a channel the tunnel could not open: its client is gone.
type OfflineError struct{ Err error }

func (e *OfflineError) Error() string { return "tunnel offline: " + e.Err.Error() }
func (e *OfflineError) Unwrap() error { return e.Err }

// TargetError is a tunnel's client that could not reach its local server.
type TargetError struct {
	Target string
	Err    error
}

func (e *TargetError) Error() string {
	return "local server not reachable on " + e.Target + ": " + e.Err.Error()
}
func (e *TargetError) Unwrap() error { return e.Err }

// fail answers a request the tunnel could not carry, and returns why.
func (f forwarder) fail(w http.ResponseWriter, req *http.Request, err error) outcome {
	var et *TargetError
	var eo *OfflineError
	switch {
	case req != nil && slowBody(req):
		Page(w, http.StatusRequestTimeout, "Request body too slow",
			fmt.Sprintf("The request body arrived slower than %d bytes per second; the request was ended so that it does not hold the tunnel.", f.f.cfg.MinBodyRate))
	case errors.As(err, &et):
		Page(w, http.StatusServiceUnavailable, "Local server not reachable",
			fmt.Sprintf("The tunnel is up, but its client could not connect to %s (%v). Check that your server is running and listening on that address, and that the tunnel points at it (POMDEV_TARGET, or pomdev tunnel --target).", et.Target, et.Err))
	case errors.As(err, &eo):
		Page(w, http.StatusBadGateway, "Tunnel offline", "The tunnel's SSH connection went away. Reconnect and retry.")
	case errors.Is(err, context.Canceled) || req != nil && req.Context().Err() != nil:
		// The public client left; nobody to answer.
	default:
		Page(w, http.StatusBadGateway, "Bad gateway", "The local server's answer could not be relayed: "+err.Error())
	}
	return outcome{err: err}
}
