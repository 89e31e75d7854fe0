package relay_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/relay"
	"github.com/pomdev/pomdev/internal/relay/access"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
)

// rawRequest writes head (the request line and headers, without the blank
// line) and body to a fresh connection to addr and returns the answer's
// status. Body may be shorter than the Content-Length it claims.
func rawRequest(t *testing.T, addr, head string, body io.Reader) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	go func() {
		_, _ = io.WriteString(c, head+"\r\n\r\n")
		if body != nil {
			_, _ = io.Copy(c, body)
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s: %v", strings.SplitN(head, "\r\n", 2)[0], err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestApexLimits: the relay's own endpoints, which anyone may call, read
// at most a few KiB of a body, never multipart, at the tunnel routes'
// minimum rate, and serve a bounded number of requests at once.
func TestApexLimits(t *testing.T) {
	h := rt.StartRelay(t, func(c *relay.Config) {
		c.HTTPAuth = relay.HTTPAuthOwner
		c.BodyGrace = 300 * time.Millisecond
	})
	if h.R.Access() == nil {
		t.Fatal("no authorization server")
	}
	big := strings.Repeat("a", 10<<20)
	for _, path := range []string{access.PathToken, access.PathAuthorize, access.PathRevoke, access.PathIntrospect, access.PathApprove, access.PathRegister} {
		// A declared 10 MB body: refused before it is read.
		head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d", path, len(big))
		if s := rawRequest(t, h.HTTPAddr, head, nil); s != http.StatusRequestEntityTooLarge {
			t.Errorf("%s with Content-Length 10 MB: %d", path, s)
		}
		// Chunked: refused once past the limit.
		head = fmt.Sprintf("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked", path)
		chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", 1<<20, big[:1<<20])
		if s := rawRequest(t, h.HTTPAddr, head, strings.NewReader(chunked)); s != http.StatusRequestEntityTooLarge {
			t.Errorf("%s with a chunked 1 MB body: %d", path, s)
		}
		// Multipart: refused at once, though the body declared is one
		// byte longer than the one sent.
		head = fmt.Sprintf("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 40", path)
		if s := rawRequest(t, h.HTTPAddr, head, strings.NewReader("--x\r\nContent-Disposition: form-data\r\n\r\n")); s != http.StatusUnsupportedMediaType {
			t.Errorf("%s multipart: %d", path, s)
		}
	}
	// Registration takes up to 64 KiB, other endpoints 16 KiB.
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d", access.PathRegister, relay.MaxRegisterBody+1)
	if s := rawRequest(t, h.HTTPAddr, head, strings.NewReader(big[:relay.MaxRegisterBody+1])); s != http.StatusRequestEntityTooLarge {
		t.Errorf("registration of %d bytes: %d", relay.MaxRegisterBody+1, s)
	}
	// A stalled body ends at the minimum rate's grace (408), and does not
	// hold the connection.
	head = fmt.Sprintf("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000", access.PathToken)
	start := time.Now()
	pr, pw := io.Pipe()
	defer pw.Close()
	if s := rawRequest(t, h.HTTPAddr, head, pr); s != http.StatusRequestTimeout {
		t.Errorf("a stalled token request: %d", s)
	}
	t.Logf("a stalled body ended after %v", time.Since(start).Round(time.Millisecond))

	// Anywhere on the front, an answer to a request whose body was not
	// read closes the connection instead of waiting for the rest.
	head = "POST /anything HTTP/1.1\r\nHost: nobody-000.localhost\r\nContent-Length: 1000"
	if s := rawRequest(t, h.HTTPAddr, head, strings.NewReader("x")); s != http.StatusNotFound {
		t.Errorf("a stalled body to an unknown route: %d", s)
	}

}

// TestApexInFlightBound: one address holds at most
// MaxApexInFlightPerSource requests to the relay's own endpoints at once;
// the health check stays outside the bound. The grace is long so that the
// stalled requests hold their slots for the whole test.
func TestApexInFlightBound(t *testing.T) {
	h := rt.StartRelay(t, func(c *relay.Config) {
		c.HTTPAuth = relay.HTTPAuthOwner
		c.BodyGrace = 5 * time.Minute
	})
	for range relay.MaxApexInFlightPerSource {
		c, err := net.Dial("tcp", h.HTTPAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\na", access.PathToken)
	}
	rt.WaitFor(t, func() bool {
		resp, err := h.Client().PostForm(h.R.BaseURL()+access.PathToken, url.Values{"grant_type": {"x"}})
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	}, "a 503 once one source holds every slot it may")
	// The health check stays outside the bound.
	if resp, err := h.Client().Get(h.R.BaseURL() + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz while the source is at its bound: %v %v", resp, err)
	}
}

// TestSigninPageNoMultipart: an unauthenticated multipart upload to the
// sign-in page is refused without spooling to the temporary directory.
func TestSigninPageNoMultipart(t *testing.T) {
	h := rt.StartRelay(t, func(c *relay.Config) { c.Auth = relay.AuthSignin })
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	body := "--x\r\nContent-Disposition: form-data; name=\"user_code\"; filename=\"f\"\r\n\r\n" + strings.Repeat("z", 1<<20) + "\r\n--x--\r\n"
	head := fmt.Sprintf("POST /.pomdev/sign_in HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: %d", len(body))
	if s := rawRequest(t, h.HTTPAddr, head, strings.NewReader(body)); s != http.StatusUnsupportedMediaType {
		t.Fatalf("multipart sign-in: %d", s)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Fatalf("the upload left %d files in the temporary directory", len(ents))
	}
}

// TestOAuthRepeatedParameters: a parameter given twice (which op and the
// relay's own checks might read differently) is refused at authorize and
// token.
func TestOAuthRepeatedParameters(t *testing.T) {
	g := startGated(t, nil)
	clientID := g.register(t, redirect)
	_, challenge := pkce()
	u := g.authorizeURL(clientID, challenge, "S256", g.url+"/mcp") + "&redirect_uri=" + url.QueryEscape("https://attacker.example/cb")
	resp, err := g.noRedirect().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "redirect_uri") {
		t.Fatalf("two redirect_uri: %d\n%s", resp.StatusCode, b)
	}
	if n, _ := g.h.R.Access().Pending(t.Context(), ""); len(n) != 0 {
		t.Fatalf("a request with two redirect_uri is pending: %+v", n)
	}
	status, tk := g.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {"a", "b"}, "client_id": {clientID}})
	if status != http.StatusBadRequest || tk.Error != "invalid_request" {
		t.Fatalf("two codes at the token endpoint: %d %+v", status, tk)
	}
}

// TestApexStalledBodiesDoNotCrowdOut: more stalled bodies than the relay
// serves requests at once, from many addresses, each within its own bound,
// leave the relay's endpoints serving a request that arrives whole: a body
// is read before its request takes a serving slot.
func TestApexStalledBodiesDoNotCrowdOut(t *testing.T) {
	h := rt.StartRelay(t, func(c *relay.Config) {
		c.HTTPAuth = relay.HTTPAuthOwner
		c.BodyGrace = 5 * time.Minute
	})
	sources := relay.MaxApexInFlight/4 + 4
	for i := range sources {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(2+i))}}
		for range 4 {
			c, err := d.Dial("tcp", h.HTTPAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\na", access.PathToken)
		}
	}
	// Every stalled request is in (a request after them on a connection
	// from the same address is refused once the source is at its bound).
	rt.WaitFor(t, func() bool { return relay.ApexReading(h.R) == sources*4 }, fmt.Sprintf("%d bodies being read", sources*4))
	resp, err := h.Client().PostForm(h.R.BaseURL()+access.PathToken, url.Values{"grant_type": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		t.Fatalf("a whole request while %d bodies stall: %s", sources*4, resp.Status)
	}
}
