package relay

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The stock OpenSSH client, -N: the tunnel works without a session and the
// request reaches the default target with Host rewritten to it.
func TestOpenSSHDynamicNoSession(t *testing.T) {
	o := newOrigin(t, "default")
	h := startRelay(t, func(c *Config) { c.DefaultTarget = o.hostPort() })
	key, _ := writeKey(t)
	h.runSSH(key, "-N", "-R", "0")
	routes := h.waitRoute(1)
	var url string
	for _, u := range routes {
		url = u
	}
	if !strings.HasPrefix(url, "http://") || !strings.Contains(url, ".localhost:") {
		t.Fatalf("url %q", url)
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/mcp?x=1", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Mcp-Session-Id", "sess-1")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	resp, err := h.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	m := decode(t, string(body))
	if m["origin"] != "default" || m["path"] != "/mcp?x=1" || m["body"] == "" {
		t.Fatalf("origin saw %v", m)
	}
	if m["host"] != o.hostPort() {
		t.Errorf("Host = %q, want the target %q", m["host"], o.hostPort())
	}
	if m["xfh"] != strings.TrimPrefix(url, "http://") || m["xff"] != "127.0.0.1" || m["xfp"] != "http" {
		t.Errorf("forwarding headers: %v", m)
	}
	if m["protocol"] != "2025-11-25" || resp.Header.Get("Mcp-Session-Id") != "sess-1" {
		t.Errorf("MCP headers not passed: %v / %v", m["protocol"], resp.Header)
	}
}

// -T: the first line is "Remote: <url>", then one line per request with the
// MCP method and tool.
func TestOpenSSHSessionLines(t *testing.T) {
	o := newOrigin(t, "lines")
	h := startRelay(t, func(c *Config) { c.DefaultTarget = o.hostPort() })
	key, _ := writeKey(t)
	p := h.runSSH(key, "-T", "-R", "0")
	first := p.waitLine(t, "")
	if !strings.HasPrefix(first, "Remote: http://") {
		t.Fatalf("first line %q", first)
	}
	url := strings.TrimPrefix(first, "Remote: ")
	req, _ := http.NewRequest(http.MethodPost, url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	line := p.waitContains(t, "POST /mcp")
	for _, want := range []string{"POST /mcp 200", "tools/call echo"} {
		if !strings.Contains(line, want) {
			t.Errorf("request line %q lacks %q", line, want)
		}
	}
}

// Static forward by name: raw bytes to the client's chosen destination.
func TestOpenSSHStaticForward(t *testing.T) {
	o := newOrigin(t, "static")
	h := startRelay(t, nil)
	key, _ := writeKey(t)
	h.runSSH(key, "-N", "-R", "myapp:80:"+o.hostPort())
	routes := h.waitRoute(1)
	url, ok := routes["myapp"]
	if !ok {
		t.Fatalf("routes %v", routes)
	}
	code, body := h.get(url + "/hello")
	if code != 200 || decode(t, body)["origin"] != "static" {
		t.Fatalf("%d %s", code, body)
	}
	// Static routes keep the public Host (the relay does not know the target).
	if got := decode(t, body)["host"]; got != strings.TrimPrefix(url, "http://") {
		t.Errorf("Host %q", got)
	}

	// A second key cannot take a name held by a live tunnel.
	key2, _ := writeKey(t)
	p2 := h.runSSH(key2, "-N", "-R", "myapp:80:"+o.hostPort())
	select {
	case <-p2.done:
	case <-time.After(15 * time.Second):
		t.Fatal("second key's ssh kept running: its forward should have been refused")
	}
	if !strings.Contains(p2.stderrText(), "remote port forwarding failed") {
		t.Errorf("stderr %q", p2.stderrText())
	}
	if h.r.Routes()["myapp"] != url {
		t.Fatal("route lost")
	}
}

// SetEnv=POMDEV_TARGET chooses another target; a target nobody listens on
// gives 503, a route whose tunnel left gives 502, an unknown one 404.
func TestOpenSSHTargetAndErrorPages(t *testing.T) {
	def := newOrigin(t, "default")
	other := newOrigin(t, "other")
	h := startRelay(t, func(c *Config) { c.DefaultTarget = def.hostPort() })
	key, _ := writeKey(t)
	p := h.runSSH(key, "-T", "-o", "SetEnv=POMDEV_TARGET="+other.hostPort(), "-R", "0")
	url := strings.TrimPrefix(p.waitLine(t, "Remote: "), "Remote: ")
	code, body := h.get(url + "/")
	if code != 200 || decode(t, body)["origin"] != "other" {
		t.Fatalf("%d %s", code, body)
	}

	// Nothing listens on the target: 503 naming it.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	key2, _ := writeKey(t)
	p2 := h.runSSH(key2, "-T", "-o", "SetEnv=POMDEV_TARGET="+closed, "-R", "0")
	url2 := strings.TrimPrefix(p2.waitLine(t, "Remote: "), "Remote: ")
	code, body = h.get(url2 + "/")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "local server not reachable") && !strings.Contains(body, "could not connect to "+closed) {
		t.Fatalf("want 503 naming %s, got %d %s", closed, code, body)
	}

	// The tunnel goes away: 502 tunnel offline.
	p.kill()
	waitFor(t, func() bool { return len(h.r.Routes()) == 1 }, "route released")
	code, body = h.get(url + "/")
	if code != http.StatusBadGateway || !strings.Contains(body, "Tunnel offline") {
		t.Fatalf("want 502, got %d %s", code, body)
	}
	code, body = h.get("http://nobody-here-000.localhost/")
	if code != http.StatusNotFound || !strings.Contains(body, "pomdev relay") {
		t.Fatalf("want 404, got %d %s", code, body)
	}
	code, body = h.get("http://other.example/")
	if code != http.StatusNotFound {
		t.Fatalf("foreign host: %d %s", code, body)
	}
	code, body = h.get("http://localhost/healthz")
	if code != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("healthz %d %s", code, body)
	}
}

// SSE through the tunnel: each event arrives when sent, not at the end;
// an idle stream stays open across the keepalive interval.
func TestOpenSSHServerSentEvents(t *testing.T) {
	o := newOrigin(t, "sse")
	h := startRelay(t, func(c *Config) {
		c.DefaultTarget = o.hostPort()
		c.KeepaliveInterval = 200 * time.Millisecond
	})
	key, _ := writeKey(t)
	h.runSSH(key, "-N", "-R", "0")
	var url string
	for _, u := range h.waitRoute(1) {
		url = u
	}
	resp, err := h.client().Get(url + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	for i, ev := range []string{"one", "two", "three"} {
		if i == 2 {
			// Silent for several keepalive intervals: the stream must live.
			time.Sleep(1 * time.Second)
		}
		o.events <- ev
		line, err := br.ReadString('\n')
		if err != nil || line != "data: "+ev+"\n" {
			t.Fatalf("event %d: %q, %v", i, line, err)
		}
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
}

// Upgrade requests (WebSocket and others) pass through both ways.
func TestOpenSSHUpgrade(t *testing.T) {
	o := newOrigin(t, "upgrade")
	h := startRelay(t, func(c *Config) { c.DefaultTarget = o.hostPort() })
	key, _ := writeKey(t)
	h.runSSH(key, "-N", "-R", "0")
	var url string
	for _, u := range h.waitRoute(1) {
		url = u
	}
	c, err := net.Dial("tcp", h.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	host := strings.TrimPrefix(url, "http://")
	if _, err := io.WriteString(c, "GET /upgrade HTTP/1.1\r\nHost: "+host+"\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("%v %v", resp, err)
	}
	for _, msg := range []string{"ping", "pong-pong"} {
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo %q: %q %v", msg, buf, err)
		}
	}
}

// The same key gets the same URL after reconnecting and after the relay
// restarts; a reconnect takes over its stale connection at once.
func TestOpenSSHStableURL(t *testing.T) {
	o := newOrigin(t, "stable")
	mod := func(c *Config) { c.DefaultTarget = o.hostPort() }
	h := startRelay(t, mod)
	key, _ := writeKey(t)
	p := h.runSSH(key, "-T", "-R", "0")
	first := p.waitLine(t, "Remote: ")

	// A second connection with the same key while the first still lives
	// (a network blip from the client's view): it takes the route over.
	p2 := h.runSSH(key, "-T", "-R", "0")
	if got := p2.waitLine(t, "Remote: "); got != first {
		t.Fatalf("reconnect got %q, want %q", got, first)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the stale connection was not closed")
	}
	p2.kill()

	h.restart(mod)
	p3 := h.runSSH(key, "-T", "-R", "0")
	if got := p3.waitLine(t, "Remote: "); got != first {
		t.Fatalf("after restart got %q, want %q", got, first)
	}
	code, _ := h.get(strings.TrimPrefix(first, "Remote: ") + "/")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
}

// keys mode: a key outside authorized_keys is refused; adding it to the
// file lets it in without a restart.
func TestOpenSSHKeysMode(t *testing.T) {
	requireOpenSSH(t)
	key, signer := writeKey(t)
	_, other := writeKey(t)
	ak := filepath.Join(t.TempDir(), "authorized_keys")
	if err := os.WriteFile(ak, ssh.MarshalAuthorizedKey(other.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startRelay(t, func(c *Config) { c.Auth = AuthKeys; c.AuthorizedKeys = ak })
	p := h.runSSH(key, "-o", "BatchMode=yes", "-N", "-R", "0")
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("unknown key was not refused")
	}
	if !strings.Contains(p.stderrText(), "Permission denied") {
		t.Fatalf("stderr %q", p.stderrText())
	}
	data := append(ssh.MarshalAuthorizedKey(other.PublicKey()), ssh.MarshalAuthorizedKey(signer.PublicKey())...)
	if err := os.WriteFile(ak, append([]byte("# team keys\n"), data...), 0o600); err != nil {
		t.Fatal(err)
	}
	// Make sure the reload sees a different mtime even on coarse clocks.
	future := time.Now().Add(2 * time.Second)
	_ = os.Chtimes(ak, future, future)
	h.runSSH(key, "-o", "BatchMode=yes", "-N", "-R", "0")
	h.waitRoute(1)
}
