package access

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
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

// A flood of requests with huge methods neither makes long lines nor
// pushes the decisions out: each field is capped, decisions have their
// own file, and rotation keeps AuditGenerations old files.
func TestAuditFloodKeepsDecisions(t *testing.T) {
	dir := t.TempDir()
	a, err := openAudit(dir, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	// Small files, so the flood rotates them many times.
	a.all.maxBytes, a.decisions.maxBytes = 64<<10, 64<<10
	a.add(Entry{Kind: "decision", Route: "r", Client: "c", Decision: "approved", By: "owner", Reason: "code AAAA-BBBB"})
	huge := strings.Repeat("m", 12270)
	for range 12000 {
		a.add(Entry{Kind: "request", Route: "r", Method: huge, Tool: huge, Reason: huge + huge, Source: "127.0.0.1"})
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	dec, err := os.ReadFile(filepath.Join(dir, DecisionsFile))
	if err != nil || !strings.Contains(string(dec), `"decision":"approved"`) || strings.Contains(string(dec), `"kind":"request"`) {
		t.Fatalf("decisions after the flood (%v):\n%.300s", err, dec)
	}
	for i := 1; i <= AuditGenerations; i++ {
		if _, err := os.Stat(filepath.Join(dir, AuditFile+"."+strconv.Itoa(i))); err != nil {
			t.Errorf("generation %d: %v", i, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, AuditFile+"."+strconv.Itoa(AuditGenerations+1))); err == nil {
		t.Errorf("more than %d old generations kept", AuditGenerations)
	}
	cur, _ := os.ReadFile(filepath.Join(dir, AuditFile))
	for line := range strings.Lines(string(cur)) {
		if len(line) > 3*auditFieldMax+auditReasonMax+512 {
			t.Fatalf("a line of %d bytes", len(line))
		}
		if !json.Valid([]byte(strings.TrimSpace(line))) {
			t.Fatalf("a capped line is not JSON: %.200s", line)
		}
	}
}

func TestCapString(t *testing.T) {
	s := capString(strings.Repeat("é", 300), 256)
	if len(s) > 256 || !utf8.ValidString(s) || !strings.HasSuffix(s, "…") {
		t.Fatalf("capString: %d bytes, valid %v", len(s), utf8.ValidString(s))
	}
}
