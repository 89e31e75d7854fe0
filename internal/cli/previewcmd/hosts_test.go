package previewcmd

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/pomdev/pomdev/internal/mcpcheck"
)

// The check of a profile reports its host's rules: ChatGPT's for the
// ChatGPT-like profile, none of Claude's; a profile no rule knows, none.
func TestHostFindingsOfProfile(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "t", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "echo", Description: "x", InputSchema: map[string]any{"type": "object"},
		Meta: mcp.Meta{"ui": map[string]any{"resourceUri": "ui://echo", "csp": map[string]any{}}, "openai/outputTemplate": "ui://other"}},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) { return &mcp.CallToolResult{}, nil })
	s.AddResource(&mcp.Resource{URI: "ui://echo", Name: "echo", MIMEType: mcpcheck.UIMIMEType}, func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: "ui://echo", MIMEType: mcpcheck.UIMIMEType,
			Text: "<!doctype html><html><body><div id=root></div></body></html>"}}}, nil
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	defer srv.Close()
	mo := mcpcheck.Options{URL: srv.URL + "/mcp"}
	fs, errs := hostFindings(context.Background(), mo, "chatgpt")
	if errs != 1 || len(fs) != 1 || fs[0].Rule != "HOST006" || fs[0].Host != "chatgpt" {
		t.Fatalf("chatgpt: %d errors, %+v", errs, fs)
	}
	fs, _ = hostFindings(context.Background(), mo, "claude")
	if len(fs) != 1 || fs[0].Rule != "HOST001" {
		t.Fatalf("claude: %+v", fs)
	}
	if fs, errs := hostFindings(context.Background(), mo, "other"); len(fs)+errs != 0 {
		t.Fatalf("an unknown profile: %+v", fs)
	}
}
