package policy

import (
	"encoding/json"
	"github.com/pomdev/pomdev/internal/toolrule"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/fuzzwatch"
)

const good = `# a relay's policy
tunnels:
  allow: ["key:SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "any"]
routes:
  - name: demo-*
    holders: ["key:SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"]
    tools:
      deny: [delete_*]
  - name: open
tools:
  allow: ["get_*", search, delete_one]
`

func TestParse(t *testing.T) {
	p, err := Parse("p.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Tunnels) != 2 || len(p.Routes) != 2 || p.Routes[0].Name.Text != "demo-*" || p.Routes[1].Holders != nil {
		t.Fatalf("%+v", p)
	}
	key := Identity{Key: "SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}
	other := Identity{Key: "SHA256:other"}
	if ok, _ := p.MayHold(key, "demo-1"); !ok {
		t.Fatal("the listed key may hold demo-1")
	}
	if ok, where := p.MayHold(other, "demo-1"); ok || where != "p.yaml:5 (routes[0])" {
		t.Fatalf("another key on demo-1: %v %q", ok, where)
	}
	if ok, _ := p.MayHold(other, "open"); !ok {
		t.Fatal("a route without holders is open to whoever may tunnel")
	}
	for _, c := range []struct {
		route, tool string
		ok          bool
		rule        string
	}{
		{"demo-1", "get_time", true, ""},
		{"demo-1", "delete_one", false, `deny "delete_*" at p.yaml:8`},
		{"open", "delete_one", true, ""},
		{"open", "exec", false, "not in the allow list at p.yaml:11 (tools)"},
	} {
		ok, rule := p.ToolsFor(c.route).Decide(c.tool)
		if ok != c.ok || rule != c.rule {
			t.Errorf("%s on %s: %v %q, want %v %q", c.tool, c.route, ok, rule, c.ok, c.rule)
		}
	}
	empty, err := Parse("e.yaml", []byte("# nothing yet\n"))
	if err != nil || !empty.ToolsFor("x").Empty() {
		t.Fatalf("an empty file allows everything: %v", err)
	}
	if ok, _ := empty.MayOpen(other); !ok {
		t.Fatal("an empty file lets anyone tunnel")
	}
	closed, _ := Parse("c.yaml", []byte("tunnels:\n  allow: []\n"))
	if ok, where := closed.MayOpen(key); ok || where != "c.yaml:2 (tunnels.allow)" {
		t.Fatalf("an empty allow list lets no one tunnel: %v %q", ok, where)
	}
}

// Every problem is reported, each with its file and line.
func TestParseErrors(t *testing.T) {
	bad := `tunnels:
  allow: ["key:abc", "mail:x@y.z"]
routes:
  - name: "Demo"
    tools: {deny: ["del*ete"]}
  - holders: [any]
  - name: x
    tool: {}
tools:
  allow: [get_*]
  allow: [x]
extra: 1
`
	_, err := Parse("bad.yaml", []byte(bad))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`bad.yaml:2: "key:abc" in tunnels.allow is not a key fingerprint`,
		`bad.yaml:2: "mail:x@y.z" in tunnels.allow: unknown kind "mail"`,
		`bad.yaml:4: "Demo" in routes[0].name: route names have lowercase letters`,
		`bad.yaml:5: "del*ete" in routes[0].tools.deny: * may only end a name`,
		`bad.yaml:6: routes[1] needs a name`,
		`bad.yaml:8: unknown key "tool" in routes[2] (known: name, holders, callers, tools)`,
		`bad.yaml:11: "allow" is given twice in tools`,
		`bad.yaml:12: unknown key "extra" in the top level (known: tunnels, routes, tools)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if _, err := Parse("y.yaml", []byte("tools: [\n")); err == nil || !strings.HasPrefix(err.Error(), "y.yaml") {
		t.Fatalf("a YAML syntax error: %v", err)
	}
	if _, err := Parse("l.yaml", []byte("- a\n")); err == nil || !strings.Contains(err.Error(), "l.yaml:1: the top level must be a mapping") {
		t.Fatalf("a list at the top: %v", err)
	}
}

// sseOrigin answers a GET with an SSE stream that replays a tools/list
// answer and a notification, as a resumed stream does.
func sseOrigin(events ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		for _, e := range events {
			io.WriteString(w, e)
			w.(http.Flusher).Flush()
		}
	})
}

func TestEnforceGETStream(t *testing.T) {
	ts := toolrule.ToolSet{{Deny: []toolrule.Glob{{Text: "delete_*", Where: "p:1"}}}}
	list := "id: 7\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[{\"name\":\"delete_all\",\"inputSchema\":{}},{\"name\":\"echo\",\"inputSchema\":{}}]}}\n\n"
	note := ": keep-alive\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n"
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/mcp", nil)
	d := Enforce(rec, req, ts, sseOrigin(list[:30], list[30:], note))
	body := rec.Body.String()
	if strings.Contains(body, "delete_all") || !strings.Contains(body, `"name":"echo"`) || d.Hidden != 1 {
		t.Fatalf("the replayed tools/list was not filtered (hidden %d):\n%s", d.Hidden, body)
	}
	if !strings.HasPrefix(body, "id: 7\nevent: message\ndata: {") || !strings.HasSuffix(body, note) {
		t.Fatalf("the stream's other fields and events must pass as sent:\n%q", body)
	}
}

// An SSE answer is written event by event: the first event reaches the
// client while the app still holds the stream open.
func TestEnforceSSEUnbuffered(t *testing.T) {
	ts := toolrule.ToolSet{{Deny: []toolrule.Glob{{Text: "x"}}}}
	release := make(chan struct{})
	first := make(chan string, 1)
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[]}}\n\n")
		w.(http.Flusher).Flush()
		<-release
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Enforce(w, r, ts, origin)
	}))
	defer srv.Close()
	go func() {
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		if err != nil {
			first <- err.Error()
			return
		}
		defer resp.Body.Close()
		buf := make([]byte, 256)
		n, _ := resp.Body.Read(buf)
		first <- string(buf[:n])
	}()
	got := <-first
	close(release)
	if !strings.Contains(got, `"tools":[]`) {
		t.Fatalf("first event: %q", got)
	}
}

func FuzzEnforce(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_x"}}`), []byte("data: {\"id\":1,\"result\":{\"tools\":[{\"name\":\"a\"}]}}\n\n"))
	f.Add([]byte(`[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"id":2,"method":"tools/call","params":{"name":"ok"}}]`), []byte(`{"id":1,"result":{"tools":[{"name":"delete_a"},{"name":"b"}]}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ok","Name":"delete_x"}}`), []byte(`{}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"delete_x"}}`), []byte(`{}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ok"},"params":{"name":"delete_x"}}`), []byte(`{}`))
	ts := toolrule.ToolSet{{Deny: []toolrule.Glob{{Text: "delete_*"}}}}
	f.Fuzz(func(t *testing.T, body, answer []byte) {
		fuzzwatch.Run(t, fuzzwatch.Limits{}, func() {
			for _, ct := range []string{"text/event-stream", "application/json"} {
				var got []byte
				called := false
				origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					called = true
					got, _ = io.ReadAll(r.Body)
					w.Header().Set("Content-Type", ct)
					_, _ = w.Write(answer)
				})
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(string(body)))
				req.Header.Set("Content-Type", "application/json")
				Enforce(rec, req, ts, origin)
				// A body that calls a denied tool never reaches the app,
				// however the app reads it.
				if called {
					for _, read := range []func([]byte) []string{jsCalls, goCalls} {
						for _, name := range read(got) {
							if strings.HasPrefix(name, "delete_") {
								t.Fatalf("the app received %q, which calls %q", got, name)
							}
						}
					}
				}
			}
		})
	})
}

// The oracles of FuzzEnforce are two apps' readings of a body, written
// apart from the policy's reader. jsCalls reads as JSON.parse does: keys
// as written, the last of a repeated key winning (encoding/json's maps do
// the same).
func jsCalls(body []byte) []string {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return nil
	}
	msgs, ok := v.([]any)
	if !ok {
		msgs = []any{v}
	}
	var names []string
	for _, m := range msgs {
		obj, _ := m.(map[string]any)
		params, _ := obj["params"].(map[string]any)
		if method, _ := obj["method"].(string); method == "tools/call" {
			if name, ok := params["name"].(string); ok {
				names = append(names, name)
			}
		}
	}
	return names
}

// goCalls reads as a Go server decoding into structs does: keys matched
// without case ("Method" is method), the last one winning.
func goCalls(body []byte) []string {
	type call struct {
		Method string
		Params struct{ Name string }
	}
	var batch []call
	if json.Unmarshal(body, &batch) != nil {
		var one call
		if json.Unmarshal(body, &one) != nil {
			return nil
		}
		batch = []call{one}
	}
	var names []string
	for _, c := range batch {
		if c.Method == "tools/call" {
			names = append(names, c.Params.Name)
		}
	}
	return names
}

// The oracles see what FuzzEnforce guards against: the readings differ
// where apps do.
func TestEnforceOracles(t *testing.T) {
	body := []byte(`[{"method":"tools/call","params":{"name":"a"}},{"Method":"tools/call","params":{"Name":"b","name":"c"}}]`)
	if got := strings.Join(jsCalls(body), ","); got != "a" {
		t.Errorf("jsCalls: %s", got)
	}
	if got := strings.Join(goCalls(body), ","); got != "a,c" {
		t.Errorf("goCalls: %s", got)
	}
}

// Keys the apps read differently are refused: a key repeated (JavaScript
// takes the last, other parsers the first) or differing from a JSON-RPC
// key only by case (encoding/json's struct decoding matches "Name" as
// "name", JavaScript does not).
func TestEnforceExactKeys(t *testing.T) {
	ts := toolrule.ToolSet{{Deny: []toolrule.Glob{{Text: "delete_*", Where: "p:1"}}}}
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_all","Name":"echo"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"delete_all"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","Method":"ping","params":{"name":"delete_all"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"delete_all"}}`,
	} {
		called := false
		origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true })
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		d := Enforce(rec, req, ts, origin)
		if called || rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "apps differ") {
			t.Errorf("%s reached the app or was not refused for its keys (decision %+v, %d %s)", body, d, rec.Code, rec.Body)
		}
	}
	// And a tools/list entry whose "Name" differs is judged by "name".
	f := newFilter(httptest.NewRecorder(), ts, nil, &Decision{})
	out, changed := f.filterJSON([]byte(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"delete_all","Name":"echo"}]}}`))
	if !changed || strings.Contains(string(out), "delete_all") {
		t.Fatalf("filtered: %s", out)
	}
}
