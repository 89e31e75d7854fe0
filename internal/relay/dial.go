package relay

import (
	"context"
	"errors"
	"github.com/pomdev/pomdev/internal/relay/front"
	"net"
	"strconv"
	"time"

	"github.com/pomdev/pomdev/internal/socks5"
	"golang.org/x/crypto/ssh"
)

type forwardedTCPPayload struct {
	Addr       string
	Port       uint32
	OriginAddr string
	OriginPort uint32
}

// Dial opens a forwarded-tcpip channel for rt and, for dynamic routes,
// runs the SOCKS5 CONNECT to the target inside it (the front's Tunnel).
func (rt *route) Dial(ctx context.Context, origin string) (net.Conn, error) {
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
	// The channel's goroutines are the connection's: it waits for them.
	started := rt.c.spawn(func() {
		for attempt := 0; ; attempt++ {
			ch, reqs, err := rt.c.sc.OpenChannel("forwarded-tcpip", payload)
			if err == nil && !rt.c.spawn(func() { ssh.DiscardRequests(reqs) }) {
				_ = ch.Close()
				ch, err = nil, errors.New("the connection is closing")
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
	})
	if !started {
		return nil, &front.OfflineError{Err: errors.New("the connection is closing")}
	}
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		// A channel that opens after all is closed (once the connection
		// has ended, its channels close with it).
		_ = rt.c.spawn(func() {
			if r := <-done; r.err == nil {
				_ = r.ch.Close()
			}
		})
		return nil, ctx.Err()
	}
	if res.err != nil {
		return nil, &front.OfflineError{Err: res.err}
	}
	cc := &chanConn{Channel: res.ch, local: rt.c.sc.LocalAddr(), remote: rt.c.sc.RemoteAddr()}
	if rt.static {
		return cc, nil
	}
	target := rt.c.targetOf()
	host, port, _ := splitTarget(target)
	errc := make(chan error, 1)
	if !rt.c.spawn(func() { errc <- socks5.Connect(cc, host, port) }) {
		_ = cc.Close()
		return nil, &front.OfflineError{Err: errors.New("the connection is closing")}
	}
	select {
	case err := <-errc:
		if err != nil {
			_ = cc.Close()
			return nil, &front.TargetError{Target: target, Err: err}
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
