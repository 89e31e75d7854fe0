package tui

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/pomdev/pomdev/internal/event"
)

func key(s string) tea.KeyPressMsg {
	if s == "esc" {
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	}
	return tea.KeyPressMsg{Code: rune(s[0]), Text: s}
}

func viewText(m *Model) string { return ansi.Strip(m.View().Content) }

// o and c say what they did; ? opens the help and Esc closes it; an access
// request shows in its pane until decided.
func TestKeysGiveFeedback(t *testing.T) {
	opened := ""
	m := New("app", "local", Actions{OpenURL: func(u string) { opened = u }})
	m.Update(key("c"))
	if !strings.Contains(viewText(m), "no URL to copy yet") {
		t.Fatalf("c without a URL:\n%s", viewText(m))
	}
	m.Update(Line{Kind: "url", Text: "http://a.localhost:1"})
	m.Update(key("o"))
	if opened != "http://a.localhost:1" || !strings.Contains(viewText(m), "opening http://a.localhost:1 in the browser") {
		t.Fatalf("o: opened %q\n%s", opened, viewText(m))
	}
	m.Update(key("c"))
	if !strings.Contains(viewText(m), "copied http://a.localhost:1") {
		t.Fatalf("c:\n%s", viewText(m))
	}
	m.Update(key("p"))
	if !strings.Contains(viewText(m), "no preview") {
		t.Fatalf("p without a preview:\n%s", viewText(m))
	}
	m.Update(Line{Kind: "preview", Text: "http://127.0.0.1:2/p/tok/"})
	if !strings.Contains(viewText(m), "Preview http://127.0.0.1:2/p/tok/") {
		t.Fatalf("the preview's URL is not shown:\n%s", viewText(m))
	}
	m.Update(key("p"))
	if opened != "http://127.0.0.1:2/p/tok/" || !strings.Contains(viewText(m), "opening the preview http://127.0.0.1:2/p/tok/ in the browser") {
		t.Fatalf("p: opened %q\n%s", opened, viewText(m))
	}
	m.Update(key("?"))
	if !strings.Contains(viewText(m), "close this help") {
		t.Fatal("? did not open the help")
	}
	m.Update(key("esc"))
	if strings.Contains(viewText(m), "close this help") {
		t.Fatal("Esc did not close the help")
	}
	m.Update(event.Access{Code: "AAAA-BBBB", Route: "r", ClientName: "App", RedirectHost: "https://app.example", State: "pending"})
	if v := viewText(m); !strings.Contains(v, "› code AAAA-BBBB · returns to https://app.example") || !strings.Contains(v, "App asks for r") {
		t.Fatalf("access pane:\n%s", viewText(m))
	}
	m.Update(event.Access{Code: "AAAA-BBBB", State: "approved"})
	if strings.Contains(viewText(m), "AAAA-BBBB") {
		t.Fatalf("decided request still shown:\n%s", viewText(m))
	}

	// Without a display there is no browser: o and p give the URL instead.
	m = New("app", "local", Actions{})
	m.Update(Line{Kind: "url", Text: "http://a.localhost:1"})
	m.Update(Line{Kind: "preview", Text: "http://127.0.0.1:2/p/tok/"})
	m.Update(key("o"))
	m.Update(key("p"))
	if v := viewText(m); !strings.Contains(v, "no browser to open here (no display); the URL is http://a.localhost:1") ||
		!strings.Contains(v, "no browser to open here (no display); the preview is http://127.0.0.1:2/p/tok/") {
		t.Fatalf("o and p without a browser:\n%s", v)
	}
}
