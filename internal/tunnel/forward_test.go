package tunnel

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/fuzzwatch"

	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/socks5"
	"golang.org/x/crypto/ssh"
)

// A relay asking for anything but the targets (another port, another
// host, a metadata address) gets SOCKS "not allowed", and the refusal is
// an event. The relay side is the socks5 client the relay itself uses.
func TestForwarderRefusesOtherDestinations(t *testing.T) {
	var mu sync.Mutex
	var events []event.Tunnel
	_, priv, _ := generateKey()
	c, err := New(Config{Addr: "relay:22", Signers: []ssh.Signer{priv}, Targets: []string{"localhost:8080"},
		OnEvent: func(e event.Tunnel) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	f := newForwarder(c)
	defer f.close()
	tests := []struct {
		host    string
		port    int
		allowed bool
	}{
		{"169.254.169.254", 80, false},
		{"localhost", 22, false},
		{"example.com", 8080, false},
		{"127.0.0.1", 8080, true},
		{"::1", 8080, true},
		{"localhost", 8080, true},
	}
	for _, tt := range tests {
		relaySide, tunnelSide := tcpPair(t)
		go f.handle(tunnelSide)
		err := socks5.Connect(relaySide, tt.host, tt.port)
		relaySide.Close()
		var re *socks5.ReplyError
		switch {
		case tt.allowed && err != nil:
			t.Errorf("%s:%d refused: %v", tt.host, tt.port, err)
		case !tt.allowed && (!errors.As(err, &re) || re.Code != socks5.ReplyNotAllowed):
			t.Errorf("%s:%d: got %v, want not allowed", tt.host, tt.port, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	refused := 0
	for _, e := range events {
		if e.Kind == event.TunnelRefused {
			refused++
			if !strings.Contains(e.Message, "not one of the tunnel's targets") {
				t.Errorf("message %q", e.Message)
			}
		}
	}
	if refused != 3 {
		t.Fatalf("%d refusal events, want 3", refused)
	}
}

func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// scripted is a forwarded channel that delivers fixed bytes, then end of
// file, and keeps what is written to it.
type scripted struct {
	r   *bytes.Reader
	mu  sync.Mutex
	out bytes.Buffer
}

func (s *scripted) Read(b []byte) (int, error) { return s.r.Read(b) }
func (s *scripted) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.Write(b)
}
func (s *scripted) Close() error                     { return nil }
func (s *scripted) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (s *scripted) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (s *scripted) SetDeadline(time.Time) error      { return nil }
func (s *scripted) SetReadDeadline(time.Time) error  { return nil }
func (s *scripted) SetWriteDeadline(time.Time) error { return nil }

// The local end reads whatever the relay sends: well-formed requests are
// answered in order, and garbage ends the channel with at most a 400,
// never a panic or a hang.
func FuzzLocalHTTP(f *testing.F) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/sse" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write([]byte("data: 1\n\n"))
			return
		}
		w.Header().Set("X-Host", r.Host)
		w.Write(body)
	}))
	defer origin.Close()
	target := strings.TrimPrefix(origin.URL, "http://")
	_, priv, _ := generateKey()
	c, err := New(Config{Addr: "relay:22", Signers: []ssh.Signer{priv}, Targets: []string{target}, HoldTimeout: time.Second})
	if err != nil {
		f.Fatal(err)
	}
	fw := newForwarder(c)
	defer fw.close()
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /mcp HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}GET /sse HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, X-Drop\r\nUpgrade: echo\r\nX-Drop: 1\r\n\r\nhello",
		"HEAD / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
		"GET /\x00 HTTP/9.9\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzwatch.Run(t, fuzzwatch.Limits{Time: 15 * time.Second}, func() {
			ch := &scripted{r: bytes.NewReader(in)}
			done := make(chan struct{})
			go func() {
				defer close(done)
				fw.serveHTTP(&peeked{Conn: ch, r: bufio.NewReader(ch), target: target})
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("the local end hung on %q", in)
			}
			// Every answer is an HTTP/1.1 status line.
			ch.mu.Lock()
			out := ch.out.String()
			ch.mu.Unlock()
			if out != "" && !strings.HasPrefix(out, "HTTP/1.1 ") {
				t.Fatalf("answer %q to %q", out, in)
			}
		})
	})
}

// Pipelined requests on one channel are answered in order, with Host
// rewritten to the target, fields named in Connection dropped, and the
// MCP method of each POST in its event.
func TestLocalHTTPInOrder(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Host", r.Host)
		w.Header().Set("X-Saw-Drop", r.Header.Get("X-Drop"))
		w.Write(append([]byte(r.URL.Path+" "), body...))
	}))
	defer origin.Close()
	target := strings.TrimPrefix(origin.URL, "http://")
	var mu sync.Mutex
	var reqs []event.Request
	_, priv, _ := generateKey()
	c, err := New(Config{Addr: "relay:22", Signers: []ssh.Signer{priv}, Targets: []string{target},
		OnEvent: func(e event.Tunnel) {
			if e.Kind == event.TunnelRequest {
				mu.Lock()
				reqs = append(reqs, *e.Request)
				mu.Unlock()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	fw := newForwarder(c)
	defer fw.close()
	in := "POST /mcp HTTP/1.1\r\nHost: public.example\r\nContent-Type: application/json\r\nConnection: X-Drop\r\nX-Drop: 1\r\nContent-Length: 58\r\n\r\n" +
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{}}` +
		"GET /second HTTP/1.1\r\nHost: public.example\r\n\r\n"
	ch := &scripted{r: bytes.NewReader([]byte(in))}
	fw.serveHTTP(&peeked{Conn: ch, r: bufio.NewReader(ch), target: target})
	br := bufio.NewReader(&ch.out)
	for i, want := range []string{`/mcp {"jsonrpc":"2.0","id":7,"method":"tools/call","params":{}}`, "/second "} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != want || resp.Header.Get("X-Host") != target || resp.Header.Get("X-Saw-Drop") != "" {
			t.Fatalf("answer %d: %d %q %v", i, resp.StatusCode, body, resp.Header)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reqs) != 2 || reqs[0].RPCMethod != "tools/call" || reqs[0].RPCID != "7" || reqs[0].Status != 200 || reqs[1].Path != "/second" {
		t.Fatalf("events %+v", reqs)
	}
}

// BenchmarkLocalHTTP is the local end's cost per keep-alive request: a
// loopback connection stands in for the SSH channel, the target answers
// 1.3 KB of JSON (as in scripts/bench). scripts/bench/tunnel.sh measures
// the whole path.
func BenchmarkLocalHTTP(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1300)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	defer origin.Close()
	target := strings.TrimPrefix(origin.URL, "http://")
	_, priv, _ := generateKey()
	c, err := New(Config{Addr: "relay:22", Signers: []ssh.Signer{priv}, Targets: []string{target}})
	if err != nil {
		b.Fatal(err)
	}
	fw := newForwarder(c)
	defer fw.close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		fw.serveHTTP(&peeked{Conn: conn, r: bufio.NewReader(conn), target: target})
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	req := []byte("GET / HTTP/1.1\r\nHost: public.example\r\nUser-Agent: bench\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Write(req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != 200 {
			b.Fatal(resp.StatusCode, err)
		}
		resp.Body.Close()
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// A relay sending an endless header gets 431 after 64 KiB (plus a buffer),
// not a forwarder that reads and keeps all of it; a header just under the
// limit is forwarded.
func TestLocalHTTPHeaderLimit(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Len", strconv.Itoa(len(r.Header.Get("X-Big"))))
	}))
	defer origin.Close()
	target := strings.TrimPrefix(origin.URL, "http://")
	_, priv, _ := generateKey()
	c, err := New(Config{Addr: "relay:22", Signers: []ssh.Signer{priv}, Targets: []string{target}})
	if err != nil {
		t.Fatal(err)
	}
	fw := newForwarder(c)
	defer fw.close()

	endless := io.MultiReader(strings.NewReader("GET / HTTP/1.1\r\nHost: a\r\nX-Big: "), neverEnding('a'))
	cr := &countingReader{r: endless}
	ch := &scripted{r: bytes.NewReader(nil)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fw.serveHTTP(&peeked{Conn: ch, r: bufio.NewReader(cr), target: target})
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("still reading after %d bytes", cr.n.Load())
	}
	if !strings.HasPrefix(ch.out.String(), "HTTP/1.1 431 ") {
		t.Fatalf("answer %q", ch.out.String())
	}
	if n := cr.n.Load(); n > MaxHeaderBytes+16<<10 {
		t.Fatalf("read %d bytes of header", n)
	}

	ok := "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 60<<10) + "\r\n\r\n"
	ch = &scripted{r: bytes.NewReader([]byte(ok))}
	fw.serveHTTP(&peeked{Conn: ch, r: bufio.NewReader(ch), target: target})
	resp, err := http.ReadResponse(bufio.NewReader(&ch.out), nil)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("X-Len") != strconv.Itoa(60<<10) {
		t.Fatalf("%v %v", resp, err)
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}
