package relay

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

	"golang.org/x/crypto/ssh"
)

// requireOpenSSH returns the ssh binary; CI installs it, so a missing one
// fails there and skips only on a developer machine without it.
func requireOpenSSH(t *testing.T) string {
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

type harness struct {
	t        *testing.T
	r        *Relay
	cfg      Config
	stateDir string
	sshAddr  string
	httpAddr string
	cancel   context.CancelFunc
	done     chan error
}

func startRelay(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, stateDir: t.TempDir()}
	h.start(mod, "127.0.0.1:0", "127.0.0.1:0")
	return h
}

func (h *harness) start(mod func(*Config), sshAddr, httpAddr string) {
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
	cfg := Config{SSHListener: sl, HTTPListener: hl, StateDir: h.stateDir, Domain: "localhost"}
	if mod != nil {
		mod(&cfg)
	}
	r, _, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.r, h.cfg, h.cancel, h.done = r, cfg, cancel, make(chan error, 1)
	h.sshAddr, h.httpAddr = sl.Addr().String(), hl.Addr().String()
	go func() { h.done <- r.Serve(ctx) }()
	t.Cleanup(h.stop)
}

func (h *harness) stop() {
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
func (h *harness) restart(mod func(*Config)) {
	h.stop()
	h.start(mod, h.sshAddr, h.httpAddr)
}

func (h *harness) sshPort() string {
	_, p, _ := net.SplitHostPort(h.sshAddr)
	return p
}

// client is an HTTP client that sends every request to the relay's front,
// whatever the URL's host (no DNS for *.localhost needed).
func (h *harness) client() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", h.httpAddr)
			},
			DisableCompression: true,
		},
	}
}

func (h *harness) get(url string) (int, string) {
	h.t.Helper()
	resp, err := h.client().Get(url)
	if err != nil {
		h.t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitRoute polls until the relay has n routes, returning them.
func (h *harness) waitRoute(n int) map[string]string {
	h.t.Helper()
	var routes map[string]string
	waitFor(h.t, func() bool { routes = h.r.Routes(); return len(routes) == n }, fmt.Sprintf("%d route(s)", n))
	return routes
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeKey creates an ed25519 key in OpenSSH format (0600).
func writeKey(t *testing.T) (string, ssh.Signer) {
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
type sshProc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    strings.Builder
	lines  chan string
	stderr strings.Builder
	done   chan struct{}
}

// runSSH starts the stock OpenSSH client against the relay with key and
// extra args (before the host).
func (h *harness) runSSH(key string, args ...string) *sshProc {
	h.t.Helper()
	bin := requireOpenSSH(h.t)
	base := []string{"-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=5", "-p", h.sshPort()}
	cmd := exec.Command(bin, append(append(base, args...), "127.0.0.1")...)
	p := &sshProc{cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{})}
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
		close(p.done)
	}()
	h.t.Cleanup(p.kill)
	return p
}

func (p *sshProc) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

func (p *sshProc) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitLine returns the first line with prefix, within the deadline.
func (p *sshProc) waitLine(t *testing.T, prefix string) string {
	t.Helper()
	return p.waitMatch(t, prefix, func(l string) bool { return strings.HasPrefix(l, prefix) })
}

// waitContains returns the first line containing s.
func (p *sshProc) waitContains(t *testing.T, s string) string {
	t.Helper()
	return p.waitMatch(t, s, func(l string) bool { return strings.Contains(l, s) })
}

func (p *sshProc) waitMatch(t *testing.T, prefix string, match func(string) bool) string {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if match(l) {
				return l
			}
		case <-p.done:
			t.Fatalf("ssh exited before printing %q; stderr: %s", prefix, p.stderrText())
		case <-timeout:
			t.Fatalf("no line starting %q; stderr: %s", prefix, p.stderrText())
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
type origin struct {
	*httptest.Server
	events chan string
}

func newOrigin(t *testing.T, name string) *origin {
	t.Helper()
	o := &origin{events: make(chan string)}
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
			case ev, ok := <-o.events:
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

func (o *origin) hostPort() string { return strings.TrimPrefix(o.URL, "http://") }

func (o *origin) port() int {
	_, p, _ := net.SplitHostPort(o.hostPort())
	n, _ := strconv.Atoi(p)
	return n
}

func decode(t *testing.T, body string) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("origin answer %q: %v", body, err)
	}
	return m
}
