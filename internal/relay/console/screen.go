package console

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/relay/access"
	"github.com/pomdev/pomdev/internal/termsafe"
)

// noteMsg carries a connection note into the status screen.
type noteMsg struct {
	Note
	target string
}

type forwardRow struct {
	name, url, local string
	static           bool
}

// statusModel is the screen a client with a PTY sees, shaped like
// pom.run's: Port Forward Status, Active Connections, Client Requests,
// Logs. q or Ctrl-C ends the session.
type statusModel struct {
	width, height int
	forwards      []forwardRow
	requests      []event.Request
	logs          []string
	served        int
	// open reports the requests in flight on this connection.
	open func() int64
	// pending are the access requests waiting for this key; decide
	// approves or denies one (nil when the relay authorizes nothing).
	pending []access.Request
	decide  func(code string, allow bool) error
}

// decidedMsg is the outcome of a or d.
type decidedMsg struct {
	code  string
	allow bool
	err   error
}

// tickMsg refreshes the in-flight count once a second.
type tickMsg struct{}

func tick() tea.Cmd { return tea.Tick(time.Second, func(time.Time) tea.Msg { return tickMsg{} }) }

const keepRequests, keepLogs = 200, 50

func newStatusModel(w, h int, open func() int64) *statusModel {
	return &statusModel{width: w, height: h, open: open}
}

func (m *statusModel) Init() tea.Cmd { return tick() }

func (m *statusModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tickMsg:
		return m, tick()
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tea.KeyPressMsg:
		switch msg.String() {
		case "q", "ctrl+c", "ctrl+d":
			return m, tea.Quit
		case "a", "d":
			if m.decide == nil || len(m.pending) == 0 {
				return m, nil
			}
			code, allow, decide := m.pending[0].Code, msg.String() == "a", m.decide
			return m, func() tea.Msg { return decidedMsg{code: code, allow: allow, err: decide(code, allow)} }
		}
	case decidedMsg:
		if msg.err != nil {
			m.addLog("access " + msg.code + ": " + msg.err.Error())
		}
		m.dropPending(msg.code)
	case noteMsg:
		switch {
		case msg.Route != nil:
			row := forwardRow{name: msg.Route.Name, url: msg.Route.URL, local: msg.target, static: msg.Route.Static}
			if row.static {
				row.local = "(chosen by the client: -R " + msg.Route.Name + ":PORT:HOST:PORT)"
			}
			replaced := false
			for i := range m.forwards {
				if m.forwards[i].name == row.name {
					m.forwards[i], replaced = row, true
				}
			}
			if !replaced {
				m.forwards = append(m.forwards, row)
			}
		case msg.Req != nil:
			m.served++
			m.requests = append(m.requests, *msg.Req)
			if len(m.requests) > keepRequests {
				m.requests = m.requests[len(m.requests)-keepRequests:]
			}
		case msg.Access != nil:
			q := *msg.Access
			m.dropPending(q.Code)
			if q.State == "pending" {
				if len(m.pending) < keepPending {
					m.pending = append(m.pending, q)
				}
			} else {
				m.addLog(fmt.Sprintf("access %s %s for %s (%s)", q.App(), q.State, q.Route, q.DecidedBy))
			}
		case msg.Log != "":
			m.addLog(msg.Log)
		}
	}
	return m, nil
}

const keepPending = 16

func (m *statusModel) addLog(s string) {
	m.logs = append(m.logs, s)
	if len(m.logs) > keepLogs {
		m.logs = m.logs[len(m.logs)-keepLogs:]
	}
}

func (m *statusModel) dropPending(code string) {
	for i, q := range m.pending {
		if q.Code == code {
			m.pending = append(m.pending[:i], m.pending[i+1:]...)
			return
		}
	}
}

var (
	titleStyle = lipgloss.NewStyle().Bold(true)
	dimStyle   = lipgloss.NewStyle().Faint(true)
	okStyle    = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("2"))
)

func (m *statusModel) View() tea.View {
	w := m.width
	if w <= 0 {
		w = defaultScreenCols
	}
	var lines []string
	add := func(s string) { lines = append(lines, ansi.Truncate(s, w, "…")) }
	section := func(title string) {
		add(titleStyle.Render(title) + " " + dimStyle.Render(strings.Repeat("─", max(0, w-len(title)-1))))
	}

	section("Port Forward Status")
	if len(m.forwards) == 0 {
		add("  Status  " + dimStyle.Render("WAITING (no remote forward yet: ssh -R 0 …)"))
	}
	for _, f := range m.forwards {
		add("  Status  " + okStyle.Render("ACTIVE"))
		add("  Remote  " + termsafe.String(f.url))
		add("  Local   " + termsafe.String(f.local))
	}
	add("")
	if len(m.pending) > 0 {
		section("Access Requests")
		// The request a and d act on is shown in full; the others are
		// counted (ssh … pomdev-access list shows them).
		for _, l := range m.pending[0].ScreenLines(w, "›", func(s string) string { return okStyle.Render(s) }) {
			add(l)
		}
		if n := len(m.pending) - 1; n > 0 {
			add(dimStyle.Render(fmt.Sprintf("  + %d more waiting (ssh … %s list)", n, AccessCommand)))
		}
		add("  a: allow  d: deny " + dimStyle.Render("(check its code against the browser's)"))
		add("")
	}
	section("Active Connections")
	open := int64(0)
	if m.open != nil {
		open = m.open()
	}
	served := fmt.Sprintf("%d requests served", m.served)
	if m.served == 1 {
		served = "1 request served"
	}
	add(fmt.Sprintf("  %d open, %s", open, served))
	add("")
	section("Client Requests")
	logRows := min(len(m.logs), 5)
	used := len(lines) + 2 + logRows + 1
	room := max(1, m.height-used)
	reqs := m.requests
	if len(reqs) > room {
		reqs = reqs[len(reqs)-room:]
	}
	if len(reqs) == 0 {
		add(dimStyle.Render("  no requests yet"))
	}
	for _, r := range reqs {
		add("  " + r.Line())
	}
	add("")
	section("Logs")
	for _, l := range m.logs[len(m.logs)-logRows:] {
		add("  " + termsafe.String(l))
	}
	add(dimStyle.Render("  q: quit"))
	if m.height > 0 && len(lines) > m.height {
		lines = lines[:m.height]
	}
	v := tea.NewView(strings.Join(lines, "\n"))
	v.AltScreen = true
	return v
}

// Screen sizes a client may ask for: the screen's cells are allocated
// from them (≈ 220 bytes each), so a terminal of 60000 x 2000 would take
// gigabytes; 300 x 100 takes ≈ 6.5 MiB.
const (
	maxScreenCols, maxScreenRows         = 300, 100
	defaultScreenCols, defaultScreenRows = 80, 24
)

// screenSize clamps a client's terminal size to what the status screen
// draws; zero means the classic 80 x 24.
func screenSize(cols, rows uint32) (int, int) {
	w, h := int(min(cols, maxScreenCols)), int(min(rows, maxScreenRows))
	if w == 0 {
		w = defaultScreenCols
	}
	if h == 0 {
		h = defaultScreenRows
	}
	return w, h
}

// termName keeps a client's TERM printable and short.
func termName(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f {
			return "xterm-256color"
		}
	}
	return s
}

// Size is a terminal's size as a client reports it.
type Size struct{ Cols, Rows uint32 }

// Screen is what the status screen needs beyond the session.
type Screen struct {
	Size Size
	Term string
	// Resize carries the client's window changes.
	Resize <-chan Size
	// Open reports the requests in flight on the connection.
	Open func() int64
	// Decide approves or denies an access request (nil when the relay
	// authorizes nothing).
	Decide func(code string, allow bool) error
}

// RunScreen draws the status screen with Bubble Tea over ch until the
// person quits (q, Ctrl-C) or the connection closes. A panic in the
// screen ends this session only (Bubble Tea recovers it).
func RunScreen(ch io.ReadWriter, s Session, sc Screen) error {
	cols, rows := screenSize(sc.Size.Cols, sc.Size.Rows)
	m := newStatusModel(cols, rows, sc.Open)
	m.decide = sc.Decide
	env := []string{"TERM=" + termName(sc.Term)}
	p := tea.NewProgram(m,
		tea.WithInput(ch),
		tea.WithOutput(CRLFWriter{ch}),
		tea.WithEnvironment(env),
		tea.WithWindowSize(cols, rows),
		tea.WithoutSignalHandler(),
	)
	// The notes and resizes are fed from a goroutine that ends before
	// RunScreen returns.
	stop, fed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(fed)
		for {
			select {
			case <-stop:
				return
			case wc := <-sc.Resize:
				cols, rows := screenSize(wc.Cols, wc.Rows)
				p.Send(tea.WindowSizeMsg{Width: cols, Height: rows})
			case n := <-s.Notes:
				if n.Closed {
					p.Quit()
					return
				}
				msg := noteMsg{Note: n}
				if n.Route != nil {
					msg.target = s.Target()
				}
				p.Send(msg)
			}
		}
	}()
	_, err := p.Run()
	close(stop)
	<-fed
	return err
}

// CRLFIf maps newlines for a client's raw terminal.
func CRLFIf(w io.Writer, pty bool) io.Writer {
	if pty {
		return CRLFWriter{w}
	}
	return w
}

// CRLFWriter turns "\n" into "\r\n". Bubble Tea, given an input that is
// not a terminal, assumes the output terminal maps newlines (ONLCR) as a
// local PTY would; over SSH the client's terminal is raw, so the relay maps
// them itself.
type CRLFWriter struct{ W io.Writer }

func (c CRLFWriter) Write(p []byte) (int, error) {
	if bytes.IndexByte(p, '\n') < 0 {
		return c.W.Write(p)
	}
	out := make([]byte, 0, len(p)+16)
	for i, b := range p {
		if b == '\n' && (i == 0 || p[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, b)
	}
	if _, err := c.W.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
