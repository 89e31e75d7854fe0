// Package console is what an SSH session of the relay shows: the status
// screen (Bubble Tea over the channel), plain lines, and the JSON events of
// pomdev-events. It reads a connection's notes; the relay's core decides
// which session gets which (and how many screens are drawn).
package console

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/relay/access"
	"github.com/pomdev/pomdev/internal/termsafe"
)

// EventsCommand is the exec command of the machine-readable stream:
// ssh -T relay pomdev-events [--no-requests].
const EventsCommand = "pomdev-events"

// AccessCommand is the exec command that decides and lists access
// requests: ssh relay pomdev-access approve CODE.
const AccessCommand = "pomdev-access"

// Route is a tunnel as a session shows it.
type Route struct {
	Name, URL string
	Static    bool
}

// Note is what a connection tells its sessions: one of a tunnel, a
// request, an access request, a log line, or that it closed.
type Note struct {
	Route  *Route
	Req    *event.Request
	Access *access.Request
	Log    string
	Closed bool
}

// Session is the connection a session shows.
type Session struct {
	Notes <-chan Note
	// Ended is closed when the client closes the session.
	Ended <-chan struct{}
	// Target is where the connection's dynamic forwards connect.
	Target func() string
}

// Lines writes plain lines: "Remote: <url>" per tunnel first, then one
// line per request, until the session ends.
func Lines(out io.Writer, s Session) {
	s.stream(out, func(buf []byte, n Note) []byte {
		return append(append(buf, s.lineOf(n)...), '\n')
	})
}

// stream writes what render makes of each note until the session ends.
// Notes are gathered for up to lineBatch after the first of a batch and
// go out in one write: under load one SSH packet carries many lines, not
// one each (a person reading the lines does not see 20 ms).
func (s Session) stream(ch io.Writer, render func([]byte, Note) []byte) {
	var buf []byte
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var n Note
		select {
		case <-s.Ended:
			return
		case n = <-s.Notes:
		}
		buf = buf[:0]
		timer.Reset(lineBatch)
	batch:
		for {
			if n.Closed {
				_, _ = ch.Write(buf)
				return
			}
			buf = render(buf, n)
			if len(buf) >= 16<<10 {
				break
			}
			select {
			case n = <-s.Notes:
			case <-timer.C:
				break batch
			case <-s.Ended:
				return
			}
		}
		timer.Stop()
		if len(buf) == 0 {
			continue
		}
		if _, err := ch.Write(buf); err != nil {
			return
		}
	}
}

// lineBatch is how long session lines are gathered before a write.
const lineBatch = 20 * time.Millisecond

// lineOf is a note as a line of the plain session output.
func (s Session) lineOf(n Note) string {
	switch {
	case n.Route != nil:
		line := "Remote: " + n.Route.URL
		if !n.Route.Static {
			line += "\nLocal: " + s.Target()
		}
		return line
	case n.Req != nil:
		return n.Req.Line()
	case n.Access != nil:
		return AccessLine(*n.Access)
	default:
		return "Log: " + termsafe.String(n.Log)
	}
}

// Event is one line of the machine-readable stream (EventsCommand).
type Event struct {
	Type    string `json:"type"` // tunnel, request, access, log
	Route   string `json:"route,omitempty"`
	URL     string `json:"url,omitempty"`
	Target  string `json:"target,omitempty"`
	Static  bool   `json:"static,omitempty"`
	Message string `json:"message,omitempty"`
	Request any    `json:"request,omitempty"`
	Access  any    `json:"access,omitempty"`
}

// Events writes the machine-readable stream (EventsCommand), one JSON
// object per line; requests false leaves request events out.
func Events(out io.Writer, s Session, requests bool) {
	s.stream(out, func(buf []byte, n Note) []byte {
		var ev Event
		switch {
		case n.Route != nil:
			ev = Event{Type: "tunnel", Route: n.Route.Name, URL: n.Route.URL, Static: n.Route.Static}
			if !n.Route.Static {
				ev.Target = s.Target()
			}
		case n.Req != nil:
			if !requests {
				return buf
			}
			ev = Event{Type: "request", Route: n.Req.Route, Request: n.Req}
		case n.Access != nil:
			ev = Event{Type: "access", Route: n.Access.Route, Access: n.Access}
		default:
			ev = Event{Type: "log", Message: n.Log}
		}
		// A person may read the stream raw (ssh -T relay pomdev-events):
		// the JSON is kept free of terminal controls.
		line, err := json.Marshal(ev)
		if err != nil {
			return buf
		}
		return append(append(buf, termsafe.JSON(line)...), '\n')
	})
}

// AccessLine is an access request as a plain line.
func AccessLine(q access.Request) string {
	switch q.State {
	case "pending":
		return fmt.Sprintf("Access: %s (%s) asks for %s · code %s · approve: ssh <relay> %s approve %s",
			termsafe.String(q.App()), termsafe.String(q.RedirectHost), q.Route, q.Code, AccessCommand, q.Code)
	default:
		return fmt.Sprintf("Access: %s %s for %s", termsafe.String(q.App()), q.State, q.Route)
	}
}
