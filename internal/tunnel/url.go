package tunnel

import (
	"bufio"
	"context"
	"encoding/json"
	"github.com/pomdev/pomdev/internal/event"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// findURL learns the public URL: --remote-url if given; from pomdev relay
// its JSON event stream; from a plain OpenSSH server the allocated port on
// the server's host; otherwise (pom.run) the status screen, read through a
// wide PTY. Without a URL in URLTimeout it warns and the tunnel stays up.
func (c *Client) findURL(ctx context.Context, client *ssh.Client, events *ssh.Session, serverVersion string, port int) {
	if c.cfg.RemoteURL != "" {
		c.setURL(c.cfg.RemoteURL)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.URLTimeout)
	defer cancel()
	var url string
	switch {
	case strings.Contains(serverVersion, "pomdev-relay"):
		url = c.urlFromEvents(ctx, client, events)
	case strings.Contains(serverVersion, "OpenSSH"):
		host, _, err := net.SplitHostPort(c.cfg.Addr)
		if err == nil && port > 0 {
			url = "http://" + net.JoinHostPort(host, strconv.Itoa(port))
		}
	default:
		url = c.urlFromScreen(ctx, client)
	}
	if url == "" {
		if ctx.Err() != nil && context.Cause(ctx) != context.DeadlineExceeded {
			return
		}
		c.emit(event.Tunnel{Kind: event.TunnelLog, Message: "could not read the remote URL from the relay; the tunnel is up (pass --remote-url to set it)"})
		return
	}
	c.setURL(url)
}

// urlFromEvents reads pomdev relay's "pomdev-events" stream: the first
// tunnel event carries the URL; later log events become log events here.
func (c *Client) urlFromEvents(ctx context.Context, client *ssh.Client, s *ssh.Session) string {
	if s == nil {
		var err error
		if s, err = client.NewSession(); err != nil {
			return ""
		}
	}
	out, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return ""
	}
	// The client makes its own request events; the relay need not send them.
	if err := s.Start("pomdev-events --no-requests"); err != nil {
		s.Close()
		return ""
	}
	found := make(chan string, 1)
	go func() {
		defer s.Close()
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			var ev struct {
				Type    string        `json:"type"`
				URL     string        `json:"url"`
				Message string        `json:"message"`
				Access  *event.Access `json:"access"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			switch {
			case ev.Type == "tunnel" && !sent:
				sent = true
				found <- ev.URL
			case ev.Type == "log":
				c.emit(event.Tunnel{Kind: event.TunnelLog, Message: "relay: " + ev.Message})
			case ev.Type == "access" && ev.Access != nil:
				c.emit(event.Tunnel{Kind: event.TunnelAccess, Access: ev.Access})
			}
		}
		if !sent {
			close(found)
		}
	}()
	select {
	case u := <-found:
		return u
	case <-ctx.Done():
		return ""
	}
}

// urlFromScreen opens a session with a wide PTY, as a person's ssh does,
// and reads the Remote row of the status screen through a small terminal
// emulator. Log lines that appear are surfaced as events.
func (c *Client) urlFromScreen(ctx context.Context, client *ssh.Client) string {
	s, err := client.NewSession()
	if err != nil {
		return ""
	}
	if err := s.RequestPty("xterm-256color", 60, 220, ssh.TerminalModes{ssh.ECHO: 0}); err != nil {
		s.Close()
		return ""
	}
	out, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return ""
	}
	if err := s.Shell(); err != nil {
		s.Close()
		return ""
	}
	found := make(chan string, 1)
	go func() {
		scr := newScreen(220, 60)
		buf := make([]byte, 32<<10)
		sent := false
		seen := map[string]bool{}
		for {
			n, err := out.Read(buf)
			scr.Write(buf[:n])
			lines := scr.Lines()
			if !sent {
				if u := RemoteFromScreen(lines); u != "" {
					sent = true
					found <- u
				}
			}
			// The relay's Logs pane (mode-mismatch hints and the like)
			// becomes log events, each line once.
			for _, l := range LogsFromScreen(lines) {
				if !seen[l] {
					seen[l] = true
					c.emit(event.Tunnel{Kind: event.TunnelLog, Message: "relay: " + l})
				}
			}
			if err != nil {
				if !sent {
					close(found)
				}
				return
			}
		}
	}()
	// The session stays open: closing it would end the tunnel on pom.run.
	select {
	case u, ok := <-found:
		if ok {
			return u
		}
		return ""
	case <-ctx.Done():
		return ""
	case <-time.After(c.cfg.URLTimeout):
		return ""
	}
}

var (
	remoteRow = regexp.MustCompile(`Remote\s*[:│|]?\s+(https?://\S+)`)
	urlRe     = regexp.MustCompile(`^https?://[A-Za-z0-9.\-]+(?::[0-9]+)?`)
	contRe    = regexp.MustCompile(`^[A-Za-z0-9.\-:]+`)
)

// RemoteFromScreen finds the Remote URL in the lines of a status screen
// (pom.run's or pomdev relay's), joining a URL that wrapped onto the next
// line, and drops a default port (:443 for https, :80 for http).
func RemoteFromScreen(lines []string) string {
	for i, l := range lines {
		m := remoteRow.FindStringSubmatchIndex(l)
		if m == nil {
			continue
		}
		raw := l[m[2]:m[3]]
		// Text running to the end of the row and a next row that starts
		// at its first column with more URL characters: a wrapped URL.
		if m[3] == len(l) && i+1 < len(lines) {
			if cont := contRe.FindString(lines[i+1]); cont != "" {
				raw += cont
			}
		}
		u := urlRe.FindString(raw)
		if u == "" {
			continue
		}
		if strings.HasPrefix(u, "https://") {
			u = strings.TrimSuffix(u, ":443")
		} else {
			u = strings.TrimSuffix(u, ":80")
		}
		return u
	}
	return ""
}

// LogsFromScreen returns the lines of the status screen's Logs pane: the
// rows under a "Logs" title, up to a blank row or the next pane, without
// box drawing.
func LogsFromScreen(lines []string) []string {
	var out []string
	in := false
	for _, l := range lines {
		t := strings.Trim(l, " │|╭╮╰╯─")
		switch {
		case !in:
			if t == "Logs" || strings.HasPrefix(t, "Logs ") && strings.Trim(t[4:], " ─") == "" {
				in = true
			}
		case strings.TrimSpace(t) == "" || strings.ContainsAny(l, "╭╰") || strings.HasSuffix(strings.TrimSpace(l), "───"):
			return out
		default:
			if t != "q: quit" {
				out = append(out, strings.TrimSpace(t))
			}
		}
	}
	return out
}
