package tunnel_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/event"

	"github.com/pomdev/pomdev/internal/cli/relaycmd"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/pomdev/pomdev/internal/relay"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"github.com/pomdev/pomdev/internal/tunnel"
	"golang.org/x/crypto/ssh"
)

// run starts a tunnel client and collects its events.
type run struct {
	c      *tunnel.Client
	mu     sync.Mutex
	events []event.Tunnel
	done   chan error
	cancel context.CancelFunc
}

func (r *run) has(kind string) (event.Tunnel, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Kind == kind {
			return e, true
		}
	}
	return event.Tunnel{}, false
}

func (r *run) count(kind string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func (r *run) wait(t *testing.T, kind string) event.Tunnel {
	t.Helper()
	var ev event.Tunnel
	rt.WaitFor(t, func() bool {
		var ok bool
		ev, ok = r.has(kind)
		return ok
	}, "event "+kind)
	return ev
}

func start(t *testing.T, h *rt.Harness, signer ssh.Signer, knownHosts string, mod func(*tunnel.Config)) *run {
	t.Helper()
	r := &run{done: make(chan error, 1)}
	cfg := tunnel.Config{
		Addr:              h.SSHAddr,
		Signers:           []ssh.Signer{signer},
		KnownHosts:        knownHosts,
		Targets:           []string{"localhost:1"},
		KeepaliveInterval: time.Second,
		OnEvent: func(e event.Tunnel) {
			r.mu.Lock()
			r.events = append(r.events, e)
			r.mu.Unlock()
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := tunnel.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.c, r.cancel = c, cancel
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("tunnel did not stop")
		}
	})
	return r
}

func TestDynamicThroughRelay(t *testing.T) {
	o := rt.NewOrigin(t, "app")
	h := rt.StartRelay(t, func(c *relay.Config) { c.DefaultTarget = o.HostPort() })
	_, signer := rt.WriteKey(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	var newKey string
	r := start(t, h, signer, kh, func(c *tunnel.Config) {
		c.Targets = []string{o.HostPort()}
		c.OnNewHostKey = func(host, fp string) { newKey = fp }
	})
	url := r.wait(t, event.TunnelReady).URL
	if url == "" || h.R.Routes()[strings.TrimSuffix(strings.SplitN(strings.TrimPrefix(url, "http://"), ".", 2)[0], "")] != url {
		t.Fatalf("url %q, relay routes %v", url, h.R.Routes())
	}
	if newKey != h.Info.HostKeyFingerprint {
		t.Errorf("first-use fingerprint %q, relay's %q", newKey, h.Info.HostKeyFingerprint)
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo"}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Mcp-Session-Id", "abc")
	resp, err := h.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := rt.Decode(t, string(body))
	if resp.StatusCode != 200 || m["host"] != o.HostPort() || m["body"] == "" || resp.Header.Get("Mcp-Session-Id") != "abc" {
		t.Fatalf("%d %v %v", resp.StatusCode, m, resp.Header)
	}
	ev := r.wait(t, event.TunnelRequest)
	if ev.Request.Status != 200 || ev.Request.RPCMethod != "tools/call" || ev.Request.Tool != "echo" || ev.Request.RPCID != "3" {
		t.Fatalf("request event %+v", ev.Request)
	}

	// SSE through both ends, event by event.
	sresp, err := h.Client().Get(url + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	for _, e := range []string{"a", "b"} {
		o.Events <- e
		n, err := io.ReadAtLeast(sresp.Body, buf, len("data: a\n\n"))
		if err != nil || string(buf[:n]) != "data: "+e+"\n\n" {
			t.Fatalf("sse %q %v", buf[:n], err)
		}
	}
	// The open stream is an open connection; closing it brings the count
	// back to zero.
	if open, total := r.c.Connections(); open < 1 || total < 1 {
		t.Errorf("connections: %d open, %d in all; want at least 1 of each", open, total)
	}
	sresp.Body.Close()
	rt.WaitFor(t, func() bool { open, _ := r.c.Connections(); return open == 0 }, "no open connections")
}

// pomdev relay's default target is elsewhere: the client tells the relay
// its own target (POMDEV_TARGET) before forwarding, so requests reach it.
func TestTellsRelayItsTarget(t *testing.T) {
	mine := rt.NewOrigin(t, "mine")
	other := rt.NewOrigin(t, "other")
	h := rt.StartRelay(t, func(c *relay.Config) { c.DefaultTarget = other.HostPort() })
	_, signer := rt.WriteKey(t)
	r := start(t, h, signer, filepath.Join(t.TempDir(), "kh"), func(c *tunnel.Config) { c.Targets = []string{mine.HostPort()} })
	url := r.wait(t, event.TunnelReady).URL
	code, body := h.Get(url + "/")
	if code != 200 || rt.Decode(t, body)["origin"] != "mine" {
		t.Fatalf("%d %s", code, body)
	}
	if _, refused := r.has(event.TunnelRefused); refused {
		t.Fatal("a request was refused")
	}
}

// A target that is restarting: requests wait for it, then go through; a
// target down for longer than the hold gets a clear 503.
func TestHoldWhileTargetRestarts(t *testing.T) {
	target := rt.ClosedAddr(t)
	h := rt.StartRelay(t, func(c *relay.Config) { c.DefaultTarget = target })
	_, signer := rt.WriteKey(t)
	r := start(t, h, signer, filepath.Join(t.TempDir(), "kh"), func(c *tunnel.Config) {
		c.Targets = []string{target}
		c.HoldTimeout = 5 * time.Second
	})
	url := r.wait(t, event.TunnelReady).URL

	type result struct {
		code int
		body string
	}
	res := make(chan result, 1)
	go func() {
		resp, err := h.Client().Get(url + "/held")
		if err != nil {
			res <- result{0, err.Error()}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{resp.StatusCode, string(b)}
	}()
	// The server comes up while the request waits.
	r.wait(t, event.TunnelHolding)
	srvLn, err := net.Listen("tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up "+r.URL.Path) })}
	go srv.Serve(srvLn)
	got := <-res
	if got.code != 200 || got.body != "up /held" {
		t.Fatalf("held request: %d %q", got.code, got.body)
	}
	srv.Close()
}

func TestHoldTimesOut(t *testing.T) {
	target := rt.ClosedAddr(t)
	h := rt.StartRelay(t, func(c *relay.Config) { c.DefaultTarget = target })
	_, signer := rt.WriteKey(t)
	r := start(t, h, signer, filepath.Join(t.TempDir(), "kh"), func(c *tunnel.Config) {
		c.Targets = []string{target}
		c.HoldTimeout = 300 * time.Millisecond
	})
	url := r.wait(t, event.TunnelReady).URL
	code, body := h.Get(url + "/")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "not accepting connections") || !strings.Contains(body, target) {
		t.Fatalf("%d %q", code, body)
	}
}

// A relay whose host key changed is refused with both fingerprints and the
// command that forgets the old one; exit code 1.
func TestHostKeyChanged(t *testing.T) {
	o := rt.NewOrigin(t, "x")
	h := rt.StartRelay(t, func(c *relay.Config) { c.DefaultTarget = o.HostPort() })
	_, signer := rt.WriteKey(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	r := start(t, h, signer, kh, func(c *tunnel.Config) { c.Targets = []string{o.HostPort()} })
	r.wait(t, event.TunnelReady)
	r.cancel()
	<-r.done
	r.done <- nil // for the cleanup

	oldFP := h.Info.HostKeyFingerprint
	h.StateDir = t.TempDir() // a reinstalled relay: new host key, same address
	h.Restart(func(c *relay.Config) { c.DefaultTarget = o.HostPort() })
	c, _ := tunnel.New(tunnel.Config{Addr: h.SSHAddr, Signers: []ssh.Signer{signer}, KnownHosts: kh, Targets: []string{o.HostPort()}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := c.Run(ctx)
	var hk *tunnel.HostKeyChangedError
	if !errors.As(err, &hk) || hk.Old != oldFP || hk.New != h.Info.HostKeyFingerprint {
		t.Fatalf("got %v", err)
	}
	if hk.Host != h.SSHAddr {
		t.Fatalf("host %q, want %q", hk.Host, h.SSHAddr)
	}
	if n, err := tunnel.ForgetHost(kh, "127.0.0.1"); err != nil || n != 1 {
		t.Fatalf("forget: %d %v", n, err)
	}
	r2 := start(t, h, signer, kh, func(c *tunnel.Config) { c.Targets = []string{o.HostPort()} })
	r2.wait(t, event.TunnelReady)
}

// Sign-in: the link is shown once, approved with pomdev relay approve; the
// tunnel reconnects after the relay restarts with the same URL and without
// a second sign-in.
func TestSigninAndReconnect(t *testing.T) {
	o := rt.NewOrigin(t, "signin")
	mod := func(c *relay.Config) { c.Auth = relay.AuthSignin; c.DefaultTarget = o.HostPort() }
	h := rt.StartRelay(t, mod)
	_, signer := rt.WriteKey(t)
	approved := make(chan error, 1)
	r := start(t, h, signer, filepath.Join(t.TempDir(), "kh"), func(c *tunnel.Config) {
		c.Targets = []string{o.HostPort()}
		c.SignIn = func(name, link string) {
			code := link[strings.Index(link, "user_code=")+len("user_code="):]
			go func() {
				ios, _, _, _ := iostreams.Test()
				approved <- relaycmd.ApproveRun(&relaycmd.ApproveOptions{IO: ios, Code: code, StateDir: h.StateDir})
			}()
		}
	})
	if err := <-approved; err != nil {
		t.Fatal(err)
	}
	url := r.wait(t, event.TunnelReady).URL
	if ev, _ := r.has(event.TunnelSignIn); ev.Message != relay.SigninName {
		t.Fatalf("sign-in event %+v", ev)
	}
	h.Restart(mod)
	rt.WaitFor(t, func() bool { return r.count(event.TunnelReady) >= 2 }, "the tunnel to come back")
	if r.c.URL() != url {
		t.Fatalf("URL after restart %q, want %q", r.c.URL(), url)
	}
	if n := r.count(event.TunnelSignIn); n != 1 {
		t.Fatalf("%d sign-ins, want 1", n)
	}
	if code, _ := h.Get(url + "/"); code != 200 {
		t.Fatalf("status %d", code)
	}
}

func user() (string, error) {
	out, err := exec.Command("id", "-un").Output()
	return strings.TrimSpace(string(out)), err
}

func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// Static mode: the route NAME on port 443, raw channels (no SOCKS), HTTP
// still proxied with Host rewritten to the target.
func TestStaticRoute(t *testing.T) {
	o := rt.NewOrigin(t, "static")
	h := rt.StartRelay(t, nil)
	_, signer := rt.WriteKey(t)
	r := start(t, h, signer, filepath.Join(t.TempDir(), "kh"), func(c *tunnel.Config) {
		c.Targets = []string{o.HostPort()}
		c.Static = "my-app"
	})
	url := r.wait(t, event.TunnelReady).URL
	if url != h.R.Routes()["my-app"] {
		t.Fatalf("url %q, routes %v", url, h.R.Routes())
	}
	code, body := h.Get(url + "/static")
	if m := rt.Decode(t, body); code != 200 || m["origin"] != "static" || m["host"] != o.HostPort() {
		t.Fatalf("%d %v", code, m)
	}
}

// A target that drops a connection mid-request (stopped to restart): GET
// is retried and succeeds; POST is not retried (it may have run).
func TestRetryIdempotentOnBrokenConnection(t *testing.T) {
	var mu sync.Mutex
	drops := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		drops[r.Method]++
		first := drops[r.Method] == 1
		mu.Unlock()
		if first {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close() // no answer at all
			}
			return
		}
		io.WriteString(w, "second try "+r.Method)
	}))
	defer srv.Close()
	target := strings.TrimPrefix(srv.URL, "http://")
	h := rt.StartRelay(t, func(c *relay.Config) { c.DefaultTarget = target })
	_, signer := rt.WriteKey(t)
	r := start(t, h, signer, filepath.Join(t.TempDir(), "kh"), func(c *tunnel.Config) { c.Targets = []string{target} })
	url := r.wait(t, event.TunnelReady).URL
	if code, body := h.Get(url + "/x"); code != 200 || body != "second try GET" {
		t.Fatalf("GET: %d %q", code, body)
	}
	resp, err := h.Client().Post(url+"/mcp", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("POST answered %d, want 502 (not retried)", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if drops["POST"] != 1 {
		t.Fatalf("POST reached the target %d times", drops["POST"])
	}
}

// Upgrade requests (WebSocket and others) pass through the tunnel both ways.
func TestUpgradeThroughTunnel(t *testing.T) {
	o := rt.NewOrigin(t, "upgrade")
	h := rt.StartRelay(t, func(c *relay.Config) { c.DefaultTarget = o.HostPort() })
	_, signer := rt.WriteKey(t)
	r := start(t, h, signer, filepath.Join(t.TempDir(), "kh"), func(c *tunnel.Config) { c.Targets = []string{o.HostPort()} })
	url := r.wait(t, event.TunnelReady).URL
	h.UpgradeEcho(url)
}

// A chunked request body arrives whole, and a POST after the target
// restarted (closing the tunnel's keep-alive connection to it) reaches the
// new server instead of failing on the dead connection.
func TestBodiesAndRestartedTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	serve := func(ln net.Listener, name string) *http.Server {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s %d %q", name, r.Method, len(body), r.TransferEncoding)
		})}
		go srv.Serve(ln)
		return srv
	}
	srv := serve(ln, "one")
	h := rt.StartRelay(t, func(c *relay.Config) { c.DefaultTarget = target })
	_, signer := rt.WriteKey(t)
	r := start(t, h, signer, filepath.Join(t.TempDir(), "kh"), func(c *tunnel.Config) { c.Targets = []string{target} })
	url := r.wait(t, event.TunnelReady).URL
	client := h.Client() // one client: keep-alive, the same way in for both requests
	post := func(what string, body io.Reader) string {
		t.Helper()
		resp, err := client.Post(url+"/mcp", "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("POST (%s): %d %s", what, resp.StatusCode, b)
		}
		return string(b)
	}
	big := strings.Repeat("x", 100_000)
	// An io.Reader of unknown length: the client sends it chunked.
	if got := post("chunked", io.MultiReader(strings.NewReader(big))); !strings.HasPrefix(got, "one POST 100000 ") {
		t.Fatalf("chunked body: %q", got)
	}
	if got := post("sized", strings.NewReader("{}")); got != `one POST 2 []` {
		t.Fatalf("sized body: %q", got)
	}
	srv.Close()
	ln2, err := net.Listen("tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	srv2 := serve(ln2, "two")
	defer srv2.Close()
	if got := post("after the restart", strings.NewReader("{}")); got != `two POST 2 []` {
		t.Fatalf("after the restart: %q", got)
	}
}
