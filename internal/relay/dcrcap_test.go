package relay_test

import (
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/relay"
	"github.com/pomdev/pomdev/internal/relay/access"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
)

// clock is a settable clock for the relay's rate limits.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// register posts one dynamic registration with client, claiming to come
// from xff when it is not "".
func registerFrom(t *testing.T, client *http.Client, base, xff string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+access.PathRegister, strings.NewReader(`{"client_name":"c","redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"none"}`))
	req.Header.Set("Content-Type", "application/json")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRegistrationCapPerSource: one address, even within the rate limit,
// holds at most MaxUnusedClientsPerSource registrations it has not used;
// another address still registers. Behind a trusted proxy the client
// named by X-Forwarded-For is the address; from anyone else the header
// counts for nothing.
func TestRegistrationCapPerSource(t *testing.T) {
	for _, behindProxy := range []bool{false, true} {
		clk := &clock{t: time.Now()}
		h := rt.StartRelay(t, func(c *relay.Config) {
			c.HTTPAuth = relay.HTTPAuthOwner
			c.Now = clk.now
			if behindProxy {
				c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
			}
		})
		base := h.R.BaseURL()
		a, b := "198.51.100.7", "198.51.100.8"
		for i := range access.MaxUnusedClientsPerSource {
			clk.add(10 * time.Second) // within the rate limit
			if s := registerFrom(t, h.Client(), base, a); s != http.StatusCreated {
				t.Fatalf("proxy %v: registration %d: %d", behindProxy, i+1, s)
			}
		}
		clk.add(10 * time.Second)
		if s := registerFrom(t, h.Client(), base, a); s != http.StatusTooManyRequests {
			t.Fatalf("proxy %v: registration %d from one address: %d", behindProxy, access.MaxUnusedClientsPerSource+1, s)
		}
		// Another client: behind the proxy, another X-Forwarded-For; else
		// the header changes nothing and the address is the same.
		want := http.StatusTooManyRequests
		if behindProxy {
			want = http.StatusCreated
		}
		if s := registerFrom(t, h.Client(), base, b); s != want {
			t.Fatalf("proxy %v: another X-Forwarded-For: %d, want %d", behindProxy, s, want)
		}
		// Unused registrations go after an hour; the address registers again.
		clk.add(access.UnusedClientTTL + time.Minute)
		if s := registerFrom(t, h.Client(), base, a); s != http.StatusCreated {
			t.Fatalf("proxy %v: after an hour: %d", behindProxy, s)
		}
	}
}
