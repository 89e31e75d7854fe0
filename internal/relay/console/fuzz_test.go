package console

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/fuzzwatch"
	"github.com/pomdev/pomdev/internal/termsafe"
)

// FuzzStatusScreen: whatever requests, logs and window sizes reach the
// status screen, it draws within the clamped size, never passes an OSC
// sequence or a bell from them to the terminal, and stays within time and
// memory.
func FuzzStatusScreen(f *testing.F) {
	f.Add("tools/call", "x\x1b]52;c;aGk=\x07", "/mcp\x1b[2J", uint32(80), uint32(24))
	f.Add("", "", "", uint32(0), uint32(0))
	f.Add("\u009b31m", "\u202e", "log\n\r", uint32(1<<32-1), uint32(1<<32-1))
	f.Fuzz(func(t *testing.T, method, tool, text string, cols, rows uint32) {
		fuzzwatch.Run(t, fuzzwatch.Limits{Bytes: 256 << 20}, func() {
			w, h := screenSize(cols, rows)
			if w > maxScreenCols || h > maxScreenRows || w <= 0 || h <= 0 {
				t.Fatalf("size %dx%d from %dx%d", w, h, cols, rows)
			}
			m := newStatusModel(w, h, func() int64 { return 1 })
			rt := &Route{Name: "brave-otter-042", URL: "http://brave-otter-042.localhost:8088"}
			m.Update(noteMsg{Note: Note{Route: rt}, target: text})
			for range 3 {
				m.Update(noteMsg{Note: Note{Req: &event.Request{Method: text, Path: text, RPCMethod: method, Tool: tool, Err: text}}})
				m.Update(noteMsg{Note: Note{Log: text + tool}})
			}
			view := m.View().Content
			lines := strings.Split(view, "\n")
			if len(lines) > h {
				t.Fatalf("%d lines on a screen of %d", len(lines), h)
			}
			for _, l := range lines {
				if ansi.StringWidth(l) > w {
					t.Fatalf("line of width %d on a screen of %d", ansi.StringWidth(l), w)
				}
			}
			if strings.Contains(view, "\x1b]") || strings.Contains(view, "\x07") || strings.ContainsRune(view, 0x9b) {
				t.Fatalf("a control sequence from the input reached the screen: %q", view)
			}
		})
	})
}

// FuzzRequestEvent: a request's line holds no control character, and its
// pomdev-events JSON stays valid, means the same and holds none either.
func FuzzRequestEvent(f *testing.F) {
	f.Add("POST", "/mcp", "tools/call", "x\x1b]0;t\x07", "\xff")
	f.Fuzz(func(t *testing.T, method, path, rpc, tool, errText string) {
		fuzzwatch.Run(t, fuzzwatch.Limits{}, func() {
			req := event.Request{Method: method, Path: path, RPCMethod: rpc, Tool: tool, Err: errText}
			if line := req.Line(); strings.ContainsFunc(line, func(r rune) bool { return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 }) {
				t.Fatalf("control character in %q", line)
			}
			raw, err := json.Marshal(Event{Type: "request", Route: "r", Request: &req})
			if err != nil {
				t.Fatal(err)
			}
			safe := termsafe.JSON(raw)
			var a, b any
			if json.Unmarshal(raw, &a) != nil || json.Unmarshal(safe, &b) != nil || !reflect.DeepEqual(a, b) {
				t.Fatalf("JSON changed: %s -> %s", raw, safe)
			}
			if strings.ContainsFunc(string(safe), func(r rune) bool { return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 }) {
				t.Fatalf("control character in %s", safe)
			}
		})
	})
}
