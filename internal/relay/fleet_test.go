package relay_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/pgtest"
	"github.com/pomdev/pomdev/internal/relay"
	"github.com/pomdev/pomdev/internal/relay/access"
	"github.com/pomdev/pomdev/internal/relay/fleet"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"golang.org/x/net/websocket"
)

// Two relays on one PostgreSQL store share their state: a token granted
// through one passes the other's gate once the tunnel has moved there, the
// key gets its name back on the other relay, and that name stays
// reserved for it on both (another key is refused it).
func TestTwoRelaysShareState(t *testing.T) {
	pg := pgtest.DB(t)
	mod := func(c *relay.Config) {
		c.Store = pg
		// Behind one load balancer every node prints the same URLs.
		c.PublicPort = 8443
	}
	a := newGated(t, mod, false)
	_, tk := a.grant(t)
	if resp := a.post(t, a.url+"/mcp", tk.Access); resp.StatusCode != 200 {
		t.Fatalf("through relay A: %d", resp.StatusCode)
	}
	name := routeOf(a.url)

	b := newGated(t, mod, true)
	stranger := b.key
	// The tunnel moves: its client reconnects to the other relay.
	a.ssh.Kill()
	a.h.WaitRoute(0)
	b.key = a.key
	b.ssh = b.h.RunSSH(b.key, "-T", "-o", "SetEnv=POMDEV_TARGET="+b.target(), "-R", "0")
	b.ssh.WaitLine(t, "Remote: ")
	if b.url = b.h.WaitURL(); b.url != a.url {
		t.Fatalf("on relay B the key's route is %s, want %s", b.url, a.url)
	}
	if resp := b.post(t, b.url+"/mcp", tk.Access); resp.StatusCode != 200 {
		t.Fatalf("relay A's token through relay B: %d", resp.StatusCode)
	}
	if resp := b.post(t, b.url+"/mcp", ""); resp.StatusCode != 401 {
		t.Fatalf("no token through relay B: %d, want 401", resp.StatusCode)
	}
	grants, err := b.h.R.Access().Grants(context.Background(), "")
	if err != nil || len(grants) != 1 {
		t.Fatalf("relay B's grants: %+v %v", grants, err)
	}
	// Another key asks for that name, on either relay, and is refused.
	for _, h := range []*gatedTunnel{a, b} {
		p := h.h.RunSSH(stranger, "-T", "-o", "ExitOnForwardFailure=yes", "-R", name+":80:"+b.target())
		<-p.Done // ExitOnForwardFailure
		if !strings.Contains(p.Stderr(), "remote port forwarding failed") {
			t.Fatalf("another key asking for %s: %s", name, p.Stderr())
		}
		if n := len(h.h.R.Routes()); h == a && n != 0 {
			t.Fatalf("relay A took the name for another key: %v", h.h.R.Routes())
		}
	}
}

// startFleet starts n relays on one new PostgreSQL store, as nodes of a
// fleet behind one load balancer (one public port).
func startFleet(t *testing.T, n int, mod func(*relay.Config)) []*rt.Harness {
	t.Helper()
	pg := pgtest.DB(t)
	var hs []*rt.Harness
	for range n {
		hs = append(hs, rt.StartRelay(t, func(c *relay.Config) {
			c.Store = pg
			c.PublicPort = 8443
			if mod != nil {
				mod(c)
			}
		}))
	}
	return hs
}

// A tunnel on node 1 answers through nodes 2 and 3 as through node 1:
// the same answers, SSE events in order as they are sent, an upgraded
// connection and a WebSocket echo both ways; a node that stops is left
// at once (its routes are nowhere, not a dead address).
func TestFleetForwarding(t *testing.T) {
	rt.RequireOpenSSH(t)
	o := rt.NewOrigin(t, "fleet")
	ws := httptest.NewServer(websocket.Handler(func(c *websocket.Conn) {
		for {
			var msg string
			if websocket.Message.Receive(c, &msg) != nil || websocket.Message.Send(c, msg) != nil {
				return
			}
		}
	}))
	defer ws.Close()
	nodes := startFleet(t, 3, func(c *relay.Config) { c.DefaultTarget = o.HostPort() })
	key, _ := rt.WriteKey(t)
	nodes[0].RunSSH(key, "-N", "-R", "0")
	url := nodes[0].WaitURL()

	get := func(h *rt.Harness, path string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, url+path, strings.NewReader(`{"n":1}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := h.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, want := get(nodes[0], "/a?b=c")
	if code != 200 || rt.Decode(t, want)["body"] != `{"n":1}` {
		t.Fatalf("through node 1: %d %s", code, want)
	}
	for i, h := range nodes[1:] {
		if code, got := get(h, "/a?b=c"); code != 200 || got != want {
			t.Fatalf("through node %d: %d %s\nwant %s", i+2, code, got, want)
		}
	}

	// SSE through node 3: each event when sent.
	resp, err := nodes[2].Client().Get(url + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("SSE through node 3: %d %q", resp.StatusCode, ct)
	}
	br := bufio.NewReader(resp.Body)
	for i, ev := range []string{"one", "two", "three"} {
		o.Events <- ev
		line, err := br.ReadString('\n')
		if err != nil || line != "data: "+ev+"\n" {
			t.Fatalf("event %d through node 3: %q, %v", i, line, err)
		}
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	resp.Body.Close()

	// An upgrade through node 2.
	nodes[1].UpgradeEcho(url)

	// A WebSocket through node 2, to a WebSocket origin behind a second
	// tunnel of the key.
	wsKey, _ := rt.WriteKey(t)
	nodes[0].RunSSH(wsKey, "-T", "-o", "SetEnv=POMDEV_TARGET="+strings.TrimPrefix(ws.URL, "http://"), "-R", "0")
	var wsURL string
	rt.WaitFor(t, func() bool {
		for _, u := range nodes[0].R.Routes() {
			if u != url {
				wsURL = u
			}
		}
		return wsURL != ""
	}, "the WebSocket tunnel")
	conn, err := net.Dial("tcp", nodes[1].HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := websocket.NewConfig(strings.Replace(wsURL, "http://", "ws://", 1)+"/", wsURL)
	if err != nil {
		t.Fatal(err)
	}
	wc, err := websocket.NewClient(cfg, conn)
	if err != nil {
		t.Fatalf("WebSocket handshake through node 2: %v", err)
	}
	for _, msg := range []string{"hello", strings.Repeat("x", 70000)} {
		if err := websocket.Message.Send(wc, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(wc, &got); err != nil || got != msg {
			t.Fatalf("WebSocket echo of %d bytes: %d bytes, %v", len(msg), len(got), err)
		}
	}
	wc.Close()

	// Node 1 stops: nodes 2 and 3 find the route nowhere (404), at once.
	nodes[0].Stop()
	for i, h := range nodes[1:] {
		if code, body := get(h, "/"); code != http.StatusNotFound {
			t.Fatalf("node %d after node 1 stopped: %d %s", i+2, code, body)
		}
	}
}

// auditLines counts the lines of a relay's audit trail about requests to
// the tunnel (let through, or refused).
func auditLines(t *testing.T, h *rt.Harness) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.StateDir, "audit.jsonl"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Count(string(b), `"kind":"request"`) + strings.Count(string(b), `"kind":"refused"`)
}

// Through another node, the OAuth gate and the tool policy hold as on the
// tunnel's own node, and each request is audited once, there.
func TestFleetGateAndPolicy(t *testing.T) {
	pg := pgtest.DB(t)
	mod := func(c *relay.Config) { c.Store = pg; c.PublicPort = 8443 }
	a := newGated(t, mod, true)
	a.ssh = a.h.RunSSH(a.key, "-T", "-o", "SetEnv=POMDEV_TARGET="+a.target()+" POMDEV_TOOLS_DENY=echo", "-R", "0")
	a.ssh.WaitLine(t, "Remote: ")
	a.url = a.h.WaitURL()
	b := newGated(t, mod, true)
	_, tk := a.grant(t)

	call := func(g *gatedTunnel, bearer, body string) (int, string) {
		t.Helper()
		resp, err := g.client().Do(mcpRequest(a.url+"/mcp", bearer, body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	echo := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`
	beforeA, beforeB := auditLines(t, a.h), auditLines(t, b.h)
	if code, body := call(b, "", list); code != http.StatusUnauthorized {
		t.Fatalf("no token through node B: %d %s", code, body)
	}
	if code, body := call(b, "not-a-token", list); code != http.StatusUnauthorized {
		t.Fatalf("a bad token through node B: %d %s", code, body)
	}
	code, viaA := call(a, tk.Access, list)
	if code != 200 {
		t.Fatalf("tools/list through node A: %d %s", code, viaA)
	}
	if code, viaB := call(b, tk.Access, list); code != 200 || viaB != viaA || strings.Contains(viaB, `"echo"`) {
		t.Fatalf("tools/list through node B: %d %s\nthrough A: %s", code, viaB, viaA)
	}
	if code, body := call(b, tk.Access, echo); code != 200 || !strings.Contains(body, "the relay's policy refuses it") || strings.Contains(body, "echo: hi") {
		t.Fatalf("a denied tool through node B: %d %s", code, body)
	}
	// Five requests, one of them through A: five audit lines on A (the
	// tunnel's node), none on B.
	if !rt.Until(func() bool { return auditLines(t, a.h) == beforeA+5 }) {
		b, _ := os.ReadFile(filepath.Join(a.h.StateDir, "audit.jsonl"))
		t.Fatalf("node A's audit, %d lines before:\n%s", beforeA, b)
	}
	if n := auditLines(t, b.h); n != beforeB {
		t.Fatalf("node B wrote %d audit lines for requests it passed on", n-beforeB)
	}
	// The store's table has the fleet's trail: the five, once each.
	db, err := sql.Open("pgx", pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var inTable int
	if !rt.Until(func() bool {
		return db.QueryRow(`SELECT count(*) FROM audit WHERE kind IN ('request', 'refused') AND route = $1`, routeOf(a.url)).Scan(&inTable) == nil && inTable >= 5
	}) || inTable != 5 {
		t.Fatalf("the store's audit table has %d request lines for the route, want 5", inTable)
	}
}

// routeOf is the route name of a tunnel URL.
func routeOf(u string) string {
	host := strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	return strings.SplitN(host, ".", 2)[0]
}

// A token revoked through node 2 is refused through node 3 (by node 1,
// the tunnel's, which had its verdict cached) as soon as node 1 hears of
// it from the store; so is a grant revoked on node 3, for node 2.
func TestFleetRevocation(t *testing.T) {
	pg := pgtest.DB(t)
	mod := func(c *relay.Config) { c.Store = pg; c.PublicPort = 8443 }
	a := newGated(t, mod, false)
	b, c := newGated(t, mod, true), newGated(t, mod, true)
	clientID, tk := a.grant(t)
	for _, g := range []*gatedTunnel{a, b, c} {
		if code := g.post(t, a.url+"/mcp", tk.Access).StatusCode; code != 200 {
			t.Fatalf("a fresh token: %d", code)
		}
	}
	resp, err := b.client().PostForm(b.h.R.BaseURL()+access.PathRevoke, url.Values{"token": {tk.Access}, "client_id": {clientID}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("revoke through node 2: %d", resp.StatusCode)
	}
	start := time.Now()
	if !rt.Until(func() bool { return c.post(t, a.url+"/mcp", tk.Access).StatusCode == http.StatusUnauthorized }) {
		t.Fatal("the revoked token still passes through node 3")
	}
	t.Logf("revocation through node 2 refused through node 3 after %v", time.Since(start))

	status, tk2 := a.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.Refresh}, "client_id": {clientID}})
	if status != 200 || b.post(t, a.url+"/mcp", tk2.Access).StatusCode != 200 {
		t.Fatalf("refresh after revoking the access token: %d", status)
	}
	grants, err := c.h.R.Access().Grants(context.Background(), "")
	if err != nil || len(grants) != 1 {
		t.Fatalf("grants on node 3: %v %v", grants, err)
	}
	if err := c.h.R.Access().RevokeGrant(context.Background(), grants[0].ID, ""); err != nil {
		t.Fatal(err)
	}
	if !rt.Until(func() bool { return b.post(t, a.url+"/mcp", tk2.Access).StatusCode == http.StatusUnauthorized }) {
		t.Fatal("a token of a grant revoked on node 3 still passes through node 2")
	}
}

// The store stops for 10 s and starts again. Meanwhile the tunnel a node
// holds keeps answering a token it verified before, through it and through
// the node that found it there last; what needs the store
// (a new registration, a sign-in, readiness) is a 503 that says so; after
// it, everything works again without a restart: new grants, and a
// revocation reaches the other node.
func TestFleetStoreOutage(t *testing.T) {
	cluster := pgtest.New(t)
	pg := cluster.CreateDB(t)
	mod := func(c *relay.Config) { c.Store = pg; c.PublicPort = 8443 }
	a := newGated(t, mod, false)
	b := newGated(t, mod, true)
	clientID, tk := a.grant(t)
	if code := b.post(t, a.url+"/mcp", tk.Access).StatusCode; code != 200 {
		t.Fatalf("through node B before: %d", code)
	}
	ready := func(g *gatedTunnel) (int, string) {
		resp, err := g.client().Get(g.h.R.BaseURL() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	register := func(g *gatedTunnel) (int, string) {
		body := `{"client_name":"during","redirect_uris":["` + redirect + `"],"token_endpoint_auth_method":"none"}`
		resp, err := g.client().Post(g.h.R.BaseURL()+access.PathRegister, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After") + " " + string(out)
	}

	if err := cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	if !rt.Until(func() bool { code, _ := ready(a); return code == http.StatusServiceUnavailable }) {
		t.Fatal("node A still says it is ready with its store stopped")
	}
	// Registrations are rate-limited per address (5 at once): one now.
	if code, body := register(a); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "2 ") || !strings.Contains(body, "cannot reach its store") {
		t.Fatalf("a registration during the outage: %d %s", code, body)
	}
	for time.Since(stopped) < 10*time.Second {
		for _, g := range []*gatedTunnel{a, b} {
			if code := g.post(t, a.url+"/mcp", tk.Access).StatusCode; code != 200 {
				t.Fatalf("the held tunnel %v into the outage, through %s: %d", time.Since(stopped).Round(time.Millisecond), g.h.HTTPAddr, code)
			}
		}
		if code, body := ready(b); code != http.StatusServiceUnavailable || !strings.Contains(body, "store unreachable") {
			t.Fatalf("node B's readiness during the outage: %d %s", code, body)
		}
		time.Sleep(500 * time.Millisecond) // the outage's pace, not a synchronisation
	}
	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	if !rt.Until(func() bool { code, _ := ready(a); return code == 200 }) {
		t.Fatal("node A is not ready again after the store came back")
	}
	if code, body := register(a); code != http.StatusCreated {
		t.Fatalf("a registration after the outage: %d %s", code, body)
	}
	_, tk2 := a.grant(t)
	// Node A's next beat makes it live again for node B (its last one is
	// as old as the outage).
	if !rt.Until(func() bool { return b.post(t, a.url+"/mcp", tk2.Access).StatusCode == 200 }) {
		code := b.post(t, a.url+"/mcp", tk2.Access).StatusCode
		db, _ := sql.Open("pgx", pg)
		defer db.Close()
		var dump []string
		rows, err := db.Query(`SELECT 'node ' || id || ' ' || addr || ' seen ' || (extract(epoch from now())*1000 - seen)::bigint || ' ms ago' FROM nodes UNION ALL SELECT 'lease ' || route || ' ' || node FROM leases`)
		for err == nil && rows.Next() {
			var l string
			rows.Scan(&l)
			dump = append(dump, l)
		}
		t.Fatalf("a new grant through node B after the outage: %d (%v)\n%s", code, err, strings.Join(dump, "\n"))
	}
	resp, err := b.client().PostForm(b.h.R.BaseURL()+access.PathRevoke, url.Values{"token": {tk.Access}, "client_id": {clientID}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !rt.Until(func() bool { return a.post(t, a.url+"/mcp", tk.Access).StatusCode == http.StatusUnauthorized }) {
		t.Fatal("a revocation on node B after the outage does not reach node A")
	}
}

// A node's internal listener takes only nodes of its fleet: a client
// without a certificate, plain HTTP and garbage are refused at the
// handshake (another CA's certificate: TestFleetTLS in relay/fleet), the header
// that carries a client's address means nothing on the public front, and
// the node goes on serving.
func TestFleetListenerRefusesStrangers(t *testing.T) {
	rt.RequireOpenSSH(t)
	o := rt.NewOrigin(t, "fleet")
	nodes := startFleet(t, 2, func(c *relay.Config) { c.DefaultTarget = o.HostPort() })
	key, _ := rt.WriteKey(t)
	nodes[0].RunSSH(key, "-N", "-R", "0")
	url := nodes[0].WaitURL()
	_, addr := nodes[0].R.FleetNode()
	if addr == "" {
		t.Fatal("no fleet address")
	}

	// No client certificate (and no trust in the node's either).
	for _, cfg := range []*tls.Config{
		{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13},
	} {
		c, err := tls.Dial("tcp", addr, cfg)
		if err == nil {
			_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+strings.TrimPrefix(url, "http://")+"\r\n\r\n")
			if err == nil {
				_, err = c.Read(make([]byte, 1))
			}
			c.Close()
		}
		if err == nil {
			t.Fatal("a client without a fleet certificate was served")
		}
	}
	// Plain HTTP and garbage.
	for _, junk := range []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "\x16\x03\x01\x00\x05hello", strings.Repeat("\x00", 4096)} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, junk)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		c.Close()
		if strings.Contains(string(b), `"origin"`) {
			t.Fatalf("junk %q reached the tunnel", junk)
		}
	}
	// The client-address header is the fleet's alone: on the public front
	// it is a header like any other, not an address.
	req, _ := http.NewRequest(http.MethodGet, url+"/", nil)
	req.Header.Set(fleet.ClientHeader, "203.0.113.7:1")
	resp, err := nodes[1].Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Contains(string(b), "203.0.113.7") {
		t.Fatalf("through node 2 with a forged client header: %d %s", resp.StatusCode, b)
	}
	// Both nodes still serve.
	for i, h := range nodes {
		if code, body := h.Get(url + "/"); code != 200 || !strings.Contains(body, `"origin":"fleet"`) {
			t.Fatalf("node %d after the strangers: %d %s", i+1, code, body)
		}
	}
}

// Wrong approval codes are counted by the whole fleet: a guesser who
// spreads them over two nodes is stopped after as many as on one.
func TestFleetGuessingCountedTogether(t *testing.T) {
	pg := pgtest.DB(t)
	mod := func(c *relay.Config) { c.Store = pg; c.PublicPort = 8443 }
	a, b := newGated(t, mod, true), newGated(t, mod, true)
	var last error
	for i := range 12 {
		g := a
		if i%2 == 1 {
			g = b
		}
		_, last = g.h.R.Access().Decide(context.Background(), fmt.Sprintf("AAAA-%04d", i), true, "SHA256:guesser", "test")
		if errors.Is(last, access.ErrTooMany) {
			if i < 10 {
				t.Fatalf("refused after %d wrong codes", i)
			}
			break
		}
	}
	if !errors.Is(last, access.ErrTooMany) {
		t.Fatalf("12 wrong codes over two nodes: %v", last)
	}
	// Another key is not held back by the guesser.
	if _, err := b.h.R.Access().Decide(context.Background(), "AAAA-9999", true, "SHA256:someone-else", "test"); !errors.Is(err, access.ErrUnknownCode) {
		t.Fatalf("another key's wrong code: %v", err)
	}
}
