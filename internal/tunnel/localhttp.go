package tunnel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pomdev/pomdev/internal/bufpool"
	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/httpwire"
	"github.com/pomdev/pomdev/internal/mcpwire"
)

// The local end of the tunnel is an HTTP/1.1 forwarder per forwarded
// channel: it reads a request from the channel, sends it to the target
// over one keep-alive connection of its own with Host rewritten, and
// copies the answer back, one request at a time, all in the channel's
// goroutine. Doing it by hand instead of with http.Server and
// httputil.ReverseProxy halves the client's CPU per request (no
// goroutine hand-offs through http.Transport) and makes Upgrade work:
// http.Server's Hijack needs read deadlines, which SSH channels lack.

// upstream is the keep-alive connection to the target.
type upstream struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time // end of the last exchange
}

// maxIdleReuse is how long an idle connection to the target is reused.
// Servers close idle keep-alive connections on their own schedule (Node's
// default is 5 s); a request sent just as that happens would be lost, so
// older connections are replaced instead of raced.
const maxIdleReuse = 4 * time.Second

// httpChan serves the HTTP requests of one forwarded channel.
type httpChan struct {
	f      *forwarder
	in     *peeked
	bw     *bufio.Writer
	target string
	up     *upstream
}

// MaxHeaderBytes bounds a request's line and header fields from the relay,
// as the relay's front bounds them (net/http allows 4 KiB more for its
// buffer; so does the limit here).
const MaxHeaderBytes = 64 << 10

var errHeaderTooLarge = errors.New("request header larger than 64 KiB")

// serveHTTP forwards requests until the channel or the target ends it.
func (f *forwarder) serveHTTP(p *peeked) {
	// Request heads are read through a limit (the relay may be hostile);
	// bodies are streamed, never held whole.
	lim := &httpwire.HeadLimit{R: p.r, N: -1, Err: errHeaderTooLarge}
	p.r = bufio.NewReaderSize(lim, 4096)
	h := &httpChan{f: f, in: p, bw: bufio.NewWriterSize(p.Conn, 4096), target: p.target}
	defer h.closeUpstream()
	defer p.Close()
	var watch chan error // the client's side, watched while an answer streams
	for {
		if watch != nil {
			if err := <-watch; err != nil {
				return
			}
			watch = nil
		}
		lim.N = MaxHeaderBytes + 4096
		req, err := http.ReadRequest(p.r)
		lim.N = -1
		if err != nil {
			if errors.Is(err, errHeaderTooLarge) {
				h.plain(http.StatusRequestHeaderFieldsTooLarge, "pomdev tunnel: request header larger than 64 KiB\n", true)
				return
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isClosedChan(err) {
				h.plain(http.StatusBadRequest, "pomdev tunnel: malformed request: "+err.Error()+"\n", true)
			}
			return
		}
		keep, w := h.serve(req)
		watch = w
		if !keep {
			return
		}
	}
}

func isClosedChan(err error) bool { return strings.Contains(err.Error(), "use of closed") }

// serve answers one request; keep is false when the channel must close.
// A non-nil watch is the client-side read started while streaming; the
// loop waits for it before reading the next request.
func (h *httpChan) serve(req *http.Request) (keep bool, watch chan error) {
	start := time.Now()
	call := mcpwire.PeekRequest(req)
	ev := event.Request{Time: start, Method: req.Method, Path: req.RequestURI, RPCMethod: call.Method, RPCID: call.ID, Tool: call.Tool}
	defer func() {
		ev.Duration = time.Since(start)
		if ev.Status == 0 {
			ev.Status = 499
		}
		h.f.c.emit(event.Tunnel{Kind: event.TunnelRequest, Request: &ev})
	}()
	if strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
		_, _ = h.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		if h.bw.Flush() != nil {
			return false, nil
		}
	}
	upgrade := httpwire.IsUpgrade(req.Header)
	resp, err := h.roundTrip(req, upgrade)
	if err != nil {
		ev.Err = err.Error()
		if _, derr := io.Copy(io.Discard, req.Body); derr != nil {
			return false, nil
		}
		code, body := h.failure(err)
		ev.Status = code
		return h.plain(code, body, req.Close), nil
	}
	ev.Status = resp.StatusCode
	if resp.StatusCode == http.StatusSwitchingProtocols && upgrade {
		h.switchProtocols(resp)
		return false, nil
	}
	keep = !req.Close
	n, watch, err := h.writeResponse(req, resp, keep)
	ev.Bytes = n
	resp.Body.Close()
	if h.up != nil {
		h.up.used = time.Now()
	}
	if err != nil || resp.Close {
		h.closeUpstream()
	}
	if err != nil {
		ev.Err = err.Error()
		return false, watch
	}
	return keep, watch
}

// roundTrip sends req to the target and reads the answer's head. It dials
// (holding while the target refuses connections), replaces a keep-alive
// connection the target closed meanwhile, and retries idempotent requests
// without a body whose connection broke before an answer (the server was
// stopped to restart) for up to the hold time.
func (h *httpChan) roundTrip(req *http.Request, upgrade bool) (*http.Response, error) {
	start := time.Now()
	for {
		if err := h.connect(); err != nil {
			return nil, err
		}
		resp, err := h.exchange(req, upgrade)
		if err == nil {
			return resp, nil
		}
		h.closeUpstream()
		if !idempotent(req) || req.ContentLength != 0 || !brokenConn(err) || time.Since(start) >= h.f.c.cfg.HoldTimeout {
			return nil, err
		}
		select {
		case <-h.f.closed:
			return nil, err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// connect makes sure there is a live connection to the target.
func (h *httpChan) connect() error {
	if h.up != nil && !h.up.alive() {
		h.closeUpstream()
	}
	if h.up != nil {
		return nil
	}
	c, err := h.f.dialTarget(context.Background(), "tcp", h.target)
	if err != nil {
		return err
	}
	h.up = &upstream{conn: c, br: bufio.NewReaderSize(c, 4096), bw: bufio.NewWriterSize(c, 4096), used: time.Now()}
	return nil
}

// alive reports whether the idle keep-alive connection is still usable.
func (u *upstream) alive() bool {
	return time.Since(u.used) < maxIdleReuse && u.br.Buffered() == 0 && idleAlive(u.conn)
}

func (h *httpChan) closeUpstream() {
	if h.up != nil {
		h.up.conn.Close()
		h.up = nil
	}
}

// exchange writes the request and reads the head of the answer, skipping
// interim 1xx answers other than 101.
func (h *httpChan) exchange(req *http.Request, upgrade bool) (*http.Response, error) {
	bw := h.up.bw
	httpwire.WriteRequestLine(bw, req, h.target)
	httpwire.WriteHeader(bw, req.Header)
	if req.Header.Get("X-Forwarded-Host") == "" {
		// A relay that does not say where the request came to: the app
		// learns it from the tunnel's URL (widget documents point at it).
		if u, err := url.Parse(h.f.c.URL()); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
			_, _ = bw.WriteString("X-Forwarded-Host: " + u.Host + "\r\nX-Forwarded-Proto: " + u.Scheme + "\r\n")
		}
	}
	if httpwire.WriteFraming(bw, req, upgrade) {
		buf := bufpool.Proxy.Get()
		err := httpwire.WriteBody(bw, req, buf)
		bufpool.Proxy.Put(buf)
		if err != nil {
			return nil, err
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	return httpwire.ReadResponse(h.up.br, nil, 0, req)
}

// writeResponse copies the answer to the channel. Bodies of known length
// are sent as they are; others (event streams) chunk by chunk, each
// flushed at once, while the client's side is watched so that a client
// that goes away ends the stream; the returned watch (nil otherwise)
// reports the end of that watch.
func (h *httpChan) writeResponse(req *http.Request, resp *http.Response, keep bool) (n int64, watch chan error, err error) {
	bw := h.bw
	_, _ = bw.WriteString("HTTP/1.1 " + resp.Status + "\r\n")
	httpwire.WriteHeader(bw, resp.Header)
	if !keep {
		_, _ = bw.WriteString("Connection: close\r\n")
	}
	noBody := req.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified
	buf := bufpool.Proxy.Get()
	defer bufpool.Proxy.Put(buf)
	switch {
	case noBody:
		if cl := resp.Header.Get("Content-Length"); cl != "" {
			_, _ = bw.WriteString("Content-Length: " + cl + "\r\n")
		}
		_, _ = bw.WriteString("\r\n")
		return 0, nil, bw.Flush()
	case resp.ContentLength >= 0:
		_, _ = bw.WriteString("Content-Length: " + strconv.FormatInt(resp.ContentLength, 10) + "\r\n\r\n")
		n, err = io.CopyBuffer(bw, resp.Body, buf)
		if err == nil {
			err = bw.Flush()
		}
		return n, nil, err
	}
	_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	if err := bw.Flush(); err != nil {
		return 0, nil, err
	}
	// The client going away (the relay closing the channel) closes the
	// target connection, which ends the copy below.
	w := make(chan error, 1)
	up := h.up.conn
	go func() {
		_, err := h.in.r.Peek(1)
		if err != nil {
			up.Close()
		}
		w <- err
	}()
	watch = w
	cw := httputil.NewChunkedWriter(bw)
	for {
		m, rerr := resp.Body.Read(buf)
		if m > 0 {
			if _, err := cw.Write(buf[:m]); err != nil {
				return n, watch, err
			}
			if err := bw.Flush(); err != nil {
				return n, watch, err
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, watch, rerr
		}
	}
	_ = cw.Close()
	_, _ = bw.WriteString("\r\n")
	return n, watch, bw.Flush()
}

// switchProtocols passes a 101 answer on and then bytes both ways.
func (h *httpChan) switchProtocols(resp *http.Response) {
	_, _ = h.bw.WriteString("HTTP/1.1 " + resp.Status + "\r\n")
	httpwire.WriteHeader(h.bw, resp.Header)
	_, _ = h.bw.WriteString("Connection: Upgrade\r\nUpgrade: " + resp.Header.Get("Upgrade") + "\r\n\r\n")
	if h.bw.Flush() != nil {
		return
	}
	up := h.up
	h.up = nil
	defer up.conn.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up.conn, h.in.r); closeWrite(up.conn); done <- struct{}{} }()
	go func() { _, _ = io.Copy(h.in.Conn, up.br); closeWrite(h.in.Conn); done <- struct{}{} }()
	<-done
	<-done
}

// plain writes a short text answer of pomdev's own.
func (h *httpChan) plain(code int, body string, closing bool) (keep bool) {
	_, _ = fmt.Fprintf(h.bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nX-Pomdev-Tunnel: 1\r\nContent-Length: %d\r\n", code, http.StatusText(code), len(body))
	if closing {
		_, _ = h.bw.WriteString("Connection: close\r\n")
	}
	_, _ = h.bw.WriteString("\r\n" + body)
	return h.bw.Flush() == nil && !closing
}

// failure is the answer for a request the target did not answer.
func (h *httpChan) failure(err error) (int, string) {
	var he *holdError
	if errors.As(err, &he) {
		return http.StatusServiceUnavailable, fmt.Sprintf("pomdev tunnel: the local server at %s is not accepting connections (waited %s). Is it running? Check pomdev up's Processes pane or your server's output.\n", h.target, he.waited.Round(time.Second))
	}
	return http.StatusBadGateway, fmt.Sprintf("pomdev tunnel: the local server at %s failed: %v\n", h.target, err)
}
