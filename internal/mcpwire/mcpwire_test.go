package mcpwire

import (
	"encoding/json"
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
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`, Call{Method: "tools/call", ID: "1", Tool: "echo"}},
		{`{"jsonrpc":"2.0","id":"a-1","method":"tools/list"}`, Call{Method: "tools/list", ID: "a-1"}},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, Call{Method: "notifications/initialized"}},
		{`[{"jsonrpc":"2.0","id":7,"method":"ping"},{"id":8}]`, Call{Method: "ping", ID: "7"}},
		// Not whole, or not read alike by every app: nothing.
		{`{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"ui://` + strings.Repeat("x", 100), Call{}},
		{`{"method":"tools/call","params":{"name":"a"},"Params":{"name":"b"}}`, Call{}},
		{`not json`, Call{}},
		{``, Call{}},
	}
	for _, tt := range tests {
		if got := Parse([]byte(tt.in)); got != tt.want {
			t.Errorf("Parse(%.40q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

// ParseHead reads a cut-off message by Decode's rules as far as it goes,
// and marks what it read as partial.
func TestParseHead(t *testing.T) {
	pad := strings.Repeat("x", 100)
	for _, tt := range []struct {
		in   string
		want Call
	}{
		{`{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"ui://` + pad, Call{Method: "resources/read", ID: "3", Partial: true}},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"t":"` + pad, Call{Method: "tools/call", ID: "1", Tool: "echo", Partial: true}},
		{`[{"id":7,"method":"tools/call","params":{"name":"x"`, Call{Method: "tools/call", ID: "7", Tool: "x", Partial: true}},
		{`{"method":"tools/call","params":{"name":"a"},"Params":{"name":"b"},"x":"` + pad, Call{Partial: true}},
		{`{"method":"tools/call","params":{"name":"a","Name":"b","x":"` + pad, Call{Partial: true}},
		{`{"method":"tools/call","method":"ping","x":"` + pad, Call{Partial: true}},
		{`{"method":1,"x":"` + pad, Call{Partial: true}},
		{`{"id":1,"method":"tools/list","params":{"name":"n"},"x":"` + pad, Call{Method: "tools/list", ID: "1", Partial: true}},
	} {
		if got := ParseHead([]byte(tt.in)); got != tt.want {
			t.Errorf("ParseHead(%.60q) = %+v, want %+v", tt.in, got, tt.want)
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

// readings is how two apps read a message: JavaScript's JSON.parse (exact
// keys, the last repeated one wins) and encoding/json structs (keys
// matched without regard to case, the last one wins). ok is false when
// either cannot read it.
func readings(in []byte) (jsMethod, jsTool, goMethod, goTool string, ok bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(in, &m) != nil {
		return
	}
	var method string
	if json.Unmarshal(m["method"], &method) != nil {
		return
	}
	var params map[string]json.RawMessage
	_ = json.Unmarshal(m["params"], &params)
	_ = json.Unmarshal(params["name"], &jsTool)
	var s struct {
		Method *string `json:"method"`
		Params *struct {
			Name *string `json:"name"`
		} `json:"params"`
	}
	if json.Unmarshal(in, &s) != nil || s.Method == nil {
		return
	}
	goMethod = *s.Method
	if s.Params != nil && s.Params.Name != nil {
		goTool = *s.Params.Name
	}
	return method, jsTool, goMethod, goTool, true
}

// FuzzHeadAgrees: what Parse reads of a whole message, and what ParseHead
// reads of any head of a message the full reader accepts, is what both
// apps read of the whole message; never another method or tool.
func FuzzHeadAgrees(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":"` + strings.Repeat("x", 300) + `"}}}`))
	f.Add([]byte(`{"method":"tools/call","params":{"name":"harmless","arguments":{"p":"` + strings.Repeat("x", 300) + `"}},"params":{"name":"evil"}}`))
	f.Add([]byte(`{"method":"tools/call","params":{"name":"a"},"Params":{"name":"b"}}`))
	f.Add([]byte(`{"method":"tools/call","params":{"name":"a","Name":"b"}}`))
	f.Add([]byte(`{"method":"tools/call","params":{"nam\u0065":"a"}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzwatch.Run(t, fuzzwatch.Limits{}, func() {
			jsM, jsT, goM, goT, ok := readings(in)
			p := Parse(in)
			if p.Method != "" && (!ok || p.Method != jsM || p.Method != goM) {
				t.Fatalf("Parse: method %q, apps read %q and %q", p.Method, jsM, goM)
			}
			if p.Tool != "" && (p.Tool != jsT || p.Tool != goT) {
				t.Fatalf("Parse: tool %q, apps read %q and %q", p.Tool, jsT, goT)
			}
			if _, err := Decode(in); err != nil || !ok {
				return
			}
			for _, k := range []int{len(in) / 4, len(in) / 2, len(in) * 3 / 4, len(in) - 1} {
				if k <= 0 {
					continue
				}
				h := ParseHead(in[:k])
				if h.Method != "" && (h.Method != jsM || h.Method != goM) {
					t.Fatalf("ParseHead(%d bytes): method %q, apps read %q and %q", k, h.Method, jsM, goM)
				}
				if h.Tool != "" && (h.Tool != jsT || h.Tool != goT) {
					t.Fatalf("ParseHead(%d bytes): tool %q, apps read %q and %q", k, h.Tool, jsT, goT)
				}
			}
		})
	})
}
