// Package tui is the dashboard of `pomdev up` on a terminal: a header with
// the public URL and the relay, and panes for processes, the tunnel, the
// check, client requests and logs. It is fed lines and process states by
// `up` and never writes lines wider than the terminal.
package tui

import (
	"fmt"
	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/termsafe"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// Line is one event line from `up`; Kind routes it to a pane (request,
// check, ready, output, ...).
type Line struct {
	Kind    string
	Process string
	Text    string
}

// Proc is a process row.
type Proc struct {
	Name     string
	State    string
	PID      int
	Port     int
	Restarts int
	Since    time.Time
}

// Actions are what the keys do.
type Actions struct {
	Quit      func()        // q: quit on purpose
	Interrupt func()        // Ctrl-C: interrupted, as SIGINT is
	Restart   func()        // r: restart the server
	Check     func()        // i: re-run the check
	OpenURL   func(string)  // o, p
	Processes func() []Proc // the table, read on every tick
	Clipboard func(string)  // c: copy the URL (OSC 52)
	// Connections reports the tunnel's open and total connections, read
	// on every tick; nil without a tunnel.
	Connections func() (open, total int64)
	// Decide allows or denies an access request (a, d); nil without a
	// pomdev relay's OAuth.
	Decide func(code string, allow bool) (string, error)
}

// decidedMsg is the outcome of a or d.
type decidedMsg struct {
	code, out string
	err       error
}

type tickMsg struct{}

// Model is the dashboard.
type Model struct {
	App, Relay string
	// Tools are the tunnel's own tool rules, shown in the header ("" none).
	Tools         string
	url, tunnel   string
	width, height int
	actions       Actions
	procs         []Proc
	requests      []string
	checks        []string
	logs          []Line
	filter        string // "" = all processes
	help          bool
	preview       string // the local preview page (p opens it)
	open, total   int64
	scroll        int // log lines scrolled back from the newest; 0 follows
	access        []event.Access
}

// New returns the dashboard for app with the given actions.
func New(app, relay string, a Actions) *Model {
	return &Model{App: app, Relay: relay, tunnel: "connecting", actions: a, width: 80, height: 24}
}

func tick() tea.Cmd { return tea.Tick(time.Second, func(time.Time) tea.Msg { return tickMsg{} }) }

// Init starts the refresh tick.
func (m *Model) Init() tea.Cmd { return tick() }

const keep = 200

func push[T any](s []T, v T) []T {
	s = append(s, v)
	if len(s) > keep {
		s = s[len(s)-keep:]
	}
	return s
}

// Update handles keys, resizes and lines.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tickMsg:
		if m.actions.Processes != nil {
			m.procs = m.actions.Processes()
		}
		if m.actions.Connections != nil {
			m.open, m.total = m.actions.Connections()
		}
		return m, tick()
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tea.KeyPressMsg:
		switch msg.String() {
		case "q":
			if m.actions.Quit != nil {
				m.actions.Quit()
			}
			return m, tea.Quit
		case "ctrl+c":
			if m.actions.Interrupt != nil {
				m.actions.Interrupt()
			}
			return m, tea.Quit
		case "r":
			if m.actions.Restart != nil {
				m.actions.Restart()
			}
		case "i":
			if m.actions.Check != nil {
				m.actions.Check()
			}
		case "o":
			m.openURL(m.url, "", "the URL", "no URL to open yet")
		case "p":
			m.openURL(m.preview, "the preview ", "the preview", "no preview (pomdev up --no-preview, or no server port)")
		case "c":
			if m.url != "" {
				m.logs = push(m.logs, Line{Kind: "key", Text: "copied " + m.url + " (OSC 52: the terminal must allow clipboard access)"})
				return m, tea.SetClipboard(m.url)
			}
			m.logs = push(m.logs, Line{Kind: "key", Text: "no URL to copy yet"})
		case "l":
			m.filter = nextFilter(m.filter, m.procs)
			m.scroll = 0
		case "up", "k":
			m.scroll++
		case "down", "j":
			m.scroll = max(0, m.scroll-1)
		case "pgup":
			m.scroll += 10
		case "pgdown":
			m.scroll = max(0, m.scroll-10)
		case "end", "G":
			m.scroll = 0
		case "a", "d":
			if len(m.access) == 0 || m.actions.Decide == nil {
				return m, nil
			}
			code, allow, decide := m.access[0].Code, msg.String() == "a", m.actions.Decide
			return m, func() tea.Msg {
				out, err := decide(code, allow)
				return decidedMsg{code: code, out: out, err: err}
			}
		case "?":
			m.help = !m.help
		case "esc":
			m.help = false
		}
	case decidedMsg:
		text := msg.out
		if msg.err != nil {
			text = "access " + msg.code + ": " + msg.err.Error()
		}
		m.logs = push(m.logs, Line{Kind: "access", Text: termsafe.String(text)})
		m.dropAccess(msg.code)
	case event.Access:
		m.dropAccess(msg.Code)
		if msg.State == "pending" && len(m.access) < 16 {
			m.access = append(m.access, msg)
		}
	case Line:
		// Lines often follow a process change: refresh the table now.
		if m.actions.Processes != nil {
			m.procs = m.actions.Processes()
		}
		switch msg.Kind {
		case "request":
			m.requests = push(m.requests, msg.Text)
		case "check":
			m.checks = push(m.checks, msg.Text)
		case "url":
			m.url = msg.Text
			m.tunnel = "connected"
		case "preview":
			m.preview = msg.Text
		case "disconnected":
			m.tunnel = "reconnecting"
			m.logs = push(m.logs, msg)
		case "unreachable":
			// The header says why there is no URL yet and what to do.
			m.tunnel, _, _ = strings.Cut(msg.Text, " (offline")
			m.logs = push(m.logs, msg)
		default:
			m.logs = push(m.logs, msg)
		}
	case []Proc:
		m.procs = msg
	case Actions:
		// Sent once `up` has built its processes.
		m.actions = msg
		if m.actions.Processes != nil {
			m.procs = m.actions.Processes()
		}
	}
	return m, nil
}

// openURL opens u in the browser (what names it in the log line), or says
// why it cannot: none when there is no u, the URL itself with no browser.
func (m *Model) openURL(u, what, name, none string) {
	var text string
	switch {
	case u == "":
		text = none
	case m.actions.OpenURL != nil:
		m.actions.OpenURL(u)
		text = "opening " + what + u + " in the browser"
	default:
		text = "no browser to open here (no display); " + name + " is " + u
	}
	m.logs = push(m.logs, Line{Kind: "key", Text: text})
}

func (m *Model) dropAccess(code string) {
	for i, a := range m.access {
		if a.Code == code {
			m.access = append(m.access[:i], m.access[i+1:]...)
			return
		}
	}
}

func nextFilter(cur string, procs []Proc) string {
	names := []string{""}
	for _, p := range procs {
		names = append(names, p.Name)
	}
	for i, n := range names {
		if n == cur {
			return names[(i+1)%len(names)]
		}
	}
	return ""
}

var (
	bold  = lipgloss.NewStyle().Bold(true)
	faint = lipgloss.NewStyle().Faint(true)
	green = lipgloss.NewStyle().Foreground(lipgloss.Color("2")).Bold(true)
	cyan  = lipgloss.NewStyle().Foreground(lipgloss.Color("6"))
)

// View draws the screen within width x height.
func (m *Model) View() tea.View {
	w, h := max(m.width, 20), max(m.height, 8)
	var lines []string
	add := func(s string) { lines = append(lines, ansi.Truncate(s, w, "…")) }
	title := func(t string) {
		add(bold.Render(t) + " " + faint.Render(strings.Repeat("─", max(0, w-ansi.StringWidth(t)-1))))
	}

	url := m.url
	if url == "" {
		url = "(waiting for the tunnel)"
	}
	add(bold.Render("pomdev up") + "  " + m.App + "  " + cyan.Render(url))
	add(faint.Render(fmt.Sprintf("relay %s · %s · c copy URL · o open · p preview · r restart server · i check · ? help · q quit", m.Relay, m.tunnel)))
	if m.Tools != "" {
		add(faint.Render("tools (enforced by the relay): " + m.Tools))
	}
	if m.help {
		title("Help")
		for _, l := range []string{"q, Ctrl-C  stop everything and quit", "r  restart the server", "i  run the check again",
			"c  copy the public URL (OSC 52)", "o  open the public URL in a browser",
			"p  open the preview: the widgets rendered locally as a host would", "l  filter logs by process",
			"a, d  allow or deny the first access request (check its code against the app's page)",
			"↑↓ PgUp PgDn  scroll the logs; End follows them again", "?, Esc  close this help"} {
			add("  " + l)
		}
	}
	title("Processes")
	add(faint.Render(fmt.Sprintf("  %-12s %-10s %7s %6s %8s %s", "NAME", "STATE", "PID", "PORT", "RESTARTS", "UPTIME")))
	for _, p := range m.procs {
		state := p.State
		if state == "ready" {
			state = green.Render(fmt.Sprintf("%-10s", state))
		} else {
			state = fmt.Sprintf("%-10s", state)
		}
		up := ""
		if !p.Since.IsZero() && p.PID != 0 {
			up = time.Since(p.Since).Round(time.Second).String()
		}
		add(fmt.Sprintf("  %-12s %s %7d %6d %8d %s", p.Name, state, p.PID, p.Port, p.Restarts, up))
	}
	title("Port Forward Status")
	add("  Status  " + m.tunnel)
	add("  Remote  " + url)
	if m.preview != "" {
		add("  Preview " + m.preview)
	}
	if len(m.access) > 0 {
		title("Access")
		// The request a and d act on is shown in full; the others are
		// counted (pomdev access list shows them).
		for _, l := range m.access[0].ScreenLines(w, "›", func(s string) string { return green.Render(s) }) {
			add(l)
		}
		if n := len(m.access) - 1; n > 0 {
			add(faint.Render(fmt.Sprintf("  + %d more waiting (pomdev access list)", n)))
		}
		add(faint.Render("  a allow · d deny (this request; check its code against the app's page)"))
	}
	title("Active Connections")
	if m.actions.Connections == nil {
		add(faint.Render("  no tunnel"))
	} else {
		add(fmt.Sprintf("  %d open · %d since start", m.open, m.total))
	}
	title("Check")
	for _, c := range last(m.checks, 2) {
		add("  " + c)
	}
	if len(m.checks) == 0 {
		add(faint.Render("  waiting for the server"))
	}
	// Requests and logs share what is left.
	room := max(2, h-len(lines)-2)
	reqRows := max(1, room/2)
	title("Client Requests")
	for _, r := range last(m.requests, reqRows) {
		add("  " + r)
	}
	if len(m.requests) == 0 {
		add(faint.Render("  no requests yet"))
	}
	filter := "all"
	if m.filter != "" {
		filter = m.filter
	}
	var logs []string
	for _, l := range m.logs {
		if m.filter == "" || l.Process == m.filter {
			prefix := ""
			if l.Process != "" {
				prefix = "[" + l.Process + "] "
			}
			logs = append(logs, prefix+l.Text)
		}
	}
	rows := max(1, h-len(lines)-1)
	m.scroll = min(m.scroll, max(0, len(logs)-rows))
	where := "l to filter, ↑↓ to scroll"
	if m.scroll > 0 {
		where = fmt.Sprintf("%d lines back, End to follow", m.scroll)
	}
	title("Logs (" + filter + ", " + where + ")")
	for _, l := range last(logs[:len(logs)-m.scroll], rows) {
		add("  " + l)
	}
	if len(lines) > h {
		lines = lines[:h]
	}
	v := tea.NewView(strings.Join(lines, "\n"))
	v.AltScreen = true
	return v
}

func last[T any](s []T, n int) []T {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
