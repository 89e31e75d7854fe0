package preview

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/pomdev/pomdev/internal/mcpcheck"
	"github.com/pomdev/pomdev/internal/peertest"
	"golang.org/x/time/rate"
)

// widgetJS speaks the MCP Apps protocol by hand (postMessage JSON-RPC):
// ui/initialize, then it shows the tool result and, when asked, calls a
// server tool through the host and shows the answer.
const widgetJS = `
var next = 1, pending = {};
function rpc(method, params) {
  var id = next++;
  parent.postMessage({ jsonrpc: "2.0", id: id, method: method, params: params }, "*");
  return new Promise(function (res) { pending[id] = res; });
}
addEventListener("message", function (e) {
  var m = e.data;
  if (m && m.id && pending[m.id]) { pending[m.id](m); delete pending[m.id]; return; }
  if (m && m.method === "ui/notifications/tool-result") {
    var t = (m.params.content || []).map(function (c) { return c.text; }).join(" ");
    document.getElementById("root").innerHTML = "<p id=result>result: " + t + "</p>";
    if (window.afterResult) window.afterResult();
  }
});
rpc("ui/initialize", { protocolVersion: "2026-01-26", appInfo: { name: "t", version: "1" }, appCapabilities: {} }).then(function (r) {
  window.hostContext = r.result && r.result.hostContext;
  document.body.style.background = window.hostContext.theme === "dark" ? "#000" : "#fff";
  document.body.style.color = window.hostContext.theme === "dark" ? "#fff" : "#000";
  parent.postMessage({ jsonrpc: "2.0", method: "ui/notifications/initialized", params: {} }, "*");
});
`

func page(body string, head ...string) string {
	return "<!doctype html><html><head>" + strings.Join(head, "") + "<script>" + widgetJS + "</script></head><body><div id=root></div>" + body + "</body></html>"
}

var schema = map[string]any{"type": "object", "properties": map[string]any{"text": map[string]any{"type": "string"}}}

// fixture is an MCP server (the official Go SDK) with one widget per
// case; assets is a loopback server a widget may load a script from.
func fixture(t *testing.T) (mcpURL, assets string) {
	t.Helper()
	version := &atomic.Int64{}
	version.Store(1)
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bump" {
			version.Add(1)
			return
		}
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `document.body.insertAdjacentHTML("beforeend", "<p id=asset>asset loaded</p>");`)
	}))
	t.Cleanup(as.Close)
	assets = strings.Replace(as.URL, "127.0.0.1", "localhost", 1)

	s := mcp.NewServer(&mcp.Implementation{Name: "fixture", Version: "1"}, nil)
	widget := func(name, html string, csp map[string]any) {
		uri := "ui://fixture/" + name + ".html"
		s.AddTool(&mcp.Tool{Name: name, Description: name, InputSchema: schema, Meta: mcp.Meta{"ui": map[string]any{"resourceUri": uri}}},
			func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				var args struct{ Text string }
				_ = json.Unmarshal(r.Params.Arguments, &args)
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + " says " + args.Text}}}, nil
			})
		meta := mcp.Meta{}
		if csp != nil {
			meta["ui"] = map[string]any{"csp": csp}
		}
		if name == "domain" {
			meta["ui"] = map[string]any{"domain": "a904794854a047f6.claudemcpcontent.com"}
		}
		s.AddResource(&mcp.Resource{URI: uri, Name: name, MIMEType: mcpcheck.UIMIMEType},
			func(ctx context.Context, r *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
				return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: mcpcheck.UIMIMEType, Text: html, Meta: meta}}}, nil
			})
	}
	widget("good", page(""), nil)
	// A script from an origin its CSP does not declare.
	widget("foreign", page(`<script src="https://cdn.example.com/lib.js"></script>`), nil)
	// A script from the developer's machine, declared: ChatGPT-like loads
	// it, Claude-like refuses.
	widget("local", page(`<script src="`+assets+`/a.js"></script>`), map[string]any{"resourceDomains": []any{assets}})
	// Calls the app-only tool "shout" through the host once it has the result.
	widget("caller", page(`<script>window.afterResult = function () {
  rpc("tools/call", { name: "shout", arguments: { text: "hey" } }).then(function (r) {
    document.getElementById("root").insertAdjacentHTML("beforeend", "<p id=answer>answer: " + (r.result ? r.result.content[0].text : "error " + JSON.stringify(r.error)) + "</p>");
  });
};</script>`), nil)
	// Changes when the assets server's /bump is fetched (live reload).
	s.AddTool(&mcp.Tool{Name: "live", Description: "live", InputSchema: schema, Meta: mcp.Meta{"ui": map[string]any{"resourceUri": "ui://fixture/live.html"}}},
		func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var args struct{ Text string }
			_ = json.Unmarshal(r.Params.Arguments, &args)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "live says " + args.Text}}}, nil
		})
	s.AddResource(&mcp.Resource{URI: "ui://fixture/live.html", Name: "live", MIMEType: mcpcheck.UIMIMEType},
		func(ctx context.Context, r *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			html := page(fmt.Sprintf("<p id=version>v%d</p>", version.Load()))
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: "ui://fixture/live.html", MIMEType: mcpcheck.UIMIMEType, Text: html}}}, nil
		})
	// A dedicated origin (_meta.ui.domain): the widget shows where it runs.
	widget("domain", page(`<script>document.addEventListener("DOMContentLoaded", function () { document.body.insertAdjacentHTML("beforeend", "<p id=origin>origin " + self.origin + "</p>"); });</script>`), nil)
	widget("empty", "<!doctype html><html><head></head><body><div id=root></div></body></html>", nil)
	widget("throws", page(`<script>throw new Error("widget exploded")</script>`), nil)
	widget("logs", page(`<script>console.error("something is off")</script>`), nil)
	s.AddTool(&mcp.Tool{Name: "whoami", Description: "the client's name", InputSchema: schema},
		func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: r.Session.InitializeParams().ClientInfo.Name}}}, nil
		})
	s.AddTool(&mcp.Tool{Name: "shout", Description: "app only", InputSchema: schema, Meta: mcp.Meta{"ui": map[string]any{"visibility": []any{"app"}}}},
		func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var args struct{ Text string }
			_ = json.Unmarshal(r.Params.Arguments, &args)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.ToUpper(args.Text) + "!"}}}, nil
		})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp", assets
}

func start(t *testing.T, url string) *Server {
	t.Helper()
	s, err := Start(context.Background(), Options{MCP: mcpcheck.Options{URL: url}, Poll: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func chromium(t *testing.T) {
	t.Helper()
	if _, err := FindBrowser(""); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is required in CI")
		}
		t.Skip(err)
	}
}

func problems(r *CheckResult) string {
	var b strings.Builder
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "%s: %s (%s)\n", p.Kind, p.Message, p.Hint)
	}
	return b.String()
}

// TestCheck renders each fixture widget in headless Chromium through the
// real page and bridge, and checks what the page reported.
func TestCheck(t *testing.T) {
	chromium(t)
	mcpURL, assets := fixture(t)
	s := start(t, mcpURL)
	ctx := context.Background()
	check := func(t *testing.T, o CheckOptions) *CheckResult {
		t.Helper()
		if o.Args == nil {
			o.Args = json.RawMessage(`{"text":"hello"}`)
		}
		r, err := s.Check(ctx, o)
		if err != nil {
			t.Fatalf("check %s: %v", o.Tool, err)
		}
		if r.Done == nil {
			t.Fatalf("check %s: the page never finished; reports %+v", o.Tool, r.Reports)
		}
		return r
	}

	t.Run("good", func(t *testing.T) {
		r := check(t, CheckOptions{Tool: "good"})
		if !r.OK() {
			t.Fatalf("good widget: %+v\n%s", r.Done, problems(r))
		}
		if !strings.Contains(r.Done.Text, "result: good says hello") {
			t.Fatalf("the widget did not show the tool result: %q", r.Done.Text)
		}
	})
	t.Run("foreign script", func(t *testing.T) {
		r := check(t, CheckOptions{Tool: "foreign"})
		if r.OK() || len(r.Problems) == 0 || r.Problems[0].Kind != "csp" || r.Problems[0].Blocked != "https://cdn.example.com/lib.js" {
			t.Fatalf("want a CSP violation for the foreign script: %s", problems(r))
		}
		if !strings.Contains(r.Problems[0].Hint, "resourceDomains") {
			t.Fatalf("hint: %q", r.Problems[0].Hint)
		}
	})
	t.Run("localhost asset chatgpt", func(t *testing.T) {
		r := check(t, CheckOptions{Tool: "local", Profile: "chatgpt"})
		if !r.OK() || !strings.Contains(r.Done.Text, "asset loaded") {
			t.Fatalf("ChatGPT-like must load the declared localhost script: %q\n%s", r.Done.Text, problems(r))
		}
	})
	t.Run("localhost asset claude", func(t *testing.T) {
		r := check(t, CheckOptions{Tool: "local", Profile: "claude"})
		if r.OK() || strings.Contains(r.Done.Text, "asset loaded") {
			t.Fatalf("Claude-like must refuse the localhost script: %q", r.Done.Text)
		}
		var csp, dropped bool
		for _, p := range r.Problems {
			csp = csp || p.Kind == "csp" && strings.HasPrefix(p.Blocked, assets) && strings.Contains(p.Hint, "--inline")
			dropped = dropped || p.Kind == "host" && strings.Contains(p.Message, assets) && strings.Contains(p.Hint, "--inline")
		}
		if !csp || !dropped {
			t.Fatalf("want the dropped origin and the violation, both suggesting --inline:\n%s", problems(r))
		}
	})
	t.Run("callServerTool", func(t *testing.T) {
		r := check(t, CheckOptions{Tool: "caller"})
		if !r.OK() || !strings.Contains(r.Done.Text, "answer: HEY!") {
			t.Fatalf("the widget's tools/call through the host: %q\n%s", r.Done.Text, problems(r))
		}
	})
	t.Run("dedicated origin", func(t *testing.T) {
		r := check(t, CheckOptions{Tool: "domain"})
		_, port, _ := net.SplitHostPort(s.sandboxLn.Addr().String())
		want := "origin http://a904794854a047f6-claudemcpcontent-com.localhost:" + port
		if !r.OK() || !strings.Contains(r.Done.Text, want) {
			t.Fatalf("want %q: %+v\n%s\n%+v", want, r.Done, problems(r), r.Reports)
		}
		r = check(t, CheckOptions{Tool: "good"})
		if !r.OK() {
			t.Fatal(problems(r))
		}
	})
	t.Run("empty", func(t *testing.T) {
		r := check(t, CheckOptions{Tool: "empty", Wait: time.Second})
		if r.OK() || r.Done.Mounted {
			t.Fatalf("an empty widget must fail: %+v", r.Done)
		}
	})
	t.Run("throws", func(t *testing.T) {
		r := check(t, CheckOptions{Tool: "throws"})
		if r.OK() || !strings.Contains(problems(r), "widget exploded") {
			t.Fatalf("an uncaught exception must fail: %s", problems(r))
		}
	})
	t.Run("console error", func(t *testing.T) {
		r := check(t, CheckOptions{Tool: "logs"})
		if r.OK() || !strings.Contains(problems(r), "console: something is off") {
			t.Fatalf("console.error must fail: %s", problems(r))
		}
	})
	t.Run("no such tool", func(t *testing.T) {
		r := check(t, CheckOptions{Tool: "nope"})
		if r.OK() || !strings.Contains(problems(r), `no tool "nope"`) {
			t.Fatalf("%s", problems(r))
		}
	})
}

// TestCheckLeavesNoFiles: a check removes the browser's profile and the
// files the browser itself puts in the temporary directory (its
// singleton socket's directory), with and without a screenshot.
func TestCheckLeavesNoFiles(t *testing.T) {
	chromium(t)
	mcpURL, _ := fixture(t)
	s := start(t, mcpURL)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	out := filepath.Join(t.TempDir(), "shot.png")
	for _, shot := range []string{"", out} {
		r, err := s.Check(context.Background(), CheckOptions{Tool: "good", Args: json.RawMessage(`{"text":"hi"}`), Screenshot: shot})
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() {
			t.Fatalf("%+v %s", r.Done, problems(r))
		}
		left, err := os.ReadDir(tmp)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		if len(names) > 0 {
			t.Fatalf("screenshot %q: left in the temporary directory: %v", shot, names)
		}
	}
}

// TestScreenshotThemes: the widget area is not blank, and the dark theme
// reaches the widget (its background follows hostContext.theme).
func TestScreenshotThemes(t *testing.T) {
	chromium(t)
	mcpURL, _ := fixture(t)
	s := start(t, mcpURL)
	dir := t.TempDir()
	for _, theme := range []string{"light", "dark"} {
		out := filepath.Join(dir, theme+".png")
		r, err := s.Check(context.Background(), CheckOptions{Tool: "good", Args: json.RawMessage(`{"text":"hi"}`), Theme: theme, Screenshot: out, Width: 640, Height: 400})
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() {
			t.Fatalf("%s: %+v %s", theme, r.Done, problems(r))
		}
		dark, light, colors := shades(t, out)
		t.Logf("%s: %d dark, %d light pixels, %d colours", theme, dark, light, colors)
		if colors < 3 {
			t.Fatalf("%s: the screenshot is blank (%d colours)", theme, colors)
		}
		// The background follows the theme, and the text (the other
		// shade) is there: the widget area is not blank.
		if theme == "dark" && (dark < light || light < 50) || theme == "light" && (light < dark || dark < 50) {
			t.Fatalf("%s theme: %d dark pixels, %d light", theme, dark, light)
		}
	}
}

func shades(t *testing.T, path string) (dark, light, colors int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
			if (r+g+bl)/3 < 0x4000 {
				dark++
			} else if (r+g+bl)/3 > 0xc000 {
				light++
			}
		}
	}
	return dark, light, len(seen)
}

// TestAPIRefusals: the API answers only its own page: the token in the
// path, the listener's own Host (no DNS rebinding) and same-origin JSON
// for every request that acts.
func TestAPIRefusals(t *testing.T) {
	mcpURL, _ := fixture(t)
	s := start(t, mcpURL)
	base := s.URL()
	_, sandboxPort, _ := net.SplitHostPort(s.sandboxLn.Addr().String())
	call := `{"name":"good","arguments":{"text":"x"}}`
	cases := []struct {
		name    string
		method  string
		url     string
		body    string
		headers map[string]string
		want    int
	}{
		{"own page", "POST", base + "api/call", call, map[string]string{"Content-Type": "application/json", "Origin": s.hostOrigin(), "Sec-Fetch-Site": "same-origin"}, 200},
		{"no token", "POST", strings.Replace(base, s.token, "x", 1) + "api/call", call, map[string]string{"Content-Type": "application/json"}, 404},
		{"other origin", "POST", base + "api/call", call, map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example"}, 403},
		{"cross-site fetch", "POST", base + "api/call", call, map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403},
		{"form post", "POST", base + "api/call", call, map[string]string{"Content-Type": "text/plain"}, 403},
		{"rebound host", "GET", base + "api/server", "", map[string]string{"Host": "evil.example:80"}, 421},
		{"sandbox without policy", "GET", s.sandboxOrigin() + "/s/" + s.sandboxToken + "/nope/", "", nil, 404},
		{"sandbox wrong token", "GET", s.sandboxOrigin() + "/s/x/sandbox.js", "", nil, 404},
		{"sandbox of a domain", "GET", s.sandboxOrigin() + "/s/" + s.sandboxToken + "/sandbox.js", "", map[string]string{"Host": "app-example-com.localhost:" + sandboxPort}, 200},
		{"sandbox, rebound host", "GET", s.sandboxOrigin() + "/s/" + s.sandboxToken + "/sandbox.js", "", map[string]string{"Host": "a.b.localhost:" + sandboxPort}, 421},
		{"sandbox, other port", "GET", s.sandboxOrigin() + "/s/" + s.sandboxToken + "/sandbox.js", "", map[string]string{"Host": "app.localhost:1"}, 421},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, c.url, strings.NewReader(c.body))
		for k, v := range c.headers {
			if k == "Host" {
				req.Host = v
				continue
			}
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
}

// TestSandboxPolicy: the sandbox page carries the policy the server built
// for the profile, framable by the page only.
func TestSandboxPolicy(t *testing.T) {
	mcpURL, _ := fixture(t)
	s := start(t, mcpURL)
	body := `{"profile":"claude","csp":{"resourceDomains":["https://cdn.example.com","http://localhost:4444","'unsafe-hashes'"],"connectDomains":["wss://rt.example.com"]}}`
	req, _ := http.NewRequest("POST", s.URL()+"api/sandbox", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sb struct {
		URL              string
		Refused, Dropped []string
	}
	json.NewDecoder(resp.Body).Decode(&sb)
	resp.Body.Close()
	if fmt.Sprint(sb.Dropped) != "[http://localhost:4444]" || fmt.Sprint(sb.Refused) != "['unsafe-hashes']" {
		t.Fatalf("dropped %v refused %v", sb.Dropped, sb.Refused)
	}
	resp, err = http.Get(sb.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self' 'unsafe-inline' 'unsafe-eval' blob: data: https://cdn.example.com;", "connect-src wss://rt.example.com;", "frame-src 'none'", "frame-ancestors 'self' " + s.hostOrigin()} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP lacks %q: %s", want, csp)
		}
	}
	if strings.Contains(csp, "localhost") || strings.Contains(csp, "unsafe-hashes") {
		t.Errorf("CSP kept a dropped or refused source: %s", csp)
	}
}

func TestSources(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"https://cdn.example.com", true},
		{"https://*.example.com", true},
		{"http://localhost:4444/", true},
		{"wss://rt.example.com:8443", true},
		{"https://cdn.example.com/path", false},
		{"https://a.com; script-src *", false},
		{"'unsafe-eval'", false},
		{"*", false},
		{"https://*", false},
		{"https://a.*.com", false},
		{"javascript://x", false},
		{"data:", false},
		{"https://user@a.com", false},
		{"", false},
	} {
		if _, ok := source(c.in); ok != c.ok {
			t.Errorf("source(%q) = %v, want %v", c.in, ok, c.ok)
		}
	}
}

// TestInteractive: a person's use of the page in headless Chromium
// (puppeteer-core): the tool list, the form from inputSchema, Call, the
// widget showing the result, a theme switch reaching the widget as
// ui/notifications/host-context-changed, the message log, and live reload
// when the widget changes on the server.
func TestInteractive(t *testing.T) {
	chromium(t)
	pp, node := os.Getenv("POMDEV_TEST_PUPPETEER"), os.Getenv("POMDEV_TEST_NODE22")
	if pp == "" || node == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("POMDEV_TEST_PUPPETEER and POMDEV_TEST_NODE22 are required in CI")
		}
		t.Skip("POMDEV_TEST_PUPPETEER / POMDEV_TEST_NODE22 missing")
	}
	browser, _ := FindBrowser("")
	mcpURL, assets := fixture(t)
	s, err := Start(context.Background(), Options{MCP: mcpcheck.Options{URL: mcpURL}, Poll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "testdata/interactive.mjs", pp, browser, s.URL(), "live", "typed", assets+"/bump").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got struct {
		Tools                                    []string
		JSON, Result, ThemeBefore, Error         string
		Log, Problems                            []string
		VersionBefore, VersionAfter, ResultAfter string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got.Error != "" {
		t.Fatalf("in the page: %s\n%+v", got.Error, got)
	}
	t.Logf("%+v", got)
	if !slices.Contains(got.Tools, "good") || !slices.Contains(got.Tools, "shout") {
		t.Errorf("tools listed: %v", got.Tools)
	}
	if got.JSON != "{\n  \"text\": \"typed\"\n}" {
		t.Errorf("the form's JSON: %q", got.JSON)
	}
	if got.Result != "result: live says typed" || got.ThemeBefore != "light" {
		t.Errorf("widget: %q, theme %q", got.Result, got.ThemeBefore)
	}
	want := []string{"widget → hostui/initialize", "host → widgetresult of ui/initialize", "host → widgetui/notifications/tool-input", "host → widgetui/notifications/tool-result", "host → widgetui/notifications/host-context-changed"}
	i := 0
	for _, l := range got.Log {
		if i < len(want) && l == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("message log lacks %q in order: %q", want[i], got.Log)
	}
	if len(got.Problems) != 0 {
		t.Errorf("problems: %q", got.Problems)
	}
	if got.VersionBefore != "v1" || got.VersionAfter != "v2" || got.ResultAfter != "result: live says typed" {
		t.Errorf("live reload: %s → %s, result %q", got.VersionBefore, got.VersionAfter, got.ResultAfter)
	}
}

// TestExtAppsBasic: the official ext-apps examples (npm) render in the
// preview, in both profiles, with no problem: their widgets use the App
// class of @modelcontextprotocol/ext-apps against the official AppBridge.
func TestExtAppsBasic(t *testing.T) {
	chromium(t)
	dir := peertest.Env(t, "POMDEV_TEST_EXT_APPS", "npm install the @modelcontextprotocol/server-* examples of ext-apps")
	for _, name := range []string{"server-basic-react", "server-basic-vanillajs"} {
		t.Run(name, func(t *testing.T) {
			s := start(t, peertest.StartPackage(t, filepath.Join(dir, name)))
			for _, profile := range []string{"chatgpt", "claude"} {
				r, err := s.Check(context.Background(), CheckOptions{Tool: "get-time", Args: json.RawMessage(`{}`), Profile: profile})
				if err != nil {
					t.Fatal(err)
				}
				// The time of the tool result, shown by the widget.
				if !r.OK() || !regexp.MustCompile(`Server Time:\s*\d{4}-\d\d-\d\dT\d\d:\d\d`).MatchString(r.Done.Text) {
					t.Fatalf("%s: %+v\n%s", profile, r.Done, problems(r))
				}
			}
		})
	}
}

// TestReportFlood: a widget that reports in a loop reaches the terminal
// in a bounded burst, then a count of what was not shown; everything is
// kept (up to maxReports) for the check.
func TestReportFlood(t *testing.T) {
	var shown []Report
	s := &Server{opts: Options{OnReport: func(r Report) { shown = append(shown, r) }}, shown: rate.NewLimiter(0, 40)}
	for i := 0; i < 100; i++ {
		s.addReport(Report{Kind: "console", Message: fmt.Sprint(i)})
	}
	if len(shown) != 40 || len(s.Reports()) != 100 {
		t.Fatalf("shown %d, kept %d", len(shown), len(s.Reports()))
	}
	s.shown = rate.NewLimiter(rate.Inf, 1)
	s.addReport(Report{Kind: "console", Message: "after"})
	if n := len(shown); n != 42 || shown[40].Kind != "dropped" || !strings.HasPrefix(shown[40].Message, "60 more reports") || shown[41].Message != "after" {
		t.Fatalf("after the flood: %+v", shown[40:])
	}
}

// events opens the page's event stream (as its EventSource does) for at
// most d and returns it after its first comment line.
func events(t *testing.T, s *Server, d time.Duration) *bufio.Reader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL()+"api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	if line, _ := r.ReadString('\n'); line != ": preview\n" {
		t.Fatalf("first line %q", line)
	}
	return r
}

// TestReload: Reload (pomdev up calls it when the server is ready again)
// reaches every open page as a server-sent "reload" event.
func TestReload(t *testing.T) {
	mcpURL, _ := fixture(t)
	s := start(t, mcpURL)
	r := events(t, s, 10*time.Second)
	s.Reload("server ready")
	var got []string
	for len(got) < 2 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%v after %q", err, got)
		}
		if line = strings.TrimSpace(line); line != "" {
			got = append(got, line)
		}
	}
	if got[0] != "event: reload" || got[1] != `data: "server ready"` {
		t.Fatalf("got %q", got)
	}
}

// TestServerBack: a page opened while the server is down is told when it
// answers again (it then loads the tools).
func TestServerBack(t *testing.T) {
	mcpURL, _ := fixture(t)
	var up atomic.Bool
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		target, _ := url.Parse(mcpURL)
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	defer proxy.Close()
	s, err := Start(context.Background(), Options{MCP: mcpcheck.Options{URL: proxy.URL + "/mcp"}, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := events(t, s, 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.Tools(ctx); err == nil {
		t.Fatal("tools from a server that is down")
	}
	up.Store(true)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("no notice that the server is back: %v", err)
		}
		if line == "data: \"server back\"\n" {
			break
		}
	}
	if tools, err := s.Tools(ctx); err != nil || len(tools) == 0 {
		t.Fatalf("after the notice: %v %v", tools, err)
	}
}

func TestDomainLabel(t *testing.T) {
	for in, want := range map[string]string{
		"a904794854a047f6.claudemcpcontent.com": "a904794854a047f6-claudemcpcontent-com",
		"WWW-Example-COM.oaiusercontent.com":    "www-example-com-oaiusercontent-com",
		"https://x.example/../y":                "https-x-example-y",
		"...":                                   "",
		strings.Repeat("a", 100):                strings.Repeat("a", 63),
	} {
		if got := domainLabel(in); got != want {
			t.Errorf("domainLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestClientName: servers see the preview as pomdev-preview.
func TestClientName(t *testing.T) {
	mcpURL, _ := fixture(t)
	s := start(t, mcpURL)
	req, _ := http.NewRequest("POST", s.URL()+"api/call", strings.NewReader(`{"name":"whoami"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct{ Content []struct{ Text string } }
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || len(res.Content) != 1 || res.Content[0].Text != "pomdev-preview" {
		t.Fatalf("%v %+v", err, res)
	}
}

// The sandbox of a render says what the profile's real host refuses about
// that widget beyond the specification (the host rules): Claude's wrong
// domain for the claude profile, as an error; Claude's domain given to
// ChatGPT for the chatgpt profile, as a warning; nothing for a good one.
func TestSandboxHostFindings(t *testing.T) {
	mcpURL, _ := fixture(t)
	s := start(t, mcpURL)
	hosts := func(profile, tool string) []mcpcheck.Finding {
		body := fmt.Sprintf(`{"profile":%q,"csp":{},"uri":"ui://fixture/%s.html","tool":%q}`, profile, tool, tool)
		req, _ := http.NewRequest("POST", s.URL()+"api/sandbox", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sb struct{ Hosts []mcpcheck.Finding }
		if err := json.NewDecoder(resp.Body).Decode(&sb); err != nil {
			t.Fatal(err)
		}
		return sb.Hosts
	}
	if h := hosts("claude", "domain"); len(h) != 1 || h[0].Rule != "HOST004" || h[0].Severity != mcpcheck.SeverityError {
		t.Fatalf("claude, a wrong domain: %+v", h)
	}
	if h := hosts("chatgpt", "domain"); len(h) != 1 || h[0].Rule != "HOST007" || h[0].Severity != mcpcheck.SeverityWarning {
		t.Fatalf("chatgpt, Claude's domain: %+v", h)
	}
	if h := hosts("claude", "good"); len(h) != 0 {
		t.Fatalf("claude, a good widget: %+v", h)
	}
}
