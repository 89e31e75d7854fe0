package tunnel

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/pomdev/pomdev/internal/loopback"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/socks5"
)

// forwarder serves the channels of one connection: SOCKS5 (checked against
// the targets) or raw, then HTTP through the local end (localhttp.go) or,
// for other protocols, a byte splice.
type forwarder struct {
	c      *Client
	closed chan struct{}
	once   sync.Once
}

// peeked is a forwarded channel with the bytes already read in front, and
// the target it was allowed to reach.
type peeked struct {
	net.Conn
	r      *bufio.Reader
	target string
}

func (p *peeked) Read(b []byte) (int, error) { return p.r.Read(b) }

func newForwarder(c *Client) *forwarder {
	return &forwarder{c: c, closed: make(chan struct{})}
}

// serve accepts forwarded channels until ln closes.
func (f *forwarder) serve(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			f.close()
			return
		}
		go f.handle(conn)
	}
}

func (f *forwarder) close() {
	f.once.Do(func() { close(f.closed) })
}

// allowed reports whether dest is one of the targets; localhost, 127.0.0.1
// and ::1 count as the same host.
func (f *forwarder) allowed(dest string) (string, bool) {
	dh, dp, err := net.SplitHostPort(dest)
	if err != nil {
		return "", false
	}
	for _, t := range f.c.cfg.Targets {
		th, tp, _ := net.SplitHostPort(t)
		if tp == dp && (th == dh || isLoopbackName(th) && isLoopbackName(dh)) {
			return t, true
		}
	}
	return "", false
}

func isLoopbackName(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

var httpMethods = [][]byte{[]byte("GET "), []byte("POST "), []byte("PUT "), []byte("DELETE "), []byte("HEAD "),
	[]byte("OPTIONS "), []byte("PATCH "), []byte("TRACE "), []byte("CONNECT ")}

// counted is a forwarded channel counted as open until its first Close.
type counted struct {
	net.Conn
	c    *Client
	once sync.Once
}

func (cc *counted) Close() error {
	cc.once.Do(func() { cc.c.open.Add(-1) })
	return cc.Conn.Close()
}

// CloseWrite half-closes the channel (raw splices need it).
func (cc *counted) CloseWrite() error {
	closeWrite(cc.Conn)
	return nil
}

func (f *forwarder) handle(raw net.Conn) {
	f.c.open.Add(1)
	f.c.total.Add(1)
	var conn net.Conn = &counted{Conn: raw, c: f.c}
	br := bufio.NewReaderSize(conn, 4096)
	first, err := br.Peek(1)
	if err != nil {
		conn.Close()
		return
	}
	target := f.c.cfg.Targets[0]
	if first[0] == socks5.Version {
		req, err := socks5.ReadRequest(struct {
			io.Reader
			io.Writer
		}{br, conn})
		if err != nil {
			f.c.emit(event.Tunnel{Kind: event.TunnelLog, Message: "bad SOCKS5 request from the relay: " + err.Error()})
			conn.Close()
			return
		}
		t, ok := f.allowed(req.Addr())
		if !ok {
			// The event first: whoever sees the refusal can rely on it.
			f.c.emit(event.Tunnel{Kind: event.TunnelRefused, Message: "refused a connection to " + req.Addr() + ": not one of the tunnel's targets (" + fmt.Sprint(f.c.cfg.Targets) + ")"})
			_ = socks5.WriteReply(conn, socks5.ReplyNotAllowed)
			conn.Close()
			return
		}
		// Success now: if the target is down, the request is held and
		// answered at the HTTP level instead of failing in SOCKS.
		if err := socks5.WriteReply(conn, socks5.ReplySucceeded); err != nil {
			conn.Close()
			return
		}
		target = t
	}
	p := &peeked{Conn: conn, r: br, target: target}
	head, _ := br.Peek(8)
	for _, m := range httpMethods {
		if len(head) >= len(m) && bytes.Equal(head[:len(m)], m) || len(head) < len(m) && bytes.HasPrefix(m, head) && len(head) > 0 {
			f.serveHTTP(p)
			return
		}
	}
	f.splice(p)
}

// splice copies bytes both ways between a non-HTTP channel and the target.
func (f *forwarder) splice(p *peeked) {
	defer p.Close()
	up, err := f.dialTarget(context.Background(), "tcp", p.target)
	if err != nil {
		f.c.emit(event.Tunnel{Kind: event.TunnelLog, Message: "raw connection to " + p.target + " failed: " + err.Error()})
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, p); closeWrite(up); done <- struct{}{} }()
	go func() { _, _ = io.Copy(p, up); closeWrite(p.Conn); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

type holdError struct {
	waited time.Duration
	err    error
}

func (h *holdError) Error() string {
	return "target not accepting connections after " + h.waited.String() + ": " + h.err.Error()
}
func (h *holdError) Unwrap() error { return h.err }

// dialTarget connects to a target, waiting up to HoldTimeout while it
// refuses connections (a server restarting), polling every 50 ms.
func (f *forwarder) dialTarget(ctx context.Context, network, addr string) (net.Conn, error) {
	start := time.Now()
	for attempt := 0; ; attempt++ {
		c, err := loopback.DialContext(ctx, network, addr)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) >= f.c.cfg.HoldTimeout {
			return nil, &holdError{waited: time.Since(start), err: err}
		}
		if attempt == 0 {
			f.c.emit(event.Tunnel{Kind: event.TunnelHolding, Message: "holding a request until the local server at " + addr + " accepts connections (up to " + f.c.cfg.HoldTimeout.String() + ")"})
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-f.closed:
			return nil, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// brokenConn is an answer lost with its connection (EOF, reset, broken
// pipe), not a refusal (dialTarget holds those) nor a timeout.
func brokenConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
