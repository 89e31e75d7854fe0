package relay_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/relay"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
)

// Serve returns only when every goroutine it started has: the SSH accept
// loop, the keepalive ticker, the HTTP and control servers, and each
// connection's serve loop.
func TestServeJoinsItsGoroutines(t *testing.T) {
	rt.RequireOpenSSH(t)
	origin := rt.NewOrigin(t, "joined")
	h := rt.StartRelay(t, func(c *relay.Config) {
		c.DefaultTarget = origin.HostPort()
		c.HTTPAuth = relay.HTTPAuthOwner // the control socket is served too
	})
	key, _ := rt.WriteKey(t)
	p := h.RunSSH(key, "-T", "-R", "0", "127.0.0.1")
	p.WaitLine(t, "Remote:")
	h.WaitRoute(1)
	h.Stop()
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, g := range strings.Split(stacks, "\n\n") {
		for _, fn := range []string{
			"relay.(*Relay).Serve", "relay.(*Relay).serveSSH", "relay.(*Relay).keepalive",
			"relay.(*conn).serve", "relay.(*Relay).handleConn", "relay.(*conn).handleSession",
			"relay.(*conn).runSession", "relay.(*conn).ping", "relay.(*route).Dial", "front.(*Link).put",
			"front.forwarder.switchProtocols", "front.forwarder.exchange",
		} {
			if strings.Contains(g, fn) {
				t.Errorf("%s still runs after Serve returned:\n%s", fn, g)
			}
		}
	}
}
