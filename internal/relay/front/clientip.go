package front

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr makes req.RemoteAddr the client's address when req came
// through a trusted proxy: the right-most address of X-Forwarded-For that
// is not itself a trusted proxy (addresses to its left are the client's
// own claims). Everything after — rate limits, per-source bounds, the
// X-Forwarded-For the app sees — then counts the client, not the proxy.
// Without trusted proxies, or from any other peer, the header is ignored
// (and replaced before the request reaches an app).
func (f *Front) clientAddr(req *http.Request) {
	if len(f.cfg.TrustedProxies) == 0 {
		return
	}
	peer, err := netip.ParseAddrPort(req.RemoteAddr)
	if err != nil || !f.trusted(peer.Addr()) {
		return
	}
	hops := forwardedFor(req.Header)
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			return // a hop the relay cannot read: keep the proxy as the source
		}
		if !f.trusted(a) {
			req.RemoteAddr = net.JoinHostPort(a.Unmap().String(), "0")
			return
		}
	}
}

func (f *Front) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range f.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFor is the addresses of every X-Forwarded-For header, in order
// (at most 32: a longer chain is no proxy's).
func forwardedFor(h http.Header) []string {
	var out []string
	for _, v := range h.Values("X-Forwarded-For") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, strings.Trim(f, "[]"))
			}
		}
	}
	if len(out) > 32 {
		out = out[len(out)-32:]
	}
	return out
}
