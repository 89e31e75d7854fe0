package console

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/relay/access"
)

// session is a Session fed with notes, the last one closing it.
func session(notes ...Note) Session {
	ch := make(chan Note, len(notes)+1)
	for _, n := range notes {
		ch <- n
	}
	ch <- Note{Closed: true}
	return Session{Notes: ch, Ended: make(chan struct{}), Target: func() string { return "127.0.0.1:3000" }}
}

var notes = []Note{
	{Route: &Route{Name: "brave-otter-042", URL: "http://brave-otter-042.localhost:8080"}},
	{Route: &Route{Name: "myapp", URL: "http://myapp.localhost:8080", Static: true}},
	{Req: &event.Request{Route: "brave-otter-042", Method: "POST", Path: "/mcp", Status: 200, RPCMethod: "tools/call", Tool: "echo\x1b]0;x\x07"}},
	{Access: &access.Request{Route: "brave-otter-042", Code: "KQ4M-7TXD", State: "pending", ClientName: "Claude\x1b[2J", RedirectHost: "claude.ai"}},
	{Log: "POMDEV_TARGET refused\x1b[31m"},
}

// Lines: the tunnel first (a dynamic one with its target), a line per
// request, access request and log, nothing a terminal would act on, and
// the end at the connection's close.
func TestLines(t *testing.T) {
	var out bytes.Buffer
	Lines(&out, session(notes...))
	got := out.String()
	for _, want := range []string{
		"Remote: http://brave-otter-042.localhost:8080\nLocal: 127.0.0.1:3000\n",
		" POST /mcp 200 ",
		"approve: ssh <relay> pomdev-access approve KQ4M-7TXD",
		"Log: POMDEV_TARGET refused",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lines lack %q:\n%s", want, got)
		}
	}
	if strings.ContainsAny(got, "\x1b\x07") || strings.Count(got, "\n") != 6 || strings.Count(got, "Local:") != 1 {
		t.Fatalf("lines:\n%q", got)
	}
}

// Events: one JSON object per note, requests left out on request.
func TestEvents(t *testing.T) {
	for _, requests := range []bool{true, false} {
		var out bytes.Buffer
		Events(&out, session(notes...), requests)
		var types []string
		for line := range strings.Lines(out.String()) {
			var ev Event
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			if ev.Type == "tunnel" && ev.Route == "brave-otter-042" && ev.Target != "127.0.0.1:3000" {
				t.Fatalf("dynamic tunnel without its target: %s", line)
			}
			types = append(types, ev.Type)
		}
		want := "tunnel tunnel request access log"
		if !requests {
			want = "tunnel tunnel access log"
		}
		if got := strings.Join(types, " "); got != want || strings.ContainsAny(out.String(), "\x1b\x07") {
			t.Fatalf("requests=%v: %s\n%s", requests, got, out.String())
		}
	}
}

// A session the client closed ends without waiting for a note.
func TestEndedSession(t *testing.T) {
	ended := make(chan struct{})
	close(ended)
	var out bytes.Buffer
	Lines(&out, Session{Notes: make(chan Note), Ended: ended, Target: func() string { return "" }})
	if out.Len() != 0 {
		t.Fatalf("wrote %q", out.String())
	}
}
