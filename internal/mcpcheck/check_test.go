package mcpcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const goodHTML = "<!doctype html><html><head><title>echo</title></head><body><div id=root></div></body></html>"

var objectSchema = map[string]any{"type": "object", "properties": map[string]any{"text": map[string]any{"type": "string"}}}

// serve runs a go-sdk MCP server over Streamable HTTP on a loopback port.
func serve(t *testing.T, s *mcp.Server) string {
	t.Helper()
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

func uiResource(s *mcp.Server, uri, mime, html string, meta mcp.Meta, listed bool) {
	h := func(ctx context.Context, r *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: mime, Text: html, Meta: meta}}}, nil
	}
	if listed {
		s.AddResource(&mcp.Resource{URI: uri, Name: strings.TrimPrefix(uri, "ui://"), MIMEType: mime}, h)
	}
}

func echoTool(meta mcp.Meta, desc string) *mcp.Tool {
	return &mcp.Tool{Name: "echo", Description: desc, InputSchema: objectSchema, Meta: meta}
}

func echoHandler(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hi"}}}, nil
}

func goodServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "good", Version: "1.2.3"}, &mcp.ServerOptions{PageSize: 2})
	s.AddTool(echoTool(mcp.Meta{"ui": map[string]any{"resourceUri": "ui://echo", "visibility": []any{"model", "app"}}, "openai/outputTemplate": "ui://echo"}, "Echo text back"), echoHandler)
	for i := 0; i < 4; i++ {
		s.AddTool(&mcp.Tool{Name: fmt.Sprintf("plain_%d", i), Description: "a tool", InputSchema: objectSchema}, echoHandler)
	}
	s.AddTool(&mcp.Tool{Name: "fails", Description: "always fails", InputSchema: objectSchema},
		func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "boom"}}}, nil
		})
	uiResource(s, "ui://echo", UIMIMEType, goodHTML, mcp.Meta{"ui": map[string]any{"csp": map[string]any{"connectDomains": []any{"https://api.example.com"}}}}, true)
	s.AddPrompt(&mcp.Prompt{Name: "hello"}, func(ctx context.Context, r *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return &mcp.GetPromptResult{}, nil
	})
	return s
}

func TestGoodServer(t *testing.T) {
	url := serve(t, goodServer())
	rep, err := Run(context.Background(), Options{URL: url, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Server.Name != "good" || rep.Server.Version != "1.2.3" || rep.Protocol == "" {
		t.Fatalf("server %+v protocol %q", rep.Server, rep.Protocol)
	}
	if len(rep.Tools) != 6 {
		t.Fatalf("%d tools over pages of 2, want 6", len(rep.Tools))
	}
	var echo Tool
	for _, tl := range rep.Tools {
		if tl.Name == "echo" {
			echo = tl
		}
	}
	if echo.UI == nil || echo.UI.ResourceURI != "ui://echo" || echo.UI.Status != "ok" {
		t.Fatalf("echo UI %+v", echo.UI)
	}
	if len(rep.Resources) != 1 || rep.Resources[0].MIMEType != UIMIMEType || rep.Resources[0].Size != len(goodHTML) {
		t.Fatalf("resources %+v", rep.Resources)
	}
	if !slices.Equal(rep.Prompts, []string{"hello"}) {
		t.Fatalf("prompts %v", rep.Prompts)
	}
	if len(rep.Findings) != 0 {
		t.Fatalf("findings on a good server: %+v", rep.Findings)
	}
	var steps []string
	for _, s := range rep.Timings {
		steps = append(steps, s.Step)
	}
	for _, want := range []string{"handshake", "tools/list", "resources/list", "resources/read (UI)", "prompts/list"} {
		if !slices.Contains(steps, want) {
			t.Errorf("no %s timing in %v", want, steps)
		}
	}
}

func TestCall(t *testing.T) {
	url := serve(t, goodServer())
	rep, err := Run(context.Background(), Options{URL: url, Call: "echo", Args: []byte(`{"text":"hi"}`)})
	if err != nil || rep.Call == nil || rep.Call.IsError || !strings.Contains(string(rep.Call.Content), "hi") {
		t.Fatalf("%v %+v", err, rep.Call)
	}
	_, err = Run(context.Background(), Options{URL: url, Call: "fails"})
	var te *ToolError
	if !errors.As(err, &te) || te.Tool != "fails" || !errors.Is(err, ErrToolFailed) {
		t.Fatalf("failing tool: %v", err)
	}
	_, err = Run(context.Background(), Options{URL: url, Call: "no_such_tool"})
	if !errors.As(err, &te) || errors.Is(err, ErrToolFailed) {
		t.Fatalf("unknown tool: %v", err)
	}
	_, err = Run(context.Background(), Options{URL: url, Call: "echo", Args: []byte(`not json`)})
	var ae *ArgsError
	if !errors.As(err, &ae) {
		t.Fatalf("bad args: %v", err)
	}
}

// A server with MCP Apps mistakes: each rule it breaks is reported.
func TestBadServer(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "bad", Version: "0"}, nil)
	s.AddTool(&mcp.Tool{Name: "legacy", Description: "x", InputSchema: objectSchema, Meta: mcp.Meta{"ui": map[string]any{"resourceUri": "ui://legacy"}, "ui/resourceUri": "ui://other"}}, echoHandler)
	s.AddTool(&mcp.Tool{Name: "nodesc", InputSchema: objectSchema, Meta: mcp.Meta{"ui": map[string]any{"resourceUri": "ui://missing", "visibility": []any{"everyone"}}}}, echoHandler)
	s.AddTool(&mcp.Tool{Name: "http", Description: "x", InputSchema: objectSchema, Meta: mcp.Meta{"ui": map[string]any{"resourceUri": "https://example.com/w.html"}}}, echoHandler)
	s.AddTool(&mcp.Tool{Name: "local", Description: "x", InputSchema: objectSchema, Meta: mcp.Meta{"ui": map[string]any{"resourceUri": "ui://local"}}}, echoHandler)
	uiResource(s, "ui://legacy", LegacyMIME, "<div>fragment</div>", mcp.Meta{"ui": map[string]any{"csp": map[string]any{"resourceDomains": []any{"https://*.example.com", "not a url"}}}}, true)
	uiResource(s, "ui://local", UIMIMEType, `<!doctype html><html><script src="http://localhost:4444/src/main.tsx"></script></html>`, nil, true)
	url := serve(t, s)

	rep, err := Run(context.Background(), Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range rep.Findings {
		got[f.Rule+" "+f.Subject] = true
		if f.Fix == "" || f.Message == "" || f.Severity == "" {
			t.Errorf("incomplete finding %+v", f)
		}
	}
	for _, want := range []string{
		"APP003 legacy", "APP005 ui://legacy", "APP006 ui://legacy", "APP008 ui://legacy",
		"MCP004 nodesc", "APP004 nodesc", "APP002 nodesc", "APP001 http", "APP009 ui://local",
	} {
		if !got[want] {
			t.Errorf("missing finding %q; got %v", want, got)
		}
	}
	// The server is local: widgets loading from localhost are fine here.
	if got["APP010 ui://local"] {
		t.Error("APP010 reported for a local server")
	}
}

// Rules the SDK will not let a server break are checked on the lint alone.
func TestLintDirect(t *testing.T) {
	tools := []Tool{
		{Name: "bad name!", Description: "x", raw: &mcp.Tool{Name: "bad name!", InputSchema: objectSchema}},
		{Name: "dup", Description: "x", raw: &mcp.Tool{Name: "dup", InputSchema: objectSchema}},
		{Name: "dup", Description: "x", raw: &mcp.Tool{Name: "dup", InputSchema: map[string]any{"type": "string"}}},
		{Name: "big", Description: "x", raw: &mcp.Tool{Name: "big", InputSchema: objectSchema}, UI: &UI{ResourceURI: "ui://big"}},
	}
	contents := map[string]*mcp.ResourceContents{"ui://big": {URI: "ui://big", MIMEType: UIMIMEType,
		Text: "<!doctype html><html><img src='//127.0.0.1:4444/a.png'>" + strings.Repeat("x", 1<<20+1)}}
	got := map[string]bool{}
	for _, f := range Lint(LintInput{Tools: tools, Contents: contents}) {
		got[f.Rule+" "+f.Subject] = true
	}
	for _, want := range []string{"MCP001 bad name!", "MCP002 dup", "MCP003 dup", "APP007 ui://big", "APP010 ui://big"} {
		if !got[want] {
			t.Errorf("missing %q in %v", want, got)
		}
	}
}

// A 401 with RFC 9728 metadata: exit 3 naming the authorization server.
func TestAuthRequired(t *testing.T) {
	var base string
	mux := http.NewServeMux()
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer good" {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+base+`/.well-known/oauth-protected-resource/mcp"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	mux.HandleFunc("/.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"resource":"%s/mcp","authorization_servers":["https://auth.example.com"]}`, base)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	base = srv.URL
	_, err := Run(context.Background(), Options{URL: srv.URL + "/mcp", Timeout: 5 * time.Second})
	var ae *AuthError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "https://auth.example.com") {
		t.Fatalf("got %v", err)
	}
	// The header is sent: the server then answers something else (not 401).
	_, err = Run(context.Background(), Options{URL: srv.URL + "/mcp", Timeout: 5 * time.Second, Headers: map[string]string{"Authorization": "Bearer good"}})
	if !unreachable(err) {
		t.Fatalf("with a token: %v", err)
	}
}

// unreachable is an error reaching the server or one of its answers.
func unreachable(err error) bool {
	var ce *ConnectError
	var se *StepError
	return errors.As(err, &ce) || errors.As(err, &se)
}

// Servers that are not MCP servers: a clear error within the timeout,
// never a hang.
func TestGarbageServers(t *testing.T) {
	tests := []struct {
		name    string
		reason  ConnectReason
		handler http.HandlerFunc
	}{
		{"html page", ConnectNotMCP, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html><body>hello</body></html>")
		}},
		{"invalid json", ConnectNotMCP, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"jsonrpc":"2.0","id":`)
		}},
		{"never answers", ConnectTimeout, func(w http.ResponseWriter, r *http.Request) {
			// Read the request so the server notices the client leaving.
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		}},
		{"streams forever", ConnectTimeout, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			for {
				if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}},
		{"huge body", ConnectNotMCP, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			chunk := strings.Repeat("x", 1<<16)
			for i := 0; i < 1024; i++ {
				if _, err := fmt.Fprint(w, chunk); err != nil {
					return
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			start := time.Now()
			_, err := Run(context.Background(), Options{URL: srv.URL + "/mcp", Timeout: 2 * time.Second})
			var ce *ConnectError
			if !errors.As(err, &ce) || ce.Reason != tt.reason {
				t.Fatalf("got %v", err)
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
		})
	}
	// Nothing listening.
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	var ce *ConnectError
	if _, err := Run(context.Background(), Options{URL: srv.URL + "/mcp"}); !errors.As(err, &ce) || ce.Reason != ConnectNetwork {
		t.Fatalf("closed port: %v", err)
	}
}

// FuzzLint: arbitrary tool _meta and resource JSON never panics the lint,
// and every finding names a known rule with a fix.
func FuzzLint(f *testing.F) {
	f.Add([]byte(`{"ui":{"resourceUri":"ui://a","visibility":["model","x"]},"openai/outputTemplate":"ui://b"}`),
		[]byte(`{"uri":"ui://a","mimeType":"text/html;profile=mcp-app","text":"<!doctype html>","_meta":{"ui":{"csp":{"connectDomains":["*"]}}}}`))
	f.Add([]byte(`{"ui":"nope"}`), []byte(`{"uri":"ui://a","blob":"AAAA"}`))
	f.Add([]byte(`null`), []byte(`[]`))
	known := map[string]bool{}
	for _, r := range Rules {
		known[r.ID] = true
	}
	f.Fuzz(func(t *testing.T, metaJSON, resJSON []byte) {
		var meta mcp.Meta
		_ = json.Unmarshal(metaJSON, &meta)
		tool := &mcp.Tool{Name: "t", InputSchema: map[string]any{"type": "object"}, Meta: meta}
		var rc mcp.ResourceContents
		_ = json.Unmarshal(resJSON, &rc)
		ui := uiBinding(tool)
		contents := map[string]*mcp.ResourceContents{}
		listed := map[string]map[string]any{}
		if ui != nil {
			contents[ui.ResourceURI] = &rc
			listed[ui.ResourceURI] = rc.Meta
		}
		for _, fd := range Lint(LintInput{Tools: []Tool{{Name: "t", raw: tool, UI: ui}}, Contents: contents, Listed: listed}) {
			if !known[fd.Rule] || fd.Fix == "" || fd.Severity == "" {
				t.Fatalf("bad finding %+v", fd)
			}
		}
	})
}

// Both protocol eras: a server of 2026-07-28 only (server/discover, no
// sessions: go-sdk serves that era with a stateless handler) and one of
// 2025-11-25 only (initialize, sessions).
func TestProtocolEras(t *testing.T) {
	for _, version := range []string{"2026-07-28", "2025-11-25"} {
		t.Run(version, func(t *testing.T) {
			s := mcp.NewServer(&mcp.Implementation{Name: "era", Version: "1"}, &mcp.ServerOptions{SupportedProtocolVersions: []string{version}})
			s.AddTool(echoTool(mcp.Meta{"ui": map[string]any{"resourceUri": "ui://echo"}}, "Echo"), echoHandler)
			uiResource(s, "ui://echo", UIMIMEType, goodHTML, mcp.Meta{"ui": map[string]any{"csp": map[string]any{}}}, true)
			srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
				&mcp.StreamableHTTPOptions{Stateless: version == "2026-07-28"}))
			t.Cleanup(srv.Close)
			rep, err := Run(context.Background(), Options{URL: srv.URL + "/mcp", Timeout: 10 * time.Second, Call: "echo"})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Protocol != version || len(rep.Tools) != 1 || rep.Tools[0].UI == nil || rep.Tools[0].UI.Status != "ok" || rep.Call == nil {
				t.Fatalf("protocol %q tools %+v call %+v findings %+v", rep.Protocol, rep.Tools, rep.Call, rep.Findings)
			}
		})
	}
}

// A URL under localhost (a pomdev relay's default domain) is checked:
// the name dials loopback, with no resolver asked.
func TestLocalhostURL(t *testing.T) {
	s := goodServer()
	// As behind a relay: the Host is the public name.
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		&mcp.StreamableHTTPOptions{DisableLocalhostProtection: true}))
	t.Cleanup(srv.Close)
	url := strings.Replace(srv.URL, "127.0.0.1", "brave-otter-042.localhost", 1) + "/mcp"
	rep, err := Run(context.Background(), Options{URL: url, Timeout: 10 * time.Second})
	if err != nil || rep.Server.Name != "good" {
		t.Fatalf("%v %+v", err, rep)
	}
}
