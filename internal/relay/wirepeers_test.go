package relay_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pomdev/pomdev/internal/peertest"
	"github.com/pomdev/pomdev/internal/relay"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
)

// startPolicyTunnelTo is a relay with the policy text and an OpenSSH
// tunnel to target (host:port); it returns the route's URL.
func startPolicyTunnelTo(t *testing.T, policyText, target string) (*rt.Harness, string) {
	t.Helper()
	rt.RequireOpenSSH(t)
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(policyText), 0o600); err != nil {
		t.Fatal(err)
	}
	h := rt.StartRelay(t, func(c *relay.Config) {
		c.HTTPAuth = relay.HTTPAuthNone
		c.PolicyFile = file
	})
	key, _ := rt.WriteKey(t)
	s := h.RunSSH(key, "-T", "-o", "SetEnv=POMDEV_TARGET="+target, "-R", "0")
	s.WaitLine(t, "Remote: ")
	return h, h.WaitURL()
}

func rawPost(t *testing.T, c *http.Client, u, contentType, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestToolPolicyCharsetExpress: the TypeScript SDK's Express app
// (createMcpExpressApp, body-parser) reads a body in the charset its
// Content-Type names: in UTF-7, "+AGU-xec_cmd" is exec_cmd. Sent to the app
// directly, the call runs; through a route that denies exec_*, every
// charset but UTF-8 is refused with 415 and nothing runs.
func TestToolPolicyCharsetExpress(t *testing.T) {
	_, sdk := requireTSSDK(t)
	script, err := filepath.Abs("testdata/ts_express_server.mjs")
	if err != nil {
		t.Fatal(err)
	}
	app := peertest.StartNode(t, t.TempDir(), script, sdk)
	calls := func() map[string]int {
		resp, err := http.Get("http://" + app + "/calls")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]int
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return m
	}
	disguised := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"+AGU-xec_cmd","arguments":{}}}`
	utf7 := "application/json; charset=utf-7"

	// The bypass is real: the app runs exec_cmd.
	status, body := rawPost(t, http.DefaultClient, "http://"+app+"/mcp", utf7, disguised)
	if status != 200 || calls()["exec_cmd"] != 1 {
		t.Fatalf("sent directly in UTF-7, exec_cmd did not run (%d %s, calls %v): the test would prove nothing", status, body, calls())
	}

	h, url := startPolicyTunnelTo(t, "tools:\n  deny: [\"exec_*\"]\n", app)
	for _, ct := range []string{utf7, "application/json; charset=UTF-7", "application/json;charset=\"utf-7\"", "application/json; charset=utf-16le"} {
		status, body := rawPost(t, h.Client(), url+"/mcp", ct, disguised)
		if status != http.StatusUnsupportedMediaType {
			t.Errorf("Content-Type %q through the policy: %d %s", ct, status, body)
		}
	}
	if n := calls()["exec_cmd"]; n != 1 {
		t.Fatalf("exec_cmd ran %d times through a route that denies it", n-1)
	}
	// UTF-8 passes: the app answers.
	ok := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{}}}`
	if status, body := rawPost(t, h.Client(), url+"/mcp", "application/json; charset=utf-8", ok); status != 200 || !strings.Contains(body, "echo ran") {
		t.Fatalf("echo in UTF-8 through the policy: %d %s", status, body)
	}
}

// goJSONServer is an MCP-style JSON-RPC endpoint that reads messages the
// way servers built on encoding/json structs do (mcp-go among them): keys
// matched without regard to case, the last of repeated keys winning. It
// counts the tools/call requests per tool name.
type goJSONServer struct {
	*httptest.Server
	mu    sync.Mutex
	calls map[string]int
}

func newGoJSONServer(t *testing.T) *goJSONServer {
	s := &goJSONServer{calls: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Name string `json:"name"`
			} `json:"params"`
		}
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if msg.Method == "tools/call" {
			s.mu.Lock()
			s.calls[msg.Params.Name]++
			s.mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"%s ran"}]}}`, msg.ID, msg.Params.Name)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *goJSONServer) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[name]
}

// TestToolPolicyKeyCaseGoServer: a server reading JSON-RPC into
// encoding/json structs takes {"name":"echo","Name":"exec_cmd"} as a call
// of exec_cmd and "METHOD" as the method. Sent directly, exec_cmd runs;
// through a route that denies exec_*, a message whose keys differ from a
// JSON-RPC key only by case is refused and nothing runs.
func TestToolPolicyKeyCaseGoServer(t *testing.T) {
	app := newGoJSONServer(t)
	bodies := []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Name":"exec_cmd"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"ping","METHOD":"tools/call","params":{"name":"exec_cmd"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","NAME":"exec_cmd"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},"Params":{"name":"exec_cmd"}}`,
	}
	for _, b := range bodies[:1] {
		rawPost(t, http.DefaultClient, app.URL, "application/json", b)
	}
	if app.count("exec_cmd") != 1 {
		t.Fatalf("sent directly, exec_cmd ran %d times: the test would prove nothing", app.count("exec_cmd"))
	}
	h, url := startPolicyTunnelTo(t, "tools:\n  deny: [\"exec_*\"]\n", strings.TrimPrefix(app.URL, "http://"))
	for _, b := range bodies {
		status, body := rawPost(t, h.Client(), url+"/mcp", "application/json", b)
		if status != http.StatusBadRequest || !strings.Contains(body, "only by case") {
			t.Errorf("%s through the policy: %d %s", b, status, body)
		}
	}
	if n := app.count("exec_cmd"); n != 1 {
		t.Fatalf("exec_cmd ran %d times through a route that denies it", n-1)
	}
}
