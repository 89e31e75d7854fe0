package relay_test

import (
	"bufio"
	"encoding/json"
	"github.com/pomdev/pomdev/internal/relay/console"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/relay"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"golang.org/x/crypto/ssh"
)

// The stock OpenSSH client, -N: the tunnel works without a session and the
// request reaches the default target with Host rewritten to it.
func TestOpenSSHDynamicNoSession(t *testing.T) {
	o := rt.NewOrigin(t, "default")
	h := rt.StartRelay(t, func(c *relay.Config) { c.DefaultTarget = o.HostPort() })
	key, _ := rt.WriteKey(t)
	h.RunSSH(key, "-N", "-R", "0")
	routes := h.WaitRoute(1)
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
	resp, err := h.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	m := rt.Decode(t, string(body))
	if m["origin"] != "default" || m["path"] != "/mcp?x=1" || m["body"] == "" {
		t.Fatalf("origin saw %v", m)
	}
	if m["host"] != o.HostPort() {
		t.Errorf("Host = %q, want the target %q", m["host"], o.HostPort())
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
	o := rt.NewOrigin(t, "lines")
	h := rt.StartRelay(t, func(c *relay.Config) { c.DefaultTarget = o.HostPort() })
	key, _ := rt.WriteKey(t)
	p := h.RunSSH(key, "-T", "-R", "0")
	first := p.WaitLine(t, "")
	if !strings.HasPrefix(first, "Remote: http://") {
		t.Fatalf("first line %q", first)
	}
	url := strings.TrimPrefix(first, "Remote: ")
	req, _ := http.NewRequest(http.MethodPost, url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	line := p.WaitContains(t, "POST /mcp")
	for _, want := range []string{"POST /mcp 200", "tools/call echo"} {
		if !strings.Contains(line, want) {
			t.Errorf("request line %q lacks %q", line, want)
		}
	}
}

// Static forward by name: raw bytes to the client's chosen destination.
func TestOpenSSHStaticForward(t *testing.T) {
	o := rt.NewOrigin(t, "static")
	h := rt.StartRelay(t, nil)
	key, _ := rt.WriteKey(t)
	h.RunSSH(key, "-N", "-R", "myapp:80:"+o.HostPort())
	routes := h.WaitRoute(1)
	url, ok := routes["myapp"]
	if !ok {
		t.Fatalf("routes %v", routes)
	}
	code, body := h.Get(url + "/hello")
	if code != 200 || rt.Decode(t, body)["origin"] != "static" {
		t.Fatalf("%d %s", code, body)
	}
	// Static routes keep the public Host (the relay does not know the target).
	if got := rt.Decode(t, body)["host"]; got != strings.TrimPrefix(url, "http://") {
		t.Errorf("Host %q", got)
	}

	// A second key cannot take a name held by a live tunnel.
	key2, _ := rt.WriteKey(t)
	p2 := h.RunSSH(key2, "-N", "-R", "myapp:80:"+o.HostPort())
	select {
	case <-p2.Done:
	case <-time.After(15 * time.Second):
		t.Fatal("second key's ssh kept running: its forward should have been refused")
	}
	if !strings.Contains(p2.Stderr(), "remote port forwarding failed") {
		t.Errorf("stderr %q", p2.Stderr())
	}
	if h.R.Routes()["myapp"] != url {
		t.Fatal("route lost")
	}
}

// SetEnv=POMDEV_TARGET chooses another target; a target nobody listens on
// gives 503; a route whose tunnel left and a route never used get the same
// 404, so probing cannot tell which names exist.
func TestOpenSSHTargetAndErrorPages(t *testing.T) {
	def := rt.NewOrigin(t, "default")
	other := rt.NewOrigin(t, "other")
	h := rt.StartRelay(t, func(c *relay.Config) { c.DefaultTarget = def.HostPort() })
	key, _ := rt.WriteKey(t)
	p := h.RunSSH(key, "-T", "-o", "SetEnv=POMDEV_TARGET="+other.HostPort(), "-R", "0")
	url := strings.TrimPrefix(p.WaitLine(t, "Remote: "), "Remote: ")
	code, body := h.Get(url + "/")
	if code != 200 || rt.Decode(t, body)["origin"] != "other" {
		t.Fatalf("%d %s", code, body)
	}

	// Nothing listens on the target: 503 naming it.
	closed := rt.ClosedAddr(t)
	key2, _ := rt.WriteKey(t)
	p2 := h.RunSSH(key2, "-T", "-o", "SetEnv=POMDEV_TARGET="+closed, "-R", "0")
	url2 := strings.TrimPrefix(p2.WaitLine(t, "Remote: "), "Remote: ")
	code, body = h.Get(url2 + "/")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "local server not reachable") && !strings.Contains(body, "could not connect to "+closed) {
		t.Fatalf("want 503 naming %s, got %d %s", closed, code, body)
	}

	// The tunnel goes away: the same answer as for a name never used.
	p.Kill()
	rt.WaitFor(t, func() bool { return len(h.R.Routes()) == 1 }, "route released")
	offlineCode, offlineBody := h.Get(url + "/")
	code, body = h.Get("http://nobody-here-000.localhost/")
	if code != http.StatusNotFound || !strings.Contains(body, "pomdev relay") {
		t.Fatalf("want 404, got %d %s", code, body)
	}
	if offlineCode != code || offlineBody != body {
		t.Fatalf("an offline tunnel is told apart from an unknown name:\n%d %s\n%d %s", offlineCode, offlineBody, code, body)
	}
	code, body = h.Get("http://other.example/")
	if code != http.StatusNotFound {
		t.Fatalf("foreign host: %d %s", code, body)
	}
	code, body = h.Get("http://localhost/healthz")
	if code != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("healthz %d %s", code, body)
	}
}

// SSE through the tunnel: each event arrives when sent, not at the end;
// an idle stream stays open across the keepalive interval.
func TestOpenSSHServerSentEvents(t *testing.T) {
	o := rt.NewOrigin(t, "sse")
	h := rt.StartRelay(t, func(c *relay.Config) {
		c.DefaultTarget = o.HostPort()
		c.KeepaliveInterval = 200 * time.Millisecond
	})
	key, _ := rt.WriteKey(t)
	h.RunSSH(key, "-N", "-R", "0")
	url := h.WaitURL()
	resp, err := h.Client().Get(url + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("content type %q: %d %s", ct, resp.StatusCode, b)
	}
	br := bufio.NewReader(resp.Body)
	for i, ev := range []string{"one", "two", "three"} {
		if i == 2 {
			// Silent for several keepalive intervals: the stream must live.
			time.Sleep(1 * time.Second)
		}
		o.Events <- ev
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
	o := rt.NewOrigin(t, "upgrade")
	h := rt.StartRelay(t, func(c *relay.Config) { c.DefaultTarget = o.HostPort() })
	key, _ := rt.WriteKey(t)
	h.RunSSH(key, "-N", "-R", "0")
	url := h.WaitURL()
	h.UpgradeEcho(url)
}

// The same key gets the same URL after reconnecting and after the relay
// restarts; a reconnect takes over its stale connection at once.
func TestOpenSSHStableURL(t *testing.T) {
	o := rt.NewOrigin(t, "stable")
	mod := func(c *relay.Config) { c.DefaultTarget = o.HostPort() }
	h := rt.StartRelay(t, mod)
	key, _ := rt.WriteKey(t)
	p := h.RunSSH(key, "-T", "-R", "0")
	first := p.WaitLine(t, "Remote: ")

	// A second connection with the same key while the first still lives
	// (a network blip from the client's view): it takes the route over.
	p2 := h.RunSSH(key, "-T", "-R", "0")
	if got := p2.WaitLine(t, "Remote: "); got != first {
		t.Fatalf("reconnect got %q, want %q", got, first)
	}
	select {
	case <-p.Done:
	case <-time.After(15 * time.Second):
		t.Fatal("the stale connection was not closed")
	}
	p2.Kill()

	h.Restart(mod)
	p3 := h.RunSSH(key, "-T", "-R", "0")
	if got := p3.WaitLine(t, "Remote: "); got != first {
		t.Fatalf("after restart got %q, want %q", got, first)
	}
	code, _ := h.Get(strings.TrimPrefix(first, "Remote: ") + "/")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
}

// keys mode: a key outside authorized_keys is refused; adding it to the
// file lets it in without a restart.
func TestOpenSSHKeysMode(t *testing.T) {
	rt.RequireOpenSSH(t)
	key, signer := rt.WriteKey(t)
	_, other := rt.WriteKey(t)
	ak := filepath.Join(t.TempDir(), "authorized_keys")
	if err := os.WriteFile(ak, ssh.MarshalAuthorizedKey(other.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	h := rt.StartRelay(t, func(c *relay.Config) { c.Auth = relay.AuthKeys; c.AuthorizedKeys = ak })
	p := h.RunSSH(key, "-o", "BatchMode=yes", "-N", "-R", "0")
	select {
	case <-p.Done:
	case <-time.After(15 * time.Second):
		t.Fatal("unknown key was not refused")
	}
	if !strings.Contains(p.Stderr(), "Permission denied") {
		t.Fatalf("stderr %q", p.Stderr())
	}
	data := append(ssh.MarshalAuthorizedKey(other.PublicKey()), ssh.MarshalAuthorizedKey(signer.PublicKey())...)
	if err := os.WriteFile(ak, append([]byte("# team keys\n"), data...), 0o600); err != nil {
		t.Fatal(err)
	}
	// Make sure the reload sees a different mtime even on coarse clocks.
	future := time.Now().Add(2 * time.Second)
	_ = os.Chtimes(ak, future, future)
	h.RunSSH(key, "-o", "BatchMode=yes", "-N", "-R", "0")
	h.WaitRoute(1)
}

// requireTmux returns tmux, failing in CI where .ci/run installs it.
func requireTmux(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is required in CI")
		}
		t.Skip("tmux not installed")
	}
	return p
}

// The status screen as a person sees it: plain `ssh -R 0 host` in a
// terminal (tmux), the URL under Port Forward Status, requests listed,
// the layout following a resize, and q ending the session.
func TestOpenSSHStatusScreen(t *testing.T) {
	tmux := requireTmux(t)
	sshBin := rt.RequireOpenSSH(t)
	o := rt.NewOrigin(t, "screen")
	h := rt.StartRelay(t, func(c *relay.Config) { c.DefaultTarget = o.HostPort() })
	key, _ := rt.WriteKey(t)
	sock := filepath.Join(t.TempDir(), "tmux.sock")
	session := "relay"
	tm := func(args ...string) string {
		out, err := exec.Command(tmux, append([]string{"-S", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	cmdline := strings.Join([]string{sshBin, "-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-p", h.SSHPort(), "-R", "0", "127.0.0.1"}, " ")
	tm("new-session", "-d", "-s", session, "-x", "120", "-y", "30", cmdline+"; echo SSH-EXITED; sleep 30")
	t.Cleanup(func() { _ = exec.Command(tmux, "-S", sock, "kill-server").Run() })
	capture := func() string { return tm("capture-pane", "-p", "-t", session) }
	waitScreen := func(what string, cond func(string) bool) string {
		t.Helper()
		var screen string
		rt.WaitFor(t, func() bool { screen = capture(); return cond(screen) }, what)
		return screen
	}
	screen := waitScreen("the URL on the status screen", func(s string) bool {
		return strings.Contains(s, "Port Forward Status") && strings.Contains(s, "Remote  http://")
	})
	for _, want := range []string{"ACTIVE", "Local   " + o.HostPort(), "Client Requests", "Logs", "Active Connections"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	var url string
	for _, u := range h.R.Routes() {
		url = u
	}
	if !strings.Contains(screen, url) {
		t.Fatalf("screen does not show %s:\n%s", url, screen)
	}
	if code, _ := h.Get(url + "/from-test"); code != 200 {
		t.Fatalf("status %d", code)
	}
	waitScreen("the request on the screen", func(s string) bool { return strings.Contains(s, "GET /from-test 200") })

	// Narrower terminal: no line wider than the window.
	tm("resize-window", "-t", session, "-x", "60", "-y", "20")
	screen = waitScreen("a redraw at 60 columns", func(s string) bool {
		return strings.Contains(s, "Port Forward Status") && !strings.Contains(s, "Port Forward Status "+strings.Repeat("─", 70))
	})
	for _, l := range strings.Split(screen, "\n") {
		if n := len([]rune(l)); n > 60 {
			t.Errorf("line of %d columns at width 60: %q", n, l)
		}
	}
	t.Logf("status screen at 60x20:\n%s", screen)

	tm("send-keys", "-t", session, "q")
	waitScreen("ssh to exit after q", func(s string) bool { return strings.Contains(s, "SSH-EXITED") })
	rt.WaitFor(t, func() bool { return len(h.R.Routes()) == 0 }, "the route released")
}

// ssh -T host pomdev-events: JSON lines for tunnels and requests.
func TestOpenSSHEventsStream(t *testing.T) {
	o := rt.NewOrigin(t, "events")
	h := rt.StartRelay(t, func(c *relay.Config) { c.DefaultTarget = o.HostPort() })
	key, _ := rt.WriteKey(t)
	p := h.RunSSH(key, "-T", "-R", "0", "--", relay.EventsCommand)
	var ev console.Event
	if err := json.Unmarshal([]byte(p.WaitContains(t, `"type":"tunnel"`)), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.URL == "" || ev.Route == "" || ev.Target != o.HostPort() {
		t.Fatalf("tunnel event %+v", ev)
	}
	if code, _ := h.Get(ev.URL + "/x"); code != 200 {
		t.Fatalf("status %d", code)
	}
	line := p.WaitContains(t, `"type":"request"`)
	var req struct {
		Request struct {
			Method string `json:"method"`
			Path   string `json:"path"`
			Status int    `json:"status"`
		} `json:"request"`
	}
	if err := json.Unmarshal([]byte(line), &req); err != nil || req.Request.Path != "/x" || req.Request.Status != 200 {
		t.Fatalf("request event %s (%v)", line, err)
	}
}

// hostileTool is a tool name that would set the terminal's title, write
// its clipboard (OSC 52) and clear the screen if printed raw.
const hostileTool = "x\x1b]0;pwned\x07\x1b]52;c;aGVsbG8=\x07\x1b[2J\u009b31m"

// postTool sends a tools/call for name through url.
func postTool(t *testing.T, h *rt.Harness, url, name string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": map[string]any{"name": name}})
	resp, err := h.Client().Post(url+"/mcp", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// checkNoControls fails if out holds any of the hostile name's sequences
// raw, or lacks its escaped form.
func checkNoControls(t *testing.T, surface, out string) {
	t.Helper()
	for _, raw := range []string{"\x1b]0;pwned", "\x1b]52;", "\x07", "\u009b"} {
		if strings.Contains(out, raw) {
			t.Errorf("%s: %q reached the client raw", surface, raw)
		}
	}
	if !strings.Contains(out, `x\x1b]0;pwned\x07\x1b]52;c;aGVsbG8=\x07\x1b[2J\u009b31m`) && !strings.Contains(out, `x\u001b]0;pwned\u0007\u001b]52;c;aGVsbG8=\u0007\u001b[2J\u009b31m`) {
		t.Errorf("%s: the tool name is not shown escaped:\n%q", surface, out)
	}
}

// A request's fields never reach a client's terminal raw: the -T lines,
// the pomdev-events stream and the status screen show control characters
// escaped.
func TestRequestFieldsEscaped(t *testing.T) {
	o := rt.NewOrigin(t, "escape")
	h := rt.StartRelay(t, func(c *relay.Config) { c.DefaultTarget = o.HostPort() })
	key1, _ := rt.WriteKey(t)
	key2, _ := rt.WriteKey(t)
	_, signer3 := rt.WriteKey(t)

	lines := h.RunSSH(key1, "-T", "-R", "0")
	linesURL := strings.TrimPrefix(lines.WaitLine(t, "Remote: "), "Remote: ")
	events := h.RunSSH(key2, "-T", "-R", "0", "--", relay.EventsCommand)
	var tunnel console.Event
	if err := json.Unmarshal([]byte(events.WaitContains(t, `"type":"tunnel"`)), &tunnel); err != nil {
		t.Fatal(err)
	}

	c, err := dialRelay(t, h, &ssh.ClientConfig{Auth: []ssh.AuthMethod{ssh.PublicKeys(signer3)}})
	if err != nil {
		t.Fatal(err)
	}
	_, screen := ptyShell(t, c, 40, 200)
	screenURL := serveStatic(t, h, c, "screen", o)
	rt.WaitFor(t, func() bool { return strings.Contains(screen.String(), "Client Requests") }, "the status screen")

	postTool(t, h, linesURL, hostileTool)
	checkNoControls(t, "ssh -T lines", lines.WaitContains(t, "tools/call"))
	postTool(t, h, tunnel.URL, hostileTool)
	checkNoControls(t, "pomdev-events", events.WaitContains(t, `"type":"request"`))
	postTool(t, h, screenURL, hostileTool)
	rt.WaitFor(t, func() bool { return strings.Contains(screen.String(), "pwned") }, "the request on the status screen")
	checkNoControls(t, "status screen", screen.String())
}

// authorized_keys options are honoured with the stock client: from= that
// does not match refuses the key, restrict and permitlisten refuse the
// forwards they exclude, and a line with an option the relay cannot honour
// (command=) refuses its key with a message naming the file and line,
// without affecting the lines after it.
func TestOpenSSHAuthorizedKeysOptions(t *testing.T) {
	rt.RequireOpenSSH(t)
	o := rt.NewOrigin(t, "opts")
	keyFrom, sFrom := rt.WriteKey(t)
	keyRestrict, sRestrict := rt.WriteKey(t)
	keyListen, sListen := rt.WriteKey(t)
	keyCommand, sCommand := rt.WriteKey(t)
	keyOK, sOK := rt.WriteKey(t)
	line := func(opts string, s ssh.Signer) string {
		return opts + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))) + "\n"
	}
	ak := filepath.Join(t.TempDir(), "authorized_keys")
	content := line(`from="10.0.0.0/8"`, sFrom) + line("restrict", sRestrict) + line(`permitlisten="myapp:80"`, sListen) +
		line(`command="/bin/sh"`, sCommand) + "not a key at all\n" + line(`from="127.0.0.0/8,!10.0.0.1",no-pty`, sOK)
	if err := os.WriteFile(ak, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	h := rt.StartRelay(t, func(c *relay.Config) {
		c.Auth, c.AuthorizedKeys, c.DefaultTarget = relay.AuthKeys, ak, o.HostPort()
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	refused := func(key string, args ...string) string {
		t.Helper()
		p := h.RunSSH(key, append([]string{"-o", "BatchMode=yes"}, args...)...)
		select {
		case <-p.Done:
		case <-time.After(15 * time.Second):
			t.Fatalf("%v: not refused", args)
		}
		return p.Stderr()
	}
	if s := refused(keyFrom, "-N", "-R", "0"); !strings.Contains(s, "Permission denied") {
		t.Errorf("from=: %q", s)
	}
	if s := refused(keyCommand, "-N", "-R", "0"); !strings.Contains(s, "Permission denied") {
		t.Errorf("command=: %q", s)
	}
	if s := refused(keyRestrict, "-N", "-R", "0"); !strings.Contains(s, "remote port forwarding failed") {
		t.Errorf("restrict: %q", s)
	}
	if s := refused(keyListen, "-N", "-R", "0"); !strings.Contains(s, "remote port forwarding failed") {
		t.Errorf("permitlisten, dynamic: %q", s)
	}
	h.RunSSH(keyListen, "-N", "-R", "myapp:80:"+o.HostPort())
	h.RunSSH(keyOK, "-N", "-R", "0")
	h.WaitRoute(2)
	for _, want := range []string{ak + ":4: option command is not supported", ak + ":5: "} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// The report's reproduction on a real terminal: `stty rows 2000 cols
// 60000` in tmux, then `ssh -tt -R 0 host`. The relay draws a clamped
// screen, its heap stays small, and it goes on serving.
func TestOpenSSHHugeTerminal(t *testing.T) {
	tmux := requireTmux(t)
	sshBin := rt.RequireOpenSSH(t)
	o := rt.NewOrigin(t, "huge")
	h := rt.StartRelay(t, func(c *relay.Config) { c.DefaultTarget = o.HostPort() })
	key, _ := rt.WriteKey(t)
	sock := filepath.Join(t.TempDir(), "tmux.sock")
	before := heapAlloc()
	cmdline := strings.Join([]string{"stty rows 2000 cols 60000;", sshBin, "-tt", "-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-p", h.SSHPort(), "-R", "0", "127.0.0.1"}, " ")
	if out, err := exec.Command(tmux, "-S", sock, "new-session", "-d", "-s", "huge", "-x", "120", "-y", "30", cmdline+"; sleep 30").CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(tmux, "-S", sock, "kill-server").Run() })
	url := h.WaitURL()
	// The screen is drawn (its title reaches the pane's first columns).
	rt.WaitFor(t, func() bool {
		out, _ := exec.Command(tmux, "-S", sock, "capture-pane", "-p", "-t", "huge").CombinedOutput()
		return strings.Contains(string(out), "Port Forward")
	}, "the status screen")
	if grown := int64(heapAlloc()) - int64(before); grown > 64<<20 {
		t.Fatalf("the relay's heap grew by %d MiB for one terminal", grown>>20)
	}
	if code, _ := h.Get(url + "/after"); code != 200 {
		t.Fatalf("status %d after the huge terminal", code)
	}
}
