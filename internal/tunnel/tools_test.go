package tunnel_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/relay"
	"github.com/pomdev/pomdev/internal/relay/oidcrp"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"github.com/pomdev/pomdev/internal/tunnel"
	"golang.org/x/crypto/ssh"
)

// The tunnel's own tool rules reach pomdev relay, dynamic and static, and
// the relay enforces them: a denied call never reaches the app.
func TestToolRulesEnforcedByRelay(t *testing.T) {
	var posts atomic.Int32
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`)
	}))
	defer app.Close()
	h := rt.StartRelay(t, func(c *relay.Config) { c.HTTPAuth = relay.HTTPAuthNone })
	for _, static := range []string{"", "tools-app"} {
		_, signer := rt.WriteKey(t)
		r := start(t, h, signer, filepath.Join(t.TempDir(), "kh"), func(c *tunnel.Config) {
			c.Targets = []string{strings.TrimPrefix(app.URL, "http://")}
			c.Static = static
			c.ToolsDeny = []string{"delete_*", "drop"}
		})
		url := r.wait(t, event.TunnelReady).URL
		if log, ok := r.has(event.TunnelLog); !ok || !strings.Contains(log.Message, "deny delete_*,drop") {
			t.Fatalf("no event says which rules are in force: %+v", log)
		}
		call := func(tool string) string {
			resp, err := h.Client().Post(url+"/mcp", "application/json",
				strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"`+tool+`"}}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return string(b)
		}
		before := posts.Load()
		if got := call("delete_everything"); !strings.Contains(got, `deny \"delete_*\" at the tunnel's own tool policy`) || posts.Load() != before {
			t.Fatalf("static %q: a denied call: %s (app reached %d times)", static, got, posts.Load()-before)
		}
		if got := call("echo"); !strings.Contains(got, `"result"`) || posts.Load() != before+1 {
			t.Fatalf("static %q: an allowed call: %s", static, got)
		}
	}
}

// A relay that cannot enforce the rules (a plain OpenSSH server here;
// pom.run alike) is refused at once rather than given the tools.
func TestToolRulesNeedPomdevRelay(t *testing.T) {
	_, signer := rt.WriteKey(t)
	addr := startSSHD(t, signer.PublicKey())
	u, err := user()
	if err != nil {
		t.Fatal(err)
	}
	h := &rt.Harness{SSHAddr: addr}
	r := start(t, h, signer, filepath.Join(t.TempDir(), "kh"), func(c *tunnel.Config) {
		c.User = u
		c.ToolsDeny = []string{"delete_*"}
	})
	var runErr error
	rt.WaitFor(t, func() bool {
		select {
		case runErr = <-r.done:
			r.done <- runErr
			return true
		default:
			return false
		}
	}, "the tunnel to give up")
	if runErr == nil || !strings.Contains(runErr.Error(), "need a pomdev relay") {
		t.Fatalf("Run: %v", runErr)
	}
	if _, ok := r.has(event.TunnelReady); ok {
		t.Fatal("the tunnel came up without its tool rules")
	}
}

// pomdev's own client signs in through the relay's OpenID provider: the
// link it gets leads through the provider, and the key is bound to the
// person who signed in.
func TestSigninThroughProvider(t *testing.T) {
	o := rt.NewOrigin(t, "oidc")
	h := rt.StartRelay(t, func(c *relay.Config) {
		c.Auth = relay.AuthSignin
		c.DefaultTarget = o.HostPort()
		base := "http://localhost:" + fmt.Sprint(c.HTTPListener.Addr().(*net.TCPAddr).Port)
		c.OIDC = oidcrp.Config{Issuer: rt.StartOP(t, base+oidcrp.CallbackPath), ClientID: "web", ClientSecret: "secret"}
	})
	_, signer := rt.WriteKey(t)
	pages := make(chan string, 1)
	r := start(t, h, signer, filepath.Join(t.TempDir(), "kh"), func(c *tunnel.Config) {
		c.Targets = []string{o.HostPort()}
		c.SignIn = func(name, link string) {
			go func() {
				_, page := rt.SignInAtOP(t, rt.Browser(t), link, "test-user@localhost")
				pages <- page
			}()
		}
	})
	if page := <-pages; !strings.Contains(page, "signed in as test-user@zitadel.ch") {
		t.Fatalf("the relay's page after the provider:\n%s", page)
	}
	url := r.wait(t, event.TunnelReady).URL
	if code, _ := h.Get(url + "/"); code != 200 {
		t.Fatalf("status %d", code)
	}
	if sub, email := h.R.SignedInAs(ssh.FingerprintSHA256(signer.PublicKey())); sub != "id1" || email != "test-user@zitadel.ch" {
		t.Fatalf("the key is bound to %q %q", sub, email)
	}
}
