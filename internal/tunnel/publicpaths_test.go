package tunnel_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/relay"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"github.com/pomdev/pomdev/internal/tunnel"
)

// The tunnel announces its public paths to pomdev relay, which serves
// them without a token on a gated route; a set the relay refuses stops the
// tunnel with the relay's reason.
func TestPublicPathsThroughRelay(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "app "+r.URL.Path)
	}))
	defer app.Close()
	h := rt.StartRelay(t, func(c *relay.Config) { c.HTTPAuth = relay.HTTPAuthOwner })
	_, signer := rt.WriteKey(t)
	r := start(t, h, signer, filepath.Join(t.TempDir(), "kh"), func(c *tunnel.Config) {
		c.Targets = []string{strings.TrimPrefix(app.URL, "http://")}
		c.PublicPaths = []string{"/widgets/**"}
	})
	url := r.wait(t, event.TunnelReady).URL
	get := func(path string) (int, string) {
		resp, err := h.Client().Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/widgets/echo.html"); code != http.StatusOK || body != "app /widgets/echo.html" {
		t.Fatalf("a public path: %d %q", code, body)
	}
	if code, _ := get("/private"); code != http.StatusUnauthorized {
		t.Fatalf("a private path: %d", code)
	}
	said := false
	r.mu.Lock()
	for _, e := range r.events {
		said = said || (e.Kind == event.TunnelLog && strings.Contains(e.Message, "served without a token by the relay: /widgets/**"))
	}
	r.mu.Unlock()
	if !said {
		t.Error("no event says which paths are public")
	}

	_, other := rt.WriteKey(t)
	bad := start(t, h, other, filepath.Join(t.TempDir(), "kh"), func(c *tunnel.Config) {
		c.Targets = []string{strings.TrimPrefix(app.URL, "http://")}
		c.PublicPaths = []string{"/mcp/**"}
	})
	var err error
	rt.WaitFor(t, func() bool {
		select {
		case err = <-bad.done:
			bad.done <- err
			return true
		default:
			return false
		}
	}, "the tunnel to stop")
	if err == nil || !strings.Contains(err.Error(), "refused the public paths POMDEV_PUBLIC_PATHS=/mcp/**") {
		t.Fatalf("a refused set: %v", err)
	}
}
