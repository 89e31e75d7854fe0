// Package loopback dials "localhost" and "*.localhost" at this machine's
// loopback address without asking a resolver (RFC 6761 §6.3), so that
// pomdev's own clients reach URLs of its relay (http://name.localhost:8088)
// as browsers do; the system resolver answers "no such host" for them.
package loopback

import (
	"context"
	"net"
	"net/http"
	"strings"
)

// IsLocalhost reports whether host is "localhost" or a name under it.
func IsLocalhost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// IsLoopback reports whether host names this machine: a localhost name or
// a loopback address (127.0.0.0/8, ::1).
func IsLoopback(host string) bool {
	if IsLocalhost(host) {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// DialContext dials addr as net.Dialer does, except that a localhost name
// is dialled at 127.0.0.1, then at ::1.
func DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !IsLocalhost(host) {
		return d.DialContext(ctx, network, addr)
	}
	c, err := d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
	if err == nil {
		return c, nil
	}
	if c6, err6 := d.DialContext(ctx, network, net.JoinHostPort("::1", port)); err6 == nil {
		return c6, nil
	}
	return nil, err
}

// Transport is a copy of http.DefaultTransport that dials through
// DialContext.
func Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = DialContext
	return t
}

// Client is an http.Client over Transport.
func Client() *http.Client { return &http.Client{Transport: Transport()} }
