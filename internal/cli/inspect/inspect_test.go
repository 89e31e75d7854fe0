package inspect

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/pomdev/pomdev/internal/cli/factory/factorytest"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/pomdev/pomdev/internal/mcpcheck"
)

func TestFlags(t *testing.T) {
	tests := []struct {
		name      string
		project   string
		args      []string
		wantURL   string
		wantHdr   map[string]string
		wantUsage bool
	}{
		{"url arg", "", []string{"http://h:1/mcp"}, "http://h:1/mcp", map[string]string{}, false},
		{"from processes", "processes:\n  - {name: widgets, command: x, port: 4444}\n  - {name: server, command: y, port: 8080}\n", nil, "http://127.0.0.1:8080/mcp", map[string]string{}, false},
		{"from inspect.url", "inspect:\n  url: http://x:9/mcp\n  headers: {X-A: b}\n", nil, "http://x:9/mcp", map[string]string{"X-A": "b"}, false},
		{"headers and token", "", []string{"http://h/mcp", "-H", "X-One: 1", "--header", "X-Two:2", "--token", "tok"}, "http://h/mcp",
			map[string]string{"X-One": "1", "X-Two": "2", "Authorization": "Bearer tok"}, false},
		{"no url", "", nil, "", nil, true},
		{"bad header", "", []string{"http://h/mcp", "-H", "nocolon"}, "", nil, true},
		{"args without call", "", []string{"http://h/mcp", "--args", "{}"}, "", nil, true},
		{"two urls", "", []string{"a", "b"}, "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := factorytest.New(t, tt.project, nil)
			var got *Options
			err := factorytest.Execute(f, NewCmdInspect(f, func(o *Options) error { got = o; return nil }), tt.args...)
			if tt.wantUsage {
				if exitcode.Code(err) != exitcode.Usage {
					t.Fatalf("want usage error, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.URL != tt.wantURL || len(got.Headers) != len(tt.wantHdr) {
				t.Fatalf("url %q headers %v", got.URL, got.Headers)
			}
			for k, v := range tt.wantHdr {
				if got.Headers[k] != v {
					t.Fatalf("header %s = %q, want %q", k, got.Headers[k], v)
				}
			}
		})
	}
}

func server(t *testing.T, mime string) string {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "fixture", Version: "1"}, nil)
	schema := map[string]any{"type": "object"}
	s.AddTool(&mcp.Tool{Name: "echo", Description: "Echo\nwhat it is given,\n\tin a card.", InputSchema: schema, Meta: mcp.Meta{"ui": map[string]any{"resourceUri": "ui://echo", "visibility": []any{"model", "app"}}}},
		func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil
		})
	s.AddTool(&mcp.Tool{Name: "quiet", InputSchema: schema}, func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{}, nil
	})
	s.AddResource(&mcp.Resource{URI: "ui://echo", Name: "echo", MIMEType: mime}, func(ctx context.Context, r *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: "ui://echo", MIMEType: mime, Text: "<!doctype html><html></html>",
			Meta: mcp.Meta{"ui": map[string]any{"csp": map[string]any{"connectDomains": []any{"https://api.example.com"}}, "prefersBorder": true}}}}}, nil
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

// --json prints an object when the check fails too: the error, its exit
// code and hint.
func TestJSONError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/mcp"
	srv.Close()
	ios, _, out, _ := iostreams.Test()
	err := Run(&Options{IO: ios, Ctx: context.Background(), URL: url, JSON: true, Timeout: 5 * time.Second})
	if exitcode.Code(err) != exitcode.Unreachable {
		t.Fatalf("code %d: %v", exitcode.Code(err), err)
	}
	var got struct {
		URL   string `json:"url"`
		Error struct {
			Message  string `json:"message"`
			ExitCode int    `json:"exitCode"`
			Hint     string `json:"hint"`
		} `json:"error"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if got.URL != url || got.Error.ExitCode != exitcode.Unreachable || !strings.Contains(got.Error.Message, "connection refused") || got.Error.Hint == "" {
		t.Fatalf("%+v", got)
	}
}

func TestRunExitCodesAndOutput(t *testing.T) {
	good := server(t, mcpcheck.UIMIMEType)
	bad := server(t, mcpcheck.LegacyMIME)
	tests := []struct {
		name     string
		url      string
		json     bool
		strict   bool
		wantCode int
		want     []string
	}{
		// "quiet" has no description: a warning, fine unless --strict.
		// A multi-line description stays on the tool's line; the widget's
		// effective CSP is shown.
		{"good text", good, false, false, 0, []string{"MCP server fixture 1", "TOOLS (2)", "ui://echo (ok) · model+app  Echo what it is given, in a card.\n",
			"WIDGET ui://echo", "resources/read", "connectDomains  https://api.example.com", "prefersBorder",
			"MCP004 quiet", "2 tools, 1 resource, 0 errors, 1 warning"}},
		{"strict", good, false, true, exitcode.Failure, []string{"MCP004"}},
		{"bad", bad, false, false, exitcode.Failure, []string{"APP005 ui://echo", "legacy", "ui://echo (invalid)"}},
		{"json", bad, true, false, exitcode.Failure, []string{`"findings": [`, `"rule": "APP005"`, `"mimeType": "text/html+skybridge"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, out, _ := iostreams.Test()
			err := Run(&Options{IO: ios, Ctx: context.Background(), URL: tt.url, JSON: tt.json, Strict: tt.strict, Timeout: 10 * time.Second})
			if code := exitcode.Code(err); code != tt.wantCode {
				t.Fatalf("code %d (%v), want %d\n%s", code, err, tt.wantCode, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if tt.json {
				var rep map[string]any
				if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
					t.Fatalf("not JSON: %v", err)
				}
				for _, k := range []string{"server", "protocol", "tools", "resources", "findings", "timings"} {
					if _, ok := rep[k]; !ok {
						t.Errorf("JSON lacks %q", k)
					}
				}
			}
		})
	}
}
