package front

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/relay/access"
	"github.com/pomdev/pomdev/internal/toolrule"
)

// The front's tests run without SSH: a tunnel here is an http.Server
// reached over net.Pipe, one pipe per channel the front opens.

const owner = "SHA256:owner"

// pipeTunnel is a Tunnel whose app is served over in-memory pipes.
type pipeTunnel struct {
	appAuth  bool
	public   string // a path served without a token
	tools    toolrule.ToolSet
	upstream string
	dialErr  error
	link     *Link
	conns    chan net.Conn
	dials    atomic.Int32
	active   atomic.Int32

	mu     sync.Mutex
	events []event.Request
	ended  chan struct{}
}

func (p *pipeTunnel) Owner() string           { return owner }
func (p *pipeTunnel) AppAuth() bool           { return p.appAuth }
func (p *pipeTunnel) Link() *Link             { return p.link }
func (p *pipeTunnel) Begin()                  { p.active.Add(1) }
func (p *pipeTunnel) UpstreamHost() string    { return p.upstream }
func (p *pipeTunnel) Tools() toolrule.ToolSet { return p.tools }
func (p *pipeTunnel) PublicPath(req *http.Request) bool {
	return p.public != "" && req.Method == http.MethodGet && req.URL.Path == p.public
}

func (p *pipeTunnel) End(ev *event.Request) {
	p.active.Add(-1)
	p.mu.Lock()
	p.events = append(p.events, *ev)
	p.mu.Unlock()
	p.ended <- struct{}{}
}

func (p *pipeTunnel) Dial(ctx context.Context, origin string) (net.Conn, error) {
	p.dials.Add(1)
	if p.dialErr != nil {
		return nil, p.dialErr
	}
	front, app := net.Pipe()
	select {
	case p.conns <- app:
		return front, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// lastEvent waits for the next request to end and returns its event.
func (p *pipeTunnel) lastEvent(t *testing.T) event.Request {
	t.Helper()
	select {
	case <-p.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("no request ended")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.events[len(p.events)-1]
}

// pipeListener hands the app the pipes the front dials.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// table is a Tunnels of fixed routes.
type table struct {
	live  map[string]*pipeTunnel
	known map[string]bool
}

func (t table) Lookup(name string) (Tunnel, bool) {
	if p, ok := t.live[name]; ok {
		return p, true
	}
	return nil, t.known[name]
}
func (t table) Only() string { return "" }

// resolver is the access server's view of route "app".
type resolver struct{}

func (resolver) RouteOf(res string) (string, bool) {
	return "app", strings.HasPrefix(res, "http://app.relay.test")
}
func (resolver) Resource(string) string { return "http://app.relay.test/mcp" }
func (resolver) Owner(string) string    { return owner }
func (resolver) Notify(access.Request)  {}

type rig struct {
	t        *testing.T
	access   *access.Server
	srv      *httptest.Server
	tunnel   *pipeTunnel
	token    string
	stateDir string // the access server's
}

// newRig serves app behind a front with route "app" on tunnel p (and
// "gone", a name known but offline); gated puts the OAuth gate in front.
func newRig(t *testing.T, p *pipeTunnel, gated bool, app http.Handler, mod func(*Config)) *rig {
	t.Helper()
	p.link = NewLink(4)
	p.conns = make(chan net.Conn)
	p.ended = make(chan struct{}, 64)
	ln := &pipeListener{conns: p.conns, done: make(chan struct{})}
	appSrv := &http.Server{Handler: app}
	go appSrv.Serve(ln)
	t.Cleanup(func() { appSrv.Close(); ln.Close(); p.link.CloseIdle() })
	r := &rig{t: t, tunnel: p}
	cfg := Config{
		Domain: "relay.test", Scheme: "http",
		URLFor:  func(name string) string { return "http://" + name + ".relay.test" },
		Tunnels: table{live: map[string]*pipeTunnel{"app": p}, known: map[string]bool{"gone": true}},
		Apex: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			fmt.Fprintf(w, "apex identity=%q", req.Header.Values(access.IdentityHeader))
		}),
		MaxStreamsPerSource: 8, MinBodyRate: 1 << 10, BodyGrace: time.Second,
	}
	if gated {
		r.stateDir = t.TempDir()
		s, err := access.New(access.Config{Issuer: "http://relay.test", StateDir: r.stateDir, Resolver: resolver{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if r.token, _, err = s.MintOwner(context.Background(), "app", owner); err != nil {
			t.Fatal(err)
		}
		cfg.Access, r.access = s, s
	}
	if mod != nil {
		mod(&cfg)
	}
	r.srv = httptest.NewServer(New(cfg))
	t.Cleanup(r.srv.Close)
	return r
}

// do sends a request for host; headers are set as given, in the case
// given (a map entry, not Header.Set, keeps non-canonical names).
func (r *rig) do(method, host, path, body string, hdr map[string]string) *http.Response {
	r.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, r.srv.URL+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header[k] = []string{v}
	}
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// upgrade opens a raw connection to the front and asks route app to
// switch to the echo protocol; the 101 has been read.
func (r *rig) upgrade() (net.Conn, *bufio.Reader) {
	r.t.Helper()
	c, err := net.Dial("tcp", r.srv.Listener.Addr().String())
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: app.relay.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		r.t.Fatalf("upgrade: %v %v", resp, err)
	}
	return c, br
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// echoHeaders answers with the request's Host and header fields, one per
// line, as the app received them.
var echoHeaders = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
	fmt.Fprintf(w, "host=%s\n", req.Host)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(w, "%s=%s\n", strings.ToLower(k), v)
		}
	}
})

// The forwarding fields a client sends are replaced by the relay's,
// never passed through, and only the relay asserts an identity: on an
// ungated route, on a route whose app authenticates, on a public path
// and through the gate.
func TestForwardedAndIdentityHeaders(t *testing.T) {
	forged := map[string]string{
		"X-Forwarded-For":   "6.6.6.6",
		"X-Forwarded-Host":  "evil.example",
		"X-Forwarded-Proto": "https",
		"Forwarded":         "for=6.6.6.6;host=evil.example",
		"X-Real-Ip":         "6.6.6.6",
		"True-Client-Ip":    "6.6.6.6",
		"X_Forwarded_For":   "6.6.6.6",
		"x-pomdev-identity": `{"sub":"forged"}`,
		"X_Pomdev_Identity": `{"sub":"forged"}`,
	}
	for _, tc := range []struct {
		name     string
		gated    bool
		appAuth  bool
		path     string
		identity bool // the relay asserts one
	}{
		{name: "ungated", path: "/mcp"},
		{name: "app authenticates", gated: true, appAuth: true, path: "/mcp"},
		{name: "public path", gated: true, path: "/assets/app.js"},
		{name: "through the gate", gated: true, path: "/mcp", identity: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &pipeTunnel{appAuth: tc.appAuth, public: "/assets/app.js"}
			r := newRig(t, p, tc.gated, echoHeaders, nil)
			hdr := map[string]string{}
			for k, v := range forged {
				hdr[k] = v
			}
			if tc.identity || tc.appAuth {
				hdr["Authorization"] = "Bearer " + r.token
			}
			resp := r.do(http.MethodGet, "app.relay.test", tc.path, "", hdr)
			got := readAll(t, resp)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, got)
			}
			if strings.Contains(got, "6.6.6.6") || strings.Contains(got, "evil.example") || strings.Contains(got, "forged") {
				t.Fatalf("a client's claim reached the app:\n%s", got)
			}
			for _, want := range []string{"x-forwarded-for=127.0.0.1\n", "x-forwarded-host=app.relay.test\n", "x-forwarded-proto=http\n", "host=app.relay.test\n"} {
				if strings.Count("\n"+got, "\n"+strings.SplitN(want, "=", 2)[0]+"=") != 1 || !strings.Contains("\n"+got, "\n"+want) {
					t.Fatalf("the app should see exactly %q:\n%s", want, got)
				}
			}
			ids := strings.Count(got, "x-pomdev-identity=")
			if tc.identity && ids != 1 || !tc.identity && ids != 0 {
				t.Fatalf("%d identity fields (relay asserts one: %v):\n%s", ids, tc.identity, got)
			}
			if tc.appAuth != strings.Contains(got, "authorization=Bearer") {
				t.Fatalf("Authorization reaches the app only when it authenticates itself:\n%s", got)
			}
			if ev := p.lastEvent(t); ev.Route != "app" || ev.Status != http.StatusOK || ev.Err != "" {
				t.Fatalf("event %+v", ev)
			}
		})
	}
	t.Run("apex", func(t *testing.T) {
		r := newRig(t, &pipeTunnel{}, false, echoHeaders, nil)
		resp := r.do(http.MethodGet, "relay.test", "/", "", map[string]string{"X-Pomdev-Identity": "forged"})
		if got := readAll(t, resp); got != "apex identity=[]" {
			t.Fatalf("the relay's own pages got %q", got)
		}
	})
	t.Run("gate refuses without a token", func(t *testing.T) {
		p := &pipeTunnel{}
		r := newRig(t, p, true, echoHeaders, nil)
		resp := r.do(http.MethodPost, "app.relay.test", "/mcp", "{}", forged)
		if resp.StatusCode != http.StatusUnauthorized || p.dials.Load() != 0 {
			t.Fatalf("status %d, %d dials", resp.StatusCode, p.dials.Load())
		}
	})
}

// A dynamic route's app sees its own address as Host; a static one the
// request's. Kept channels serve the next request.
func TestUpstreamHostAndKeepAlive(t *testing.T) {
	p := &pipeTunnel{upstream: "127.0.0.1:8080"}
	r := newRig(t, p, false, echoHeaders, nil)
	for i := 0; i < 3; i++ {
		got := readAll(t, r.do(http.MethodGet, "APP.relay.test:80", "/", "", nil))
		if !strings.Contains(got, "host=127.0.0.1:8080\n") || !strings.Contains(got, "x-forwarded-host=APP.relay.test:80\n") {
			t.Fatalf("request %d:\n%s", i, got)
		}
		p.lastEvent(t)
	}
	if n := p.dials.Load(); n != 1 {
		t.Fatalf("%d channels opened for three requests in a row, want 1", n)
	}
	if p.active.Load() != 0 || p.link.Requests() != 3 || p.link.Last().IsZero() {
		t.Fatalf("active %d, requests %d", p.active.Load(), p.link.Requests())
	}
}

// Names the front does not serve get one answer, offline or never used.
func TestUnknownHosts(t *testing.T) {
	r := newRig(t, &pipeTunnel{}, false, echoHeaders, nil)
	for host, want := range map[string]string{
		"gone.relay.test":    "No tunnel here",
		"never.relay.test":   "No tunnel here",
		"a.b.relay.test":     "Unknown host",
		"app.elsewhere.test": "Unknown host",
	} {
		resp := r.do(http.MethodGet, host, "/", "", nil)
		if got := readAll(t, resp); resp.StatusCode != http.StatusNotFound || !strings.Contains(got, want) {
			t.Fatalf("%s: %d %s", host, resp.StatusCode, got)
		}
	}
	if r.tunnel.dials.Load() != 0 {
		t.Fatal("a channel was opened")
	}
}

// What the forwarder meets reaches the request's event, whatever wraps the
// writer: on a route with tool rules the policy's filter is in between.
func TestForwarderErrorsReachTheEvent(t *testing.T) {
	rules, err := toolrule.ParseTunnel("", "danger*")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tools  toolrule.ToolSet
		err    error
		status int
		want   string
	}{
		{"target down, no rules", nil, &TargetError{Target: "127.0.0.1:8080", Err: errors.New("connection refused")}, http.StatusServiceUnavailable, "local server not reachable on 127.0.0.1:8080"},
		{"target down, tool rules", toolrule.ToolSet{rules}, &TargetError{Target: "127.0.0.1:8080", Err: errors.New("connection refused")}, http.StatusServiceUnavailable, "local server not reachable on 127.0.0.1:8080"},
		{"tunnel gone, tool rules", toolrule.ToolSet{rules}, &OfflineError{Err: io.EOF}, http.StatusBadGateway, "tunnel offline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &pipeTunnel{tools: tc.tools, dialErr: tc.err}
			r := newRig(t, p, false, echoHeaders, nil)
			resp := r.do(http.MethodPost, "app.relay.test", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
				map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
			readAll(t, resp)
			ev := p.lastEvent(t)
			if resp.StatusCode != tc.status || ev.Status != tc.status || !strings.Contains(ev.Err, tc.want) || ev.RPCMethod != "tools/list" {
				t.Fatalf("status %d, event %+v, want %d and %q", resp.StatusCode, ev, tc.status, tc.want)
			}
		})
	}
}

// The tool policy decides on what the app would parse: a denied call never
// reaches it, and a message that names its params twice (in two cases) is
// refused without its second name reaching the event.
func TestToolPolicyInTheChain(t *testing.T) {
	rules, err := toolrule.ParseTunnel("", "danger*")
	if err != nil {
		t.Fatal(err)
	}
	var reached atomic.Int32
	app := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		reached.Add(1)
		io.Copy(io.Discard, req.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`)
	})
	p := &pipeTunnel{tools: toolrule.ToolSet{rules}}
	r := newRig(t, p, false, app, nil)
	call := func(body string) (*http.Response, event.Request) {
		resp := r.do(http.MethodPost, "app.relay.test", "/mcp", body,
			map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
		readAll(t, resp)
		return resp, p.lastEvent(t)
	}
	resp, ev := call(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe"}}`)
	if resp.StatusCode != http.StatusOK || ev.Tool != "safe" || reached.Load() != 1 {
		t.Fatalf("allowed call: %d %+v", resp.StatusCode, ev)
	}
	resp, ev = call(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"danger_zone"}}`)
	if reached.Load() != 1 || ev.Tool != "danger_zone" || !strings.HasPrefix(ev.Err, "policy: ") {
		t.Fatalf("denied call: %d %+v, app reached %d times", resp.StatusCode, ev, reached.Load())
	}
	resp, ev = call(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"safe"},"Params":{"name":"danger_zone"}}`)
	if resp.StatusCode != http.StatusBadRequest || reached.Load() != 1 || strings.Contains(ev.Tool, "danger") {
		t.Fatalf("params and Params: %d %+v, app reached %d times", resp.StatusCode, ev, reached.Load())
	}
}

// One address may hold at most MaxStreamsPerSource requests on a tunnel;
// the next is told to retry, and the first finishes unharmed.
func TestPerSourceLimit(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	app := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	})
	p := &pipeTunnel{}
	r := newRig(t, p, false, app, func(c *Config) { c.MaxStreamsPerSource = 1 })
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	first := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, r.srv.URL+"/slow", nil)
		req.Host = "app.relay.test"
		resp, err := r.srv.Client().Do(req)
		if err != nil {
			first <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		first <- fmt.Sprint(resp.StatusCode, " ", string(b))
	}()
	<-entered
	resp := r.do(http.MethodGet, "app.relay.test", "/again", "", nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("second request from the same address: %d", resp.StatusCode)
	}
	once.Do(func() { close(release) })
	if got := <-first; got != "200 done" {
		t.Fatalf("the first request: %s", got)
	}
}

// An upgrade's 101 reaches the event though the writer never saw it (the
// connection was hijacked), and bytes flow both ways.
func TestUpgrade(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Upgrade") != "echo" {
			http.Error(w, "no upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo: " + line)
		brw.Flush()
	})
	p := &pipeTunnel{}
	c, br := newRig(t, p, false, app, nil).upgrade()
	io.WriteString(c, "hello\n")
	if got, _ := br.ReadString('\n'); got != "echo: hello\n" {
		t.Fatalf("through the upgrade: %q", got)
	}
	c.Close()
	if ev := p.lastEvent(t); ev.Status != http.StatusSwitchingProtocols {
		t.Fatalf("event %+v", ev)
	}
}

// On a route without tool rules the audit line's tool comes from the
// event's reader: a body read whole names what every app reads; of a body
// too large to read whole, only its head is read and the line says so.
func TestAuditToolNames(t *testing.T) {
	p := &pipeTunnel{}
	r := newRig(t, p, true, echoHeaders, nil)
	hdr := map[string]string{"Authorization": "Bearer " + r.token, "Content-Type": "application/json"}
	pad := strings.Repeat("x", 70<<10)
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"small"},"Params":{"name":"spoofed"}}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"harmless","arguments":{"p":"` + pad + `"}},"params":{"name":"evil"}}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo"}}`,
	} {
		readAll(t, r.do(http.MethodPost, "app.relay.test", "/mcp", body, hdr))
		p.lastEvent(t)
	}
	if err := r.access.FlushAudit(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(r.stateDir, access.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	var lines []access.Entry
	for line := range strings.Lines(string(data)) {
		var e access.Entry
		if json.Unmarshal([]byte(line), &e) == nil && e.Kind == "request" {
			lines = append(lines, e)
		}
	}
	if len(lines) != 3 {
		t.Fatalf("%d request lines:\n%s", len(lines), data)
	}
	if lines[0].Tool != "" || strings.Contains(string(data), "spoofed") {
		t.Fatalf("a message apps read differently named a tool: %+v", lines[0])
	}
	if lines[1].Tool != "harmless" || !strings.Contains(lines[1].Reason, "unverified") {
		t.Fatalf("a head-only reading is not marked: %+v", lines[1])
	}
	if lines[2].Tool != "echo" || lines[2].Reason != "" {
		t.Fatalf("a plain call: %+v", lines[2])
	}
}

// An upgraded connection whose app has closed its half ends within
// UpgradeLinger even if the client keeps its own half open.
func TestUpgradeLinger(t *testing.T) {
	old := UpgradeLinger
	UpgradeLinger = 100 * time.Millisecond
	t.Cleanup(func() { UpgradeLinger = old })
	app := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nbye\n")
		brw.Flush()
		conn.Close() // the app's half ends at once
	})
	p := &pipeTunnel{}
	_, br := newRig(t, p, false, app, nil).upgrade()
	// The client writes nothing and closes nothing: the front ends the
	// upgrade by itself.
	if ev := p.lastEvent(t); ev.Status != http.StatusSwitchingProtocols {
		t.Fatalf("event %+v", ev)
	}
	if got, _ := io.ReadAll(br); string(got) != "bye\n" {
		t.Fatalf("read %q before the end", got)
	}
}
