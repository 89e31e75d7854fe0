package mcpwire

import (
	"encoding/json"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/pomdev/pomdev/internal/fuzzwatch"
)

// FuzzDecode: whatever Decode accepts, a server reading the message into
// encoding/json structs (keys matched without regard to case, the last
// repeated key winning) reads with the same method and tool name, and
// IDKey never panics.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Name":"exec"}}`))
	f.Add([]byte(`{"id":"\u0031","method":"ping","method":"tools/list"}`))
	f.Add([]byte(`{"id":1e0,"paramſ":{"name":"x"},"method":"tools/call"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzwatch.Run(t, fuzzwatch.Limits{}, func() {
			m, err := Decode(in)
			_, _ = IDKey(m.ID)
			if err != nil {
				return
			}
			var s struct {
				Method *string `json:"method"`
				Params *struct {
					Name *string `json:"name"`
				} `json:"params"`
			}
			if json.Unmarshal(in, &s) != nil {
				return // a server that cannot read it runs nothing
			}
			if (m.Method == nil) != (s.Method == nil) || m.Method != nil && *m.Method != *s.Method {
				t.Fatalf("method: Decode %v, encoding/json %v", m.Method, s.Method)
			}
			name, ok := StringKey(m.Params, "name")
			if s.Params != nil && s.Params.Name != nil && (!ok || name != *s.Params.Name) {
				t.Fatalf("tool: Decode %q (%v), encoding/json %q", name, ok, *s.Params.Name)
			}
			// A third app: a server on the official Go SDK, which decodes
			// with exact keys (and wants "jsonrpc":"2.0").
			if msg, err := jsonrpc.DecodeMessage(in); err == nil && m.Method != nil {
				if req, isReq := msg.(*jsonrpc.Request); isReq {
					if req.Method != *m.Method {
						t.Fatalf("method: Decode %q, go-sdk %q", *m.Method, req.Method)
					}
					var p struct {
						Name *string `json:"name"`
					}
					if json.Unmarshal(req.Params, &p) == nil && p.Name != nil && (!ok || name != *p.Name) {
						// encoding/json here reads go-sdk's params; the
						// exact key is what matters, and Decode refused
						// any case variant.
						t.Fatalf("tool: Decode %q (%v), go-sdk %q", name, ok, *p.Name)
					}
				}
			}
		})
	})
}

func TestIDKey(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{`1`, `1.0`, true}, {`1`, `1e0`, true}, {`"1"`, `"\u0031"`, true}, {`1`, `"1"`, false}, {`-0`, `0`, true}, {`2`, `1`, false},
	} {
		ka, oka := IDKey(json.RawMessage(tt.a))
		kb, okb := IDKey(json.RawMessage(tt.b))
		if !oka || !okb || (ka == kb) != tt.same {
			t.Errorf("IDKey(%s) = %q %v, IDKey(%s) = %q %v; same want %v", tt.a, ka, oka, tt.b, kb, okb, tt.same)
		}
	}
	for _, id := range []string{``, `null`, `true`, `1.5`, `9007199254740993`, `1e300`, `{}`, `"\ud800`} {
		if k, ok := IDKey(json.RawMessage(id)); ok {
			t.Errorf("IDKey(%s) = %q, want refused", id, k)
		}
	}
}
