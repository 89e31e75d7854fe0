package mcpcheck

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// fixture is one server for a rule: a tool "w" bound to ui://w (unless
// its _meta says otherwise), the widget's HTML and its _meta on the read
// contents and on the resources/list entry.
type fixture struct {
	toolMeta mcp.Meta
	html     string
	readMeta mcp.Meta
	listMeta mcp.Meta
	// remote: the check reaches the server at a name that is not this
	// machine's (as through a tunnel), not at 127.0.0.1.
	remote bool
	// output and result make "w" declare that outputSchema and answer
	// that result; the check then calls it.
	output any
	result *mcp.CallToolResult
}

const page = `<!doctype html><html><head></head><body><div id="root"></div>%s</body></html>`

func htmlPage(body string) string { return strings.Replace(page, "%s", body, 1) }

func csp(lists map[string][]any) mcp.Meta {
	m := map[string]any{}
	for k, v := range lists {
		m[k] = v
	}
	return mcp.Meta{"ui": map[string]any{"csp": m}}
}

// check serves fx with the go-sdk server and returns the check's findings.
func (fx fixture) check(t *testing.T) []Finding {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "fixture", Version: "1"}, nil)
	meta := fx.toolMeta
	if meta == nil {
		meta = mcp.Meta{"ui": map[string]any{"resourceUri": "ui://w"}}
	}
	tool := &mcp.Tool{Name: "w", Description: "a widget", InputSchema: objectSchema, Meta: meta, OutputSchema: fx.output}
	s.AddTool(tool, func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if fx.result != nil {
			return fx.result, nil
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil
	})
	doc := fx.html
	if doc == "" {
		doc = htmlPage("")
	}
	readMeta := fx.readMeta
	if readMeta == nil && fx.listMeta == nil {
		readMeta = csp(nil)
	}
	s.AddResource(&mcp.Resource{URI: "ui://w", Name: "w", MIMEType: UIMIMEType, Meta: fx.listMeta},
		func(ctx context.Context, r *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: "ui://w", MIMEType: UIMIMEType, Text: doc, Meta: readMeta}}}, nil
		})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		&mcp.StreamableHTTPOptions{DisableLocalhostProtection: fx.remote}))
	t.Cleanup(srv.Close)
	opts := Options{URL: srv.URL + "/mcp", Timeout: 10 * time.Second}
	if fx.remote {
		addr := srv.Listener.Addr().String()
		_, port, _ := net.SplitHostPort(addr)
		opts.URL = "http://app.example.test:" + port + "/mcp"
		opts.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
	}
	if fx.output != nil || fx.result != nil {
		opts.Call = "w"
	}
	rep, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep.Findings
}

// Every rule on a bad fixture (reported) and a good one (not reported,
// and no error at all), each served by a real MCP server.
func TestRules(t *testing.T) {
	big := htmlPage("<p>" + strings.Repeat("x", 1<<20) + "</p>")
	for _, tc := range []struct {
		name      string
		rule      string
		bad, good fixture
	}{
		{"resourceUri not ui://", "APP001",
			fixture{toolMeta: mcp.Meta{"ui": map[string]any{"resourceUri": "https://example.com/w.html"}}},
			// An app-only helper a widget calls: no resourceUri at all.
			fixture{toolMeta: mcp.Meta{"ui": map[string]any{"visibility": []any{"app"}}}}},
		{"visibility a string", "APP004",
			fixture{toolMeta: mcp.Meta{"ui": map[string]any{"resourceUri": "ui://w", "visibility": "app"}}},
			fixture{toolMeta: mcp.Meta{"ui": map[string]any{"resourceUri": "ui://w", "visibility": []any{"app"}}}}},
		{"visibility empty", "APP004",
			fixture{toolMeta: mcp.Meta{"ui": map[string]any{"resourceUri": "ui://w", "visibility": []any{}}}},
			fixture{toolMeta: mcp.Meta{"ui": map[string]any{"resourceUri": "ui://w", "visibility": []any{"model", "app"}}}}},
		{"size is information", "APP007", fixture{html: big}, fixture{}},
		{"CSP entries", "APP008",
			fixture{readMeta: csp(map[string][]any{"resourceDomains": {"*", "https://cdn.example.com/lib/"}, "connectDomains": {"api.example.com"}})},
			// Wildcard subdomains are allowed.
			fixture{readMeta: csp(map[string][]any{"resourceDomains": {"https://*.openstreetmap.org"}, "connectDomains": {"wss://*.example.com"}})}},
		{"no CSP", "APP009",
			fixture{listMeta: mcp.Meta{"ui": map[string]any{"prefersBorder": true}}},
			// Declared on the resources/list entry only: hosts read it there.
			fixture{listMeta: csp(map[string][]any{"connectDomains": {"https://api.example.com"}})}},
		{"localhost through a tunnel", "APP010",
			fixture{remote: true, html: htmlPage(`<script type="module" src="http://localhost:4444/src/main.tsx"></script>`),
				readMeta: csp(map[string][]any{"resourceDomains": {"http://localhost:4444"}})},
			fixture{html: htmlPage(`<script type="module" src="http://localhost:4444/src/main.tsx"></script>`),
				readMeta: csp(map[string][]any{"resourceDomains": {"http://localhost:4444"}})}},
		{"localhost in the CSP only", "APP010",
			fixture{remote: true, readMeta: csp(map[string][]any{"connectDomains": {"http://127.0.0.1:8080"}})},
			fixture{remote: true}},
		{"csp on the tool", "APP011",
			fixture{toolMeta: mcp.Meta{"ui": map[string]any{"resourceUri": "ui://w", "csp": map[string]any{"connectDomains": []any{"https://a.example"}}}}},
			fixture{}},
		{"resourceUri a number", "APP011", fixture{toolMeta: mcp.Meta{"ui": map[string]any{"resourceUri": 7.0}}}, fixture{}},
		{"misspelt tool key", "APP011", fixture{toolMeta: mcp.Meta{"ui": map[string]any{"resourceUri": "ui://w", "visiblity": []any{"app"}}}}, fixture{}},
		{"unknown tool key", "APP012", fixture{toolMeta: mcp.Meta{"ui": map[string]any{"resourceUri": "ui://w", "colour": "red"}}}, fixture{}},
		{"misspelt CSP list", "APP013", fixture{readMeta: csp(map[string][]any{"connect_domains": {"https://api.example.com"}})},
			fixture{readMeta: csp(map[string][]any{"connectDomains": {"https://api.example.com"}})}},
		{"CSP list outside csp", "APP013", fixture{readMeta: mcp.Meta{"ui": map[string]any{"resourceDomain": []any{"https://cdn.example.com"}}}}, fixture{}},
		{"unknown permission", "APP013", fixture{readMeta: mcp.Meta{"ui": map[string]any{"permissions": map[string]any{"bluetooth": map[string]any{}}}}},
			fixture{readMeta: mcp.Meta{"ui": map[string]any{"csp": map[string]any{}, "permissions": map[string]any{"camera": map[string]any{}, "clipboardWrite": map[string]any{}}}}}},
		{"prefersBorder a string", "APP013", fixture{readMeta: mcp.Meta{"ui": map[string]any{"csp": map[string]any{}, "prefersBorder": "yes"}}},
			fixture{readMeta: mcp.Meta{"ui": map[string]any{"csp": map[string]any{}, "prefersBorder": false, "domain": "a1b2.claudemcpcontent.com"}}}},
		{"domain a number", "APP013", fixture{readMeta: mcp.Meta{"ui": map[string]any{"csp": map[string]any{}, "domain": 5.0}}}, fixture{}},
		{"only the deprecated key", "APP014", fixture{toolMeta: mcp.Meta{"ui/resourceUri": "ui://w"}},
			// registerAppTool of ext-apps sets both.
			fixture{toolMeta: mcp.Meta{"ui": map[string]any{"resourceUri": "ui://w"}, "ui/resourceUri": "ui://w"}}},
		{"script origin not listed", "APP015",
			fixture{html: htmlPage(`<script src="https://cdn.other.example/a.js"></script>`), readMeta: csp(map[string][]any{"resourceDomains": {"https://cdn.example.com"}})},
			fixture{html: htmlPage(`<script src="https://cdn.example.com/a.js"></script>`), readMeta: csp(map[string][]any{"resourceDomains": {"https://cdn.example.com"}})}},
		{"stylesheet, image and CSS url", "APP015",
			fixture{html: htmlPage(`<link rel="stylesheet" href="https://fonts.example.com/a.css"><style>body{background:url(https://img.example.com/b.png)}</style>`), readMeta: csp(nil)},
			fixture{html: htmlPage(`<link rel="stylesheet" href="https://fonts.example.com/a.css"><style>body{background:url("https://img.example.com/b.png")}</style>`),
				readMeta: csp(map[string][]any{"resourceDomains": {"https://fonts.example.com", "https://*.example.com"}})}},
		{"fetch and WebSocket", "APP015",
			fixture{html: htmlPage(`<script>fetch("https://api.example.com/v1"); new WebSocket("wss://live.example.com/s")</script>`),
				readMeta: csp(map[string][]any{"resourceDomains": {"https://api.example.com"}})},
			fixture{html: htmlPage(`<script>fetch("https://api.example.com/v1"); new WebSocket("wss://live.example.com/s")</script>`),
				readMeta: csp(map[string][]any{"connectDomains": {"https://api.example.com", "wss://live.example.com"}})}},
		{"iframe", "APP015",
			fixture{html: htmlPage(`<iframe src="https://www.youtube.com/embed/x"></iframe>`), readMeta: csp(map[string][]any{"resourceDomains": {"https://www.youtube.com"}})},
			fixture{html: htmlPage(`<iframe src="https://www.youtube.com/embed/x"></iframe>`), readMeta: csp(map[string][]any{"frameDomains": {"https://www.youtube.com"}})}},
		{"base href", "APP015",
			fixture{html: htmlPage(`<base href="https://cdn.example.com/w/"><script src="app.js"></script>`), readMeta: csp(map[string][]any{"resourceDomains": {"https://cdn.example.com"}})},
			fixture{html: htmlPage(`<base href="https://cdn.example.com/w/"><script src="app.js"></script>`),
				readMeta: csp(map[string][]any{"resourceDomains": {"https://cdn.example.com"}, "baseUriDomains": {"https://cdn.example.com"}})}},
		{"relative script without base", "APP016",
			fixture{html: htmlPage(`<script type="module" src="/assets/index-3f2a.js"></script>`)},
			fixture{html: htmlPage(`<script type="module">console.log("inline")</script><img src="data:image/png;base64,AAAA">`)}},
		{"plain http", "APP017",
			fixture{html: htmlPage(`<img src="http://img.example.com/a.png">`), readMeta: csp(map[string][]any{"resourceDomains": {"http://img.example.com"}})},
			fixture{html: htmlPage(`<img src="https://img.example.com/a.png">`), readMeta: csp(map[string][]any{"resourceDomains": {"https://img.example.com"}})}},
		{"mount element missing", "APP018",
			fixture{html: htmlPage(`<script type="module">createRoot(document.getElementById("app")).render(h(App))</script>`)},
			fixture{html: htmlPage(`<script type="module">createRoot(document.getElementById("root")).render(h(App))</script>`)}},
		{"Vue mount element missing", "APP018",
			fixture{html: htmlPage(`<script>createApp(App).mount("#app")</script>`)},
			fixture{html: htmlPage(`<script>createApp(App).mount("#root")</script>`)}},
		{"relative CSS url without base", "APP019",
			fixture{html: htmlPage(`<style>.c{background:url(images/check.svg)}</style>`)},
			fixture{html: htmlPage(`<style>.c{background:url(data:image/svg+xml;base64,AAAA)}</style>`)}},
		{"structuredContent against outputSchema", "CALL001",
			fixture{output: map[string]any{"type": "object", "properties": map[string]any{"n": map[string]any{"type": "integer"}}, "required": []any{"n"}},
				result: &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "n"}}, StructuredContent: map[string]any{"n": "three"}}},
			fixture{output: map[string]any{"type": "object", "properties": map[string]any{"n": map[string]any{"type": "integer"}}, "required": []any{"n"}},
				result: &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "n"}}, StructuredContent: map[string]any{"n": 3}}}},
		{"outputSchema without structuredContent", "CALL002",
			fixture{output: map[string]any{"type": "object"}, result: &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "n"}}}},
			fixture{output: map[string]any{"type": "object"}, result: &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "n"}}, StructuredContent: map[string]any{}}}},
		{"empty content", "CALL003",
			fixture{result: &mcp.CallToolResult{Content: []mcp.Content{}, StructuredContent: map[string]any{"n": 1}}},
			fixture{result: &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "1"}}, StructuredContent: map[string]any{"n": 1}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sev string
			for _, r := range Rules {
				if r.ID == tc.rule {
					sev = r.Severity
				}
			}
			found := false
			for _, f := range tc.bad.check(t) {
				if f.Rule == tc.rule {
					found = true
					if f.Severity != sev || f.Fix == "" || f.Message == "" {
						t.Errorf("finding %+v", f)
					}
				}
			}
			if !found {
				t.Errorf("bad fixture: no %s in %+v", tc.rule, tc.bad.check(t))
			}
			for _, f := range tc.good.check(t) {
				if f.Rule == tc.rule || f.Severity == SeverityError {
					t.Errorf("good fixture: %+v", f)
				}
			}
		})
	}
}
