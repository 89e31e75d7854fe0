package mcpcheck

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Claude's widget domain for a known URL, against a value computed apart
// (printf 'https://example.com/mcp' | sha256sum | cut -c1-32).
func TestClaudeWidgetDomain(t *testing.T) {
	if got := ClaudeWidgetDomain("https://example.com/mcp"); got != "c3d80a4ed901ee05b21755a88273b4a4.claudemcpcontent.com" {
		t.Fatalf("got %s", got)
	}
}

func TestParseHosts(t *testing.T) {
	for in, want := range map[string]string{"all": "chatgpt,claude", "claude": "claude", "Claude,chatgpt,claude": "chatgpt,claude"} {
		got, err := ParseHosts(in)
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("ParseHosts(%q) = %v %v", in, got, err)
		}
	}
	if _, err := ParseHosts("gemini"); err == nil {
		t.Error("an unknown host was accepted")
	}
}

// hidesUIWithoutExtension strips _meta.ui from tools/list for a client
// that does not declare the MCP Apps extension, as some servers do.
func hidesUIWithoutExtension(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		res, err := next(ctx, method, req)
		if method != "tools/list" || err != nil {
			return res, err
		}
		ss, _ := req.GetSession().(*mcp.ServerSession)
		if ss == nil || ss.InitializeParams() == nil {
			return res, err
		}
		caps := ss.InitializeParams().Capabilities
		if caps != nil && caps.Extensions[AppsExtension] != nil {
			return res, err
		}
		lt := res.(*mcp.ListToolsResult)
		for _, tool := range lt.Tools {
			if tool.Name == "hidden" {
				delete(tool.Meta, "ui")
			}
		}
		return res, err
	}
}

// A server with each defect a host refuses, on a public-looking URL (the
// check's transport dials the test server for app.example): each is
// flagged, for its host only.
func TestHostRules(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "defects", Version: "1"}, nil)
	s.AddReceivingMiddleware(hidesUIWithoutExtension)
	ui := func(uri string, extra map[string]any) mcp.Meta {
		m := map[string]any{"resourceUri": uri}
		for k, v := range extra {
			m[k] = v
		}
		return mcp.Meta{"ui": m}
	}
	s.AddTool(&mcp.Tool{Name: "csp_on_tool", Description: "x", InputSchema: objectSchema,
		Meta: ui("ui://good", map[string]any{"csp": map[string]any{"connectDomains": []any{"https://api.example.com"}}})}, echoHandler)
	s.AddTool(&mcp.Tool{Name: "hidden", Description: "x", InputSchema: objectSchema, Meta: ui("ui://good", nil)}, echoHandler)
	s.AddTool(&mcp.Tool{Name: "template", Description: "x", InputSchema: objectSchema,
		Meta: mcp.Meta{"ui": map[string]any{"resourceUri": "ui://good"}, "openai/outputTemplate": "ui://other"}}, echoHandler)
	s.AddTool(&mcp.Tool{Name: "local", Description: "x", InputSchema: objectSchema, Meta: ui("ui://local", nil)}, echoHandler)
	s.AddTool(&mcp.Tool{Name: "frames", Description: "x", InputSchema: objectSchema, Meta: ui("ui://frames", nil)}, echoHandler)
	csp := func(m map[string]any) mcp.Meta { return mcp.Meta{"ui": m} }
	// The good one gives Claude's domain to Claude alone, as the
	// generated app does.
	s.AddResource(&mcp.Resource{URI: "ui://good", Name: "good", MIMEType: UIMIMEType}, func(ctx context.Context, r *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		ui := map[string]any{}
		if r.Extra != nil && strings.Contains(r.Extra.Header.Get("User-Agent"), "Claude") {
			ui["domain"] = ClaudeWidgetDomain("http://app.example/mcp")
		}
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: "ui://good", MIMEType: UIMIMEType, Text: goodHTML, Meta: mcp.Meta{"ui": ui}}}}, nil
	})
	uiResource(s, "ui://other", UIMIMEType, goodHTML, nil, true)
	uiResource(s, "ui://local", UIMIMEType, `<!doctype html><html><head><base href="http://localhost:4444/"></head><body><div id=root></div><script type="module" src="/src/main.tsx"></script><img src="http://192.168.1.5/logo.png"></body></html>`,
		csp(map[string]any{"csp": map[string]any{"resourceDomains": []any{"http://localhost:4444", "http://192.168.1.5"}}, "domain": "wrong.claudemcpcontent.com"}), true)
	uiResource(s, "ui://frames", UIMIMEType, goodHTML, csp(map[string]any{"csp": map[string]any{"frameDomains": []any{"https://frames.example"}, "resourceDomains": []any{"data:"}}}), true)
	// Reached as app.example: the SDK's DNS-rebinding guard is off.
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{DisableLocalhostProtection: true}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}}
	opts := Options{URL: "http://app.example/mcp", HTTPClient: hc}
	rep, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckHosts(context.Background(), opts, rep, Hosts); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{} // rule subject -> hosts
	for _, f := range rep.Findings {
		if f.Host == "" {
			continue
		}
		k := f.Rule + " " + f.Subject
		got[k] = append(got[k], f.Host)
		if f.Fix == "" || !strings.Contains(f.Message, "(") {
			t.Errorf("finding without its fix or source: %+v", f)
		}
	}
	for k, want := range map[string][]string{
		"HOST001 csp_on_tool": {"claude"},
		"HOST002 hidden":      {"claude"},
		"HOST003 ui://local":  {"chatgpt", "chatgpt", "chatgpt", "claude", "claude", "claude"}, // localhost:4444 (base, CSP), 192.168.1.5 (img, CSP)
		"HOST004 ui://local":  {"claude"},
		"HOST005 ui://frames": {"claude", "claude"}, // frameDomains, data:
		"HOST006 template":    {"chatgpt"},
		"HOST007 ui://local":  {"chatgpt"},
		"HOST008 ui://frames": {"claude"},
	} {
		g := got[k]
		slices.Sort(g)
		if k == "HOST003 ui://local" {
			// Both hosts, each origin once per host.
			if !slices.Contains(g, "chatgpt") || !slices.Contains(g, "claude") || len(g)%2 != 0 {
				t.Errorf("%s: hosts %v", k, g)
			}
			continue
		}
		if !slices.Equal(g, want) {
			t.Errorf("%s: hosts %v, want %v", k, g, want)
		}
		delete(got, k)
	}
	delete(got, "HOST003 ui://local")
	if len(got) > 0 {
		t.Errorf("unexpected host findings: %v", got)
	}
	// A good resource with Claude's right domain: nothing for Claude there.
	for _, f := range rep.Findings {
		if f.Subject == "ui://good" && f.Host != "" {
			t.Errorf("the good resource: %+v", f)
		}
	}
}
