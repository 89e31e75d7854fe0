package relay_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/pgtest"
	"github.com/pomdev/pomdev/internal/relay"
)

// Two relays on one PostgreSQL store share their state: a token granted
// through one passes the other's gate once the tunnel has moved there, the
// key gets its name back on the other relay, and that name stays
// reserved for it on both (another key is refused it).
func TestTwoRelaysShareState(t *testing.T) {
	pg := pgtest.DB(t)
	mod := func(c *relay.Config) {
		c.Store = pg
		// Behind one load balancer every node prints the same URLs.
		c.PublicPort = 8443
	}
	a := newGated(t, mod, false)
	_, tk := a.grant(t)
	if resp := a.post(t, a.url+"/mcp", tk.Access); resp.StatusCode != 200 {
		t.Fatalf("through relay A: %d", resp.StatusCode)
	}
	name := strings.SplitN(strings.TrimPrefix(a.url, "https://"), ".", 2)[0]

	b := newGated(t, mod, true)
	stranger := b.key
	// The tunnel moves: its client reconnects to the other relay.
	a.ssh.Kill()
	a.h.WaitRoute(0)
	b.key = a.key
	b.ssh = b.h.RunSSH(b.key, "-T", "-o", "SetEnv=POMDEV_TARGET="+b.target(), "-R", "0")
	b.ssh.WaitLine(t, "Remote: ")
	if b.url = b.h.WaitURL(); b.url != a.url {
		t.Fatalf("on relay B the key's route is %s, want %s", b.url, a.url)
	}
	if resp := b.post(t, b.url+"/mcp", tk.Access); resp.StatusCode != 200 {
		t.Fatalf("relay A's token through relay B: %d", resp.StatusCode)
	}
	if resp := b.post(t, b.url+"/mcp", ""); resp.StatusCode != 401 {
		t.Fatalf("no token through relay B: %d, want 401", resp.StatusCode)
	}
	grants, err := b.h.R.Access().Grants(context.Background(), "")
	if err != nil || len(grants) != 1 {
		t.Fatalf("relay B's grants: %+v %v", grants, err)
	}
	// Another key asks for that name, on either relay, and is refused.
	for _, h := range []*gatedTunnel{a, b} {
		p := h.h.RunSSH(stranger, "-T", "-o", "ExitOnForwardFailure=yes", "-R", name+":80:"+b.target())
		<-p.Done // ExitOnForwardFailure
		if !strings.Contains(p.Stderr(), "remote port forwarding failed") {
			t.Fatalf("another key asking for %s: %s", name, p.Stderr())
		}
		if n := len(h.h.R.Routes()); h == a && n != 0 {
			t.Fatalf("relay A took the name for another key: %v", h.h.R.Routes())
		}
	}
}
