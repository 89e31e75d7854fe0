package mcpwire

import (
	"github.com/pomdev/pomdev/internal/fuzzwatch"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Call
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`, Call{"tools/call", "1", "echo"}},
		{`{"jsonrpc":"2.0","id":"a-1","method":"tools/list"}`, Call{"tools/list", "a-1", ""}},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, Call{"notifications/initialized", "", ""}},
		{`[{"jsonrpc":"2.0","id":7,"method":"ping"},{"id":8}]`, Call{"ping", "7", ""}},
		{`{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"ui://` + strings.Repeat("x", 100), Call{"resources/read", "3", ""}},
		{`not json`, Call{}},
		{``, Call{}},
	}
	for _, tt := range tests {
		if got := Parse([]byte(tt.in)); got != tt.want {
			t.Errorf("Parse(%.40q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestPeekRequestKeepsBody(t *testing.T) {
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("y", 10000) + `"}}}`
	req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	c := PeekRequest(req)
	if c.Method != "tools/call" || c.Tool != "echo" || c.ID != "1" {
		t.Fatalf("got %+v", c)
	}
	got, err := io.ReadAll(req.Body)
	if err != nil || string(got) != body {
		t.Fatalf("body changed: %d bytes, %v", len(got), err)
	}
	get := httptest.NewRequest(http.MethodGet, "/mcp", nil)
	if PeekRequest(get) != (Call{}) {
		t.Fatal("GET peeked")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`))
	f.Add([]byte(`[{"id":"x","method":"a"`))
	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzwatch.Run(t, fuzzwatch.Limits{}, func() { _ = Parse(in) })
	})
}
