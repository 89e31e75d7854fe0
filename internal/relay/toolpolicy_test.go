package relay_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/pomdev/pomdev/internal/relay"
	"github.com/pomdev/pomdev/internal/relay/access"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"golang.org/x/crypto/ssh"
)

// toolOrigin is an official Go SDK server with five tools, listed two per
// page, at /mcp (stateful, SSE answers) and /json (stateless, JSON
// answers). It counts the calls that reach it per tool.
type toolOrigin struct {
	*httptest.Server
	calls map[string]*atomic.Int32
}

var originTools = []string{"delete_all", "delete_one", "echo", "get_time", "search"}

func newToolOrigin(t *testing.T) *toolOrigin {
	t.Helper()
	o := &toolOrigin{calls: map[string]*atomic.Int32{}}
	s := mcp.NewServer(&mcp.Implementation{Name: "tools", Version: "1"}, &mcp.ServerOptions{PageSize: 2})
	type args struct {
		Text string `json:"text"`
	}
	for _, name := range originTools {
		n := &atomic.Int32{}
		o.calls[name] = n
		mcp.AddTool(s, &mcp.Tool{Name: name, Description: name}, func(_ context.Context, _ *mcp.CallToolRequest, a args) (*mcp.CallToolResult, any, error) {
			n.Add(1)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + ": " + a.Text}}}, nil, nil
		})
	}
	sse := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	js := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/json" {
			js.ServeHTTP(w, r)
			return
		}
		sse.ServeHTTP(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *toolOrigin) reached(name string) int32 { return o.calls[name].Load() }

// policyTunnel is a relay with a policy file and an OpenSSH tunnel to a
// toolOrigin; env goes into the tunnel's SetEnv.
type policyTunnel struct {
	h      *rt.Harness
	origin *toolOrigin
	url    string
	file   string
}

func startPolicyTunnel(t *testing.T, policyText, env string, mod func(*relay.Config)) *policyTunnel {
	t.Helper()
	rt.RequireOpenSSH(t)
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(policyText), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &policyTunnel{origin: newToolOrigin(t), file: file}
	p.h = rt.StartRelay(t, func(c *relay.Config) {
		c.HTTPAuth = relay.HTTPAuthNone
		c.PolicyFile = file
		if mod != nil {
			mod(c)
		}
	})
	key, _ := rt.WriteKey(t)
	setenv := "SetEnv=POMDEV_TARGET=" + strings.TrimPrefix(p.origin.URL, "http://")
	if env != "" {
		setenv += " " + env
	}
	s := p.h.RunSSH(key, "-T", "-o", setenv, "-R", "0")
	s.WaitLine(t, "Remote: ")
	p.url = p.h.WaitURL()
	return p
}

func (p *policyTunnel) session(t *testing.T, path string) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "policy-test", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: p.url + path, HTTPClient: p.h.Client(), MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect %s: %v", path, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func listNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		names = append(names, tool.Name)
	}
	return names
}

// post sends one raw JSON-RPC body to the route and returns status and body.
func (p *policyTunnel) post(t *testing.T, path, body string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := p.h.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const denyDeletes = `# tools no tunnel may expose
tools:
  deny: ["delete_*"]
`

// TestToolPolicyGoSDK: with the relay denying delete_* and the tunnel
// denying get_time for itself, the official Go SDK client (protocol
// 2026-07-28, Mcp-Method/Mcp-Name headers) sees neither in tools/list,
// over SSE and JSON answers and across pages, and calling one fails with
// the rule named without reaching the app; allowed tools work.
func TestToolPolicyGoSDK(t *testing.T) {
	p := startPolicyTunnel(t, denyDeletes, "POMDEV_TOOLS_DENY=get_time", nil)
	for _, path := range []string{"/mcp", "/json"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			cs := p.session(t, path)
			if got := listNames(t, cs); !slices.Equal(got, []string{"echo", "search"}) {
				t.Fatalf("tools/list through the policy: %v, want [echo search]", got)
			}
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
			if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "echo: hi" {
				t.Fatalf("allowed tool: %v %+v", err, res)
			}
			for tool, rule := range map[string]string{
				"delete_all": `deny "delete_*" at ` + p.file + ":3",
				"get_time":   `deny "get_time" at the tunnel's own tool policy`,
			} {
				_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: map[string]any{"text": "x"}})
				if err == nil || !strings.Contains(err.Error(), rule) {
					t.Fatalf("call of %s: %v, want the rule %q named", tool, err, rule)
				}
			}
		})
	}
	for _, tool := range []string{"delete_all", "get_time"} {
		if n := p.origin.reached(tool); n != 0 {
			t.Fatalf("%s reached the app %d times", tool, n)
		}
	}
	if p.origin.reached("echo") != 2 {
		t.Fatalf("echo reached the app %d times, want 2", p.origin.reached("echo"))
	}
}

// TestToolPolicyWire: batches, forged 2026-07-28 headers and bodies the
// relay cannot read, on a policed route.
func TestToolPolicyWire(t *testing.T) {
	p := startPolicyTunnel(t, denyDeletes, "", nil)
	call := func(id int, tool string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{"text":"b"}}}`, id, tool)
	}
	// A batch with a denied call is refused whole: nothing runs.
	status, body := p.post(t, "/json", "["+call(1, "echo")+","+call(2, "delete_one")+"]", nil)
	var answers []struct {
		ID    int `json:"id"`
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Data    struct {
				Policy string `json:"policy"`
			} `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &answers); err != nil || status != 200 || len(answers) != 2 {
		t.Fatalf("batch: %d %s (%v)", status, body, err)
	}
	if answers[1].ID != 2 || answers[1].Error.Code != -32602 || !strings.Contains(answers[1].Error.Data.Policy, `deny "delete_*"`) ||
		answers[0].ID != 1 || answers[0].Error.Code != -32600 || !strings.Contains(answers[0].Error.Message, "delete_one") {
		t.Fatalf("batch answers: %s", body)
	}
	if p.origin.reached("echo")+p.origin.reached("delete_one") != 0 {
		t.Fatal("a call of a refused batch reached the app")
	}

	// The body decides, and a header that disagrees is refused (400,
	// HeaderMismatch), whichever way it lies.
	v := map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call"}
	for _, c := range []struct{ name, tool string }{{"echo", "delete_all"}, {"delete_all", "echo"}} {
		h := map[string]string{"Mcp-Name": c.name}
		for k, x := range v {
			h[k] = x
		}
		status, body := p.post(t, "/json", call(3, c.tool), h)
		if status != 400 || !strings.Contains(body, "-32020") || !strings.Contains(body, "Mcp-Name") {
			t.Fatalf("Mcp-Name %s for a call of %s: %d %s", c.name, c.tool, status, body)
		}
	}
	if status, body := p.post(t, "/json", call(4, "echo"), map[string]string{"Mcp-Method": "tools/list"}); status != 400 || !strings.Contains(body, "Mcp-Method") {
		t.Fatalf("lying Mcp-Method: %d %s", status, body)
	}
	if p.origin.reached("delete_all")+p.origin.reached("echo") != 0 {
		t.Fatal("a request with lying headers reached the app")
	}

	// What the relay cannot read on a policed route does not pass.
	for _, b := range []string{`not json`, `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":7}}`, `[]`, `"str"`} {
		if status, body := p.post(t, "/json", b, nil); status == 200 && !strings.Contains(body, `"error"`) || strings.Contains(body, `"result"`) {
			t.Fatalf("body %s passed: %d %s", b, status, body)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, p.url+"/json", strings.NewReader(call(6, "delete_all")))
	req.Header.Set("Content-Type", "text/plain")
	resp, err := p.h.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType || p.origin.reached("delete_all") != 0 {
		t.Fatalf("a text/plain body: %d, reached %d", resp.StatusCode, p.origin.reached("delete_all"))
	}
}

// TestToolPolicyTypeScriptSDK: the official TypeScript SDK client
// (protocol 2025-11-25, sessions, SSE) through a policed route.
func TestToolPolicyTypeScriptSDK(t *testing.T) {
	node, sdk := requireTSSDK(t)
	// The relay allows only what is listed; the tunnel denies search.
	p := startPolicyTunnel(t, "tools:\n  allow: [\"echo\", \"search\", \"get_*\"]\n", "POMDEV_TOOLS_DENY=search", nil)
	cmd := exec.Command(node, "testdata/ts_policy_client.mjs", sdk, p.url+"/mcp")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var res struct {
		Tools  []string          `json:"tools"`
		Echo   string            `json:"echo"`
		Denied map[string]string `json:"denied"`
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !slices.Equal(res.Tools, []string{"echo", "get_time"}) || res.Echo != "echo: ts" {
		t.Fatalf("TS client saw %+v\n%s", res, out)
	}
	if !strings.Contains(res.Denied["delete_all"], "not in the allow list at "+p.file+":2") ||
		!strings.Contains(res.Denied["search"], `deny "search" at the tunnel's own tool policy`) {
		t.Fatalf("denials as the TS client saw them: %+v", res.Denied)
	}
	if p.origin.reached("delete_all")+p.origin.reached("search") != 0 {
		t.Fatal("a denied call reached the app")
	}
}

// TestToolPolicyReload: a valid change takes effect at once; an invalid
// one is reported with file and line and the last good policy stays.
func TestToolPolicyReload(t *testing.T) {
	p := startPolicyTunnel(t, denyDeletes, "", nil)
	cs := p.session(t, "/json")
	if got := listNames(t, cs); len(got) != 3 {
		t.Fatalf("before reload: %v", got)
	}
	write := func(s string) {
		tmp := p.file + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p.file); err != nil { // as editors save
			t.Fatal(err)
		}
	}
	write("tools:\n  deny: [\"delete_*\", \"echo\"]\n")
	rt.WaitFor(t, func() bool { return len(listNames(t, cs)) == 2 }, "the reloaded policy to hide echo")
	write("tools:\n  deny: [\"delete_*\"]\n  alow: [\"x\"]\n")
	rt.WaitFor(t, func() bool { _, err := p.h.R.Policy(); return err != nil }, "the invalid file to be reported")
	_, perr := p.h.R.Policy()
	if want := p.file + `:3: unknown key "alow" in tools`; !strings.Contains(perr.Error(), want) {
		t.Fatalf("reload error %q, want %q", perr, want)
	}
	if got := listNames(t, cs); !slices.Equal(got, []string{"get_time", "search"}) {
		t.Fatalf("after a bad reload the last good policy must stay: %v", got)
	}
}

// TestPolicyHolders: who may open tunnels and which names they may hold,
// with stock OpenSSH; a reload that takes a name from its key closes the
// tunnel and says why.
func TestPolicyHolders(t *testing.T) {
	rt.RequireOpenSSH(t)
	keyA, signerA := rt.WriteKey(t)
	keyB, signerB := rt.WriteKey(t)
	keyC, _ := rt.WriteKey(t)
	fpA, fpB := ssh.FingerprintSHA256(signerA.PublicKey()), ssh.FingerprintSHA256(signerB.PublicKey())
	file := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file+".tmp", []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".tmp", file); err != nil {
			t.Fatal(err)
		}
	}
	holders := func(fp string) string {
		return fmt.Sprintf("tunnels:\n  allow: [%q, %q]\nroutes:\n  - name: shop\n    holders: [%q]\n", "key:"+fpA, "key:"+fpB, "key:"+fp)
	}
	write(holders(fpA))
	h := rt.StartRelay(t, func(c *relay.Config) {
		c.HTTPAuth = relay.HTTPAuthNone
		c.PolicyFile = file
	})
	origin := rt.NewOrigin(t, "shop")

	// C may not tunnel at all; B may tunnel, but not as shop.
	c := h.RunSSH(keyC, "-T", "-R", "0")
	<-c.Done
	if !strings.Contains(c.Stderr(), "forwarding failed") {
		t.Fatalf("a key the policy does not list opened a tunnel: %s", c.Stderr())
	}
	b := h.RunSSH(keyB, "-T", "-R", "shop:80:"+origin.HostPort())
	<-b.Done
	if !strings.Contains(b.Stderr(), "forwarding failed") {
		t.Fatalf("B held shop: %s", b.Stderr())
	}
	a := h.RunSSH(keyA, "-T", "-R", "shop:80:"+origin.HostPort())
	a.WaitLine(t, "Remote: ")
	h.WaitRoute(1)

	write(holders(fpB))
	a.WaitContains(t, "closed by the relay's policy")
	h.WaitRoute(0)
	b = h.RunSSH(keyB, "-T", "-R", "shop:80:"+origin.HostPort())
	b.WaitLine(t, "Remote: ")
	h.WaitRoute(1)
}

// TestToolPolicyAudit: on a gated route the audit trail records the
// policy's decisions: the denied call with its rule, the tools/list that
// lost a tool.
func TestToolPolicyAudit(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte("tools:\n  deny: [echo]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGated(t, func(c *relay.Config) { c.PolicyFile = file })
	_, tk := g.grant(t)
	if resp := g.post(t, g.url+"/mcp", tk.Access); resp.StatusCode != 200 {
		t.Fatalf("tools/list: %d", resp.StatusCode)
	}
	seen := len(g.origin.seen())
	req, _ := http.NewRequest(http.MethodPost, g.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tk.Access)
	resp, err := g.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `deny \"echo\" at `+file+":2") {
		t.Fatalf("denied call: %s", b)
	}
	// One reader for the policy and the audit: a second "Params" names no
	// tool in the trail (and the message is refused).
	req, _ = http.NewRequest(http.MethodPost, g.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_time"},"Params":{"name":"spoofed"}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tk.Access)
	if resp, err = g.client().Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a message with params and Params: %d", resp.StatusCode)
	}
	data := g.auditTrail(t)
	if strings.Contains(string(data), "spoofed") {
		t.Fatalf("the audit names a tool the policy never read:\n%s", data)
	}
	var denied, hidden bool
	for line := range strings.Lines(string(data)) {
		var e access.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		switch {
		case e.Kind == "request" && e.Method == "tools/call":
			denied = e.Decision == "deny" && e.Tool == "echo" && strings.Contains(e.Reason, `deny "echo" at `+file+":2")
		case e.Kind == "request" && e.Method == "tools/list":
			hidden = e.Decision == "allow" && e.Reason == "policy hid 1 tools"
		}
	}
	if !denied || !hidden {
		t.Fatalf("audit trail (denied %v, hidden %v):\n%s", denied, hidden, data)
	}
	if n := len(g.origin.seen()); n != seen {
		t.Fatalf("the denied call reached the app (%d requests, %d before)", n, seen)
	}
}

// requireTSSDK is node and the official TypeScript SDK's directory
// (POMDEV_TEST_TS_SDK, installed by .ci/run); without them the test skips,
// and fails in CI.
func requireTSSDK(t *testing.T) (node, sdk string) {
	t.Helper()
	sdk = os.Getenv("POMDEV_TEST_TS_SDK")
	node, err := exec.LookPath("node")
	if sdk == "" || err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("POMDEV_TEST_TS_SDK (the @modelcontextprotocol/sdk directory) and node are required in CI")
		}
		t.Skip("POMDEV_TEST_TS_SDK not set")
	}
	return node, sdk
}

// auditTrail flushes and reads the relay's audit trail.
func (g *gatedTunnel) auditTrail(t *testing.T) []byte {
	t.Helper()
	if err := g.h.R.Access().FlushAudit(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(g.h.StateDir, access.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
