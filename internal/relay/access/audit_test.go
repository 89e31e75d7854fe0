package access

import (
	"encoding/json"
	"testing"
	"time"
)

// The hand-written encoding of audit lines says what encoding/json says.
func TestAuditLineEncoding(t *testing.T) {
	for _, e := range []Entry{
		{Time: time.Date(2026, 12, 2, 7, 0, 0, 123456789, time.UTC), Kind: "request", Route: "r", Client: "c", Grant: "g", Owner: "SHA256:x",
			Method: "tools/call", Tool: "echo", Decision: "allow", Status: 200, Source: "127.0.0.1"},
		{Time: time.Now(), Kind: "refused", Decision: "deny", Status: 401, Reason: "quote \" backslash \\ tab \t nul \x00 esc \x1b[2J é ✓ \u2028"},
		{Time: time.Now(), Kind: "authorize", Client: "bad utf8 \xff\xfe end", By: "<script>&"},
		{Kind: "token"},
	} {
		got := e.appendJSON(nil)
		if !json.Valid(got) {
			t.Fatalf("invalid JSON %s", got)
		}
		want, _ := json.Marshal(e)
		var g, w map[string]any
		_ = json.Unmarshal(got, &g)
		_ = json.Unmarshal(want, &w)
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		if string(gb) != string(wb) {
			t.Errorf("appendJSON:\n%s\njson.Marshal:\n%s", got, want)
		}
	}
}

func BenchmarkAuditLine(b *testing.B) {
	e := Entry{Time: time.Now(), Kind: "request", Route: "witty-otter-123", Client: "Inh6iHkrd3NsE9g5jTc-ZA", Grant: "abcdefgh", Owner: "SHA256:mXWjR2/4NZQGYlmYfYpxBnnrMdibvmiNmCPXliM3yWE",
		Method: "tools/call", Tool: "echo", Decision: "allow", Status: 200, Source: "127.0.0.1"}
	b.Run("appendJSON", func(b *testing.B) {
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf = e.appendJSON(buf[:0])
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(e)
		}
	})
}
