// Package relaytest runs a pomdev relay and the stock OpenSSH client for
// tests: the relay in-process on loopback ports it picks, ssh as a child
// process, and a small origin server to tunnel to.
package relaytest

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/pgtest"
	"github.com/pomdev/pomdev/internal/relay"
	"golang.org/x/crypto/ssh"
)

// RequireOpenSSH returns the ssh binary; CI installs it, so a missing one
// fails there and skips only on a developer machine without it.
func RequireOpenSSH(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ssh")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ssh (openssh-client) is required in CI")
		}
		t.Skip("ssh not installed")
	}
	return p
}

// Harness is a relay serving on loopback for one test.
type Harness struct {
	t        *testing.T
	R        *relay.Relay
	Info     relay.Info
	Config   relay.Config
	StateDir string
	// Store is the relay's store: "" (relay.db in StateDir), or a fresh
	// PostgreSQL database when POMDEV_TEST_STORE=postgres.
	Store    string
	SSHAddr  string
	HTTPAddr string
	cancel   context.CancelFunc
	done     chan error
}

func StartRelay(t *testing.T, mod func(*relay.Config)) *Harness {
	t.Helper()
	h := &Harness{t: t, StateDir: t.TempDir(), Store: pgtest.Store(t)}
	h.start(mod, "127.0.0.1:0", "127.0.0.1:0")
	return h
}

func (h *Harness) start(mod func(*relay.Config), sshAddr, httpAddr string) {
	t := h.t
	t.Helper()
	sl, err := net.Listen("tcp", sshAddr)
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := relay.Config{SSHListener: sl, HTTPListener: hl, StateDir: h.StateDir, Store: h.Store, Domain: "localhost"}
	if mod != nil {
		mod(&cfg)
	}
	r, info, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.R, h.Info, h.Config, h.cancel, h.done = r, info, cfg, cancel, make(chan error, 1)
	h.SSHAddr, h.HTTPAddr = sl.Addr().String(), hl.Addr().String()
	go func() { h.done <- r.Serve(ctx) }()
	t.Cleanup(h.Stop)
}

func (h *Harness) Stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("relay Serve: %v", err)
	}
	h.cancel = nil
}

// restart stops the relay and starts it again on the same addresses and
// state directory.
func (h *Harness) Restart(mod func(*relay.Config)) {
	h.Stop()
	h.start(mod, h.SSHAddr, h.HTTPAddr)
}

func (h *Harness) SSHPort() string {
	_, p, _ := net.SplitHostPort(h.SSHAddr)
	return p
}

// client is an HTTP client that sends every request to the relay's front,
// whatever the URL's host (no DNS for *.localhost needed).
func (h *Harness) Client() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", h.HTTPAddr)
			},
			DisableCompression: true,
		},
	}
}

// UpgradeEcho sends an "Upgrade: echo" request for url's /upgrade to the
// relay's front, expects 101 with Upgrade: echo, and checks that two
// messages come back as sent (the origin echoes after switching).
func (h *Harness) UpgradeEcho(url string) {
	h.t.Helper()
	c, err := net.Dial("tcp", h.HTTPAddr)
	if err != nil {
		h.t.Fatal(err)
	}
	defer c.Close()
	host := strings.TrimPrefix(url, "http://")
	if _, err := io.WriteString(c, "GET /upgrade HTTP/1.1\r\nHost: "+host+"\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"); err != nil {
		h.t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "echo" {
		h.t.Fatalf("%v %v", resp, err)
	}
	for _, msg := range []string{"ping", "pong-pong"} {
		if _, err := io.WriteString(c, msg); err != nil {
			h.t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
			h.t.Fatalf("echo %q: %q %v", msg, buf, err)
		}
	}
}

func (h *Harness) Get(url string) (int, string) {
	h.t.Helper()
	resp, err := h.Client().Get(url)
	if err != nil {
		h.t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitRoute polls until the relay has n routes, returning them.
func (h *Harness) WaitRoute(n int) map[string]string {
	h.t.Helper()
	var routes map[string]string
	WaitFor(h.t, func() bool { routes = h.R.Routes(); return len(routes) == n }, fmt.Sprintf("%d route(s)", n))
	return routes
}

// WaitURL waits for the relay's only route and returns its URL.
func (h *Harness) WaitURL() string {
	h.t.Helper()
	for _, u := range h.WaitRoute(1) {
		return u
	}
	return ""
}

func WaitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	if !Until(cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// Until polls cond every 10 ms for up to 15 s and reports whether it
// held (for a test that says more than WaitFor when it does not).
func Until(cond func() bool) bool {
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// writeKey creates an ed25519 key in OpenSSH format (0600).
func WriteKey(t *testing.T) (string, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return path, s
}

// sshProc is a running OpenSSH client.
// SSH is a running OpenSSH client.
type SSH struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    strings.Builder
	lines  chan string
	stderr strings.Builder
	// Done is closed when the process has exited.
	Done chan struct{}
}

// RunSSH starts the stock OpenSSH client against the relay with key and
// extra args; args after "--" form the remote command.
func (h *Harness) RunSSH(key string, args ...string) *SSH {
	h.t.Helper()
	bin := RequireOpenSSH(h.t)
	base := []string{"-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=5", "-p", h.SSHPort()}
	// ssh keeps the first value of an option: the test's args go first.
	// Arguments after "--" are the remote command, after the host.
	var command []string
	for i, a := range args {
		if a == "--" {
			args, command = args[:i], args[i+1:]
			break
		}
	}
	all := append(append(append([]string{}, args...), base...), "127.0.0.1")
	cmd := exec.Command(bin, append(all, command...)...)
	p := &SSH{cmd: cmd, lines: make(chan string, 1024), Done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	cmd.Stderr = &lockedWriter{mu: &p.mu, b: &p.stderr}
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			p.mu.Lock()
			p.out.WriteString(line + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- line:
			default:
			}
		}
		_ = cmd.Wait()
		close(p.Done)
	}()
	h.t.Cleanup(p.Kill)
	return p
}

func (p *SSH) Kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
	<-p.Done
}

func (p *SSH) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitLine returns the first line with prefix, within the deadline.
func (p *SSH) WaitLine(t *testing.T, prefix string) string {
	t.Helper()
	return p.waitMatch(t, prefix, func(l string) bool { return strings.HasPrefix(l, prefix) })
}

// waitContains returns the first line containing s.
func (p *SSH) WaitContains(t *testing.T, s string) string {
	t.Helper()
	return p.waitMatch(t, s, func(l string) bool { return strings.Contains(l, s) })
}

func (p *SSH) waitMatch(t *testing.T, prefix string, match func(string) bool) string {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if match(l) {
				return l
			}
		case <-p.Done:
			t.Fatalf("ssh exited before printing %q; stderr: %s", prefix, p.Stderr())
		case <-timeout:
			t.Fatalf("no line starting %q; stderr: %s", prefix, p.Stderr())
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// origin is the local server behind a tunnel. "/" answers JSON describing
// the request; "/sse" streams events the test releases one by one;
// "/upgrade" switches protocols and echoes bytes.
type Origin struct {
	*httptest.Server
	// Events feeds the /sse stream; close it to end the stream.
	Events chan string
}

func NewOrigin(t *testing.T, name string) *Origin {
	t.Helper()
	o := &Origin{Events: make(chan string)}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Mcp-Session-Id", r.Header.Get("Mcp-Session-Id"))
		_ = json.NewEncoder(w).Encode(map[string]string{
			"origin": name, "host": r.Host, "path": r.URL.RequestURI(), "method": r.Method,
			"xff": r.Header.Get("X-Forwarded-For"), "xfh": r.Header.Get("X-Forwarded-Host"),
			"xfp": r.Header.Get("X-Forwarded-Proto"), "body": string(body),
			"protocol": r.Header.Get("MCP-Protocol-Version"),
		})
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for {
			select {
			case ev, ok := <-o.Events:
				if !ok {
					return
				}
				fmt.Fprintf(w, "data: %s\n\n", ev)
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.HandleFunc("/upgrade", func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "echo") {
			http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		buf := make([]byte, 1024)
		for {
			n, err := brw.Read(buf)
			if n > 0 {
				_, _ = conn.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	})
	o.Server = httptest.NewServer(mux)
	t.Cleanup(o.Close)
	return o
}

func (o *Origin) HostPort() string { return strings.TrimPrefix(o.URL, "http://") }

func (o *Origin) Port() int {
	_, p, _ := net.SplitHostPort(o.HostPort())
	n, _ := strconv.Atoi(p)
	return n
}

func Decode(t *testing.T, body string) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("origin answer %q: %v", body, err)
	}
	return m
}

// ClosedAddr returns a loopback host:port nobody listens on (a port just
// released; fine for a test's lifetime on loopback).
func ClosedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Output is what the client has printed so far.
func (p *SSH) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}
