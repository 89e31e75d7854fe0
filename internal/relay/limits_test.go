package relay_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/relay"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"golang.org/x/crypto/ssh"
)

// preauth opens a TCP connection to the relay's SSH port from the
// loopback address src and reports whether the relay greeted it (it is
// held in its handshake) or closed it at once.
func preauth(t *testing.T, h *rt.Harness, src string) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", h.SSHAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("from %s: %v", src, err)
	}
	return c, strings.HasPrefix(line, "SSH-2.0-")
}

// Connections that never authenticate are bounded per source address and
// relay-wide; past the bounds the relay closes new ones at once, and a
// finished handshake makes room again.
func TestStartupLimits(t *testing.T) {
	h := rt.StartRelay(t, func(c *relay.Config) { c.MaxStartups = 5; c.MaxStartupsPerSource = 3 })
	var held []net.Conn
	for range 3 {
		c, ok := preauth(t, h, "127.0.0.1")
		if !ok {
			t.Fatalf("connection %d from 127.0.0.1 refused", len(held)+1)
		}
		held = append(held, c)
	}
	if _, ok := preauth(t, h, "127.0.0.1"); ok {
		t.Fatal("a fourth handshake from one address was held (per-source limit 3)")
	}
	for range 2 {
		if _, ok := preauth(t, h, "127.0.0.2"); !ok {
			t.Fatal("another address was refused below the relay-wide limit")
		}
	}
	if _, ok := preauth(t, h, "127.0.0.3"); ok {
		t.Fatal("a sixth handshake was held (relay-wide limit 5)")
	}
	_ = held[0].Close()
	rt.WaitFor(t, func() bool {
		c, ok := preauth(t, h, "127.0.0.1")
		_ = c.Close()
		return ok
	}, "room for a handshake after one ended")
	// Authenticated connections do not count: with three of them open
	// from 127.0.0.1, a handshake from there is still held.
	held[1].Close()
	held[2].Close()
	authenticated := 0
	rt.WaitFor(t, func() bool {
		if _, err := dialRelay(t, h, &ssh.ClientConfig{}); err == nil {
			authenticated++
		}
		return authenticated == 3
	}, "three authenticated connections")
	if _, ok := preauth(t, h, "127.0.0.1"); !ok {
		t.Fatal("authenticated connections counted as handshakes")
	}
}

// flakyListener fails its first accepts as a process out of file
// descriptors does.
type flakyListener struct {
	net.Listener
	failures atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.failures.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// Accept errors such as EMFILE do not end the relay: it retries and serves
// the next client.
func TestAcceptErrorsRetried(t *testing.T) {
	h := rt.StartRelay(t, func(c *relay.Config) {
		fl := &flakyListener{Listener: c.SSHListener}
		fl.failures.Store(5)
		c.SSHListener = fl
	})
	if _, err := dialRelay(t, h, &ssh.ClientConfig{}); err != nil {
		t.Fatalf("after accept errors: %v", err)
	}
}

var linkRe = regexp.MustCompile(`user_code=([A-Z0-9-]+)`)

// In signin mode the long wait for a person starts only after the client
// has signed with its key: a connection that sends nothing is closed at
// the handshake deadline, while a sign-in approved after that deadline
// still succeeds.
func TestSigninHandshakeDeadline(t *testing.T) {
	h := rt.StartRelay(t, func(c *relay.Config) {
		c.Auth = relay.AuthSignin
		c.HandshakeTimeout = 500 * time.Millisecond
		c.CodeTTL = time.Hour
	})
	c, ok := preauth(t, h, "127.0.0.1")
	if !ok {
		t.Fatal("no greeting")
	}
	closed := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, c)
		closed <- err
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("a silent connection was held past the handshake deadline (sign-in mode)")
	}

	links := make(chan string, 1)
	ki := ssh.KeyboardInteractive(func(name, instruction string, qs []string, _ []bool) ([]string, error) {
		if name == relay.SigninName {
			links <- instruction
		}
		return nil, nil
	})
	_, signer := rt.WriteKey(t)
	dialed := make(chan error, 1)
	go func() {
		_, err := dialRelay(t, h, &ssh.ClientConfig{Auth: []ssh.AuthMethod{ssh.PublicKeys(signer), ki}})
		dialed <- err
	}()
	var link string
	select {
	case link = <-links:
	case err := <-dialed:
		t.Fatalf("dial ended before sign-in: %v", err)
	}
	// Wait past the handshake deadline before approving.
	timer := time.NewTimer(4 * h.Config.HandshakeTimeout)
	select {
	case err := <-dialed:
		t.Fatalf("sign-in ended before approval: %v", err)
	case <-timer.C:
	}
	code := linkRe.FindStringSubmatch(link)[1]
	resp, err := h.Client().PostForm(h.R.BaseURL()+"/.pomdev/sign_in", url.Values{"user_code": {code}, "token": {h.Info.AdminToken}, "action": {"approve"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("approve: %d", resp.StatusCode)
	}
	if err := <-dialed; err != nil {
		t.Fatalf("sign-in approved after the handshake deadline: %v", err)
	}
}

// A route name stays with its key: after key V disconnects, another key
// asking for V's name (static) is refused and its dynamic route gets a
// name of its own; V gets its name back, also after a relay restart.
// Once unused for RouteNameTTL, the name is free.
func TestRouteNameStaysWithKey(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func(c *relay.Config) { c.Now = func() time.Time { return time.Unix(0, now.Load()) } }
	h := rt.StartRelay(t, clock)
	_, v := rt.WriteKey(t)
	_, a := rt.WriteKey(t)
	connect := func(s ssh.Signer) *ssh.Client {
		c, err := dialRelay(t, h, &ssh.ClientConfig{Auth: []ssh.AuthMethod{ssh.PublicKeys(s)}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	only := func() string {
		for name := range h.WaitRoute(1) {
			return name
		}
		return ""
	}
	cv := connect(v)
	if _, err := cv.Listen("tcp", "localhost:0"); err != nil {
		t.Fatal(err)
	}
	name := only()
	cv.Close()
	h.WaitRoute(0)

	ca := connect(a)
	if _, err := ca.Listen("tcp", name+":80"); err == nil {
		t.Fatalf("key A was given key V's name %s", name)
	}
	if _, err := ca.Listen("tcp", "localhost:0"); err != nil {
		t.Fatal(err)
	}
	if got := only(); got == name {
		t.Fatalf("key A's dynamic route is V's name %s", got)
	}
	ca.Close()
	h.WaitRoute(0)

	h.Restart(clock)
	cv = connect(v)
	if _, err := cv.Listen("tcp", "localhost:0"); err != nil {
		t.Fatal(err)
	}
	if got := only(); got != name {
		t.Fatalf("key V got %s after a restart, had %s", got, name)
	}
	cv.Close()
	h.WaitRoute(0)

	now.Add(int64(91 * 24 * time.Hour))
	ca = connect(a)
	if _, err := ca.Listen("tcp", name+":80"); err != nil {
		t.Fatalf("a name unused for 91 days is still reserved: %v", err)
	}
}

// slowUpload sends, from loopback address src, the head of a POST that
// announces a large body, and one byte of it.
func slowUpload(t *testing.T, h *rt.Harness, src, host string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", h.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: "+host+"\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\nx"); err != nil {
		t.Fatal(err)
	}
	return c
}

// status reads the status of the answer on c within d (0 if none came).
func status(c net.Conn, d time.Duration) int {
	_ = c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Slow uploads cannot take a tunnel from everyone: one address may hold
// only a quarter of its streams (429 past that), and bodies slower than
// the minimum rate end with 408 after the grace period, so a normal
// request from elsewhere gets through while 16 slow uploads from four
// addresses compete for the tunnel's 8 streams.
func TestSlowUploadsDoNotStarve(t *testing.T) {
	o := rt.NewOrigin(t, "slow")
	h := rt.StartRelay(t, func(c *relay.Config) {
		c.DefaultTarget = o.HostPort()
		c.MaxStreams = 8
		c.BodyGrace = 2 * time.Second
	})
	key, _ := rt.WriteKey(t)
	h.RunSSH(key, "-N", "-R", "0")
	url := h.WaitURL()
	host := strings.TrimPrefix(url, "http://")

	// Per source: 4 of 8 streams; the next upload from there is refused.
	rt.WaitFor(t, func() bool {
		return status(slowUpload(t, h, "127.0.0.1", host), 100*time.Millisecond) == http.StatusTooManyRequests
	},
		"429 for a fifth upload from one address")

	var slow []net.Conn
	for _, src := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		for range 4 {
			slow = append(slow, slowUpload(t, h, src, host))
		}
	}
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}}).DialContext}}
	// The front is at h.HTTPAddr; the URL's host routes the request.
	req, _ := http.NewRequest(http.MethodPost, "http://"+h.HTTPAddr+"/ok", strings.NewReader("hello"))
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("a normal request starved behind slow uploads: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || rt.Decode(t, string(body))["body"] != "hello" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	timedOut := 0
	var codes []int
	for _, c := range slow {
		code := status(c, 10*time.Second)
		codes = append(codes, code)
		if code == http.StatusRequestTimeout {
			timedOut++
		}
	}
	t.Logf("codes %v", codes)
	if timedOut == 0 {
		t.Fatal("no slow upload was ended with 408")
	}
	t.Logf("%d of %d slow uploads ended with 408", timedOut, len(slow))
}
