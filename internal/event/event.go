// Package event defines the typed events pomdev's long-running parts emit
// (requests through a tunnel, what the tunnel client does) so that terminal
// screens, log lines and machine-readable streams render the same facts.
package event

import (
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/pomdev/pomdev/internal/termsafe"
)

// Request is one HTTP request that went through a tunnel.
type Request struct {
	Time     time.Time     `json:"time"`
	Route    string        `json:"route,omitempty"`
	Method   string        `json:"method"`
	Path     string        `json:"path"`
	Status   int           `json:"status"`
	Bytes    int64         `json:"bytes"`
	Duration time.Duration `json:"duration_ns"`
	// For MCP POSTs: the JSON-RPC method, id and tool name (tools/call).
	RPCMethod string `json:"rpc_method,omitempty"`
	RPCID     string `json:"rpc_id,omitempty"`
	Tool      string `json:"tool,omitempty"`
	// Partial: the JSON-RPC fields were read from the head of a large
	// body only (mcpwire.PeekRequest), and are unverified.
	Partial bool `json:"partial,omitempty"`
	// Err says why the request failed inside the tunnel, if it did.
	Err string `json:"error,omitempty"`
}

// Line renders the request as one log line:
//
//	21:04:05 POST /mcp 200 3ms tools/call echo
//
// Every field that came from the request is escaped (termsafe), so the
// line is safe on a terminal whoever sent the request.
func (r Request) Line() string {
	b := make([]byte, 0, 64+len(r.Path)+len(r.RPCMethod)+len(r.Tool))
	b = r.Time.AppendFormat(b, "15:04:05")
	b = append(b, ' ')
	b = append(b, termsafe.String(r.Method)...)
	b = append(b, ' ')
	b = append(b, termsafe.String(r.Path)...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, ' ')
	b = append(b, FormatDuration(r.Duration)...)
	if r.RPCMethod != "" {
		b = append(append(b, ' '), termsafe.String(r.RPCMethod)...)
	}
	if r.Tool != "" {
		b = append(append(b, ' '), termsafe.String(r.Tool)...)
	}
	if r.Err != "" {
		b = append(append(append(b, " ("...), termsafe.String(r.Err)...), ')')
	}
	return string(b)
}

// FormatDuration rounds d for display: 850µs, 12ms, 1.4s.
func FormatDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}

// Tunnel kinds.
const (
	TunnelConnecting   = "connecting"
	TunnelSignIn       = "sign-in"
	TunnelConnected    = "connected"
	TunnelReady        = "ready" // the remote URL is known
	TunnelRequest      = "request"
	TunnelRefused      = "refused" // a destination outside the targets
	TunnelHolding      = "holding" // a request waits for the target to accept
	TunnelLog          = "log"
	TunnelDisconnected = "disconnected"
	TunnelAccess       = "access" // an app asks the owner for access (a pomdev relay's OAuth)
)

// Access is an OAuth access request for a tunnel's route, or its
// decision: what a pomdev relay stores, shows its owner and sends on
// pomdev-events, and what the tunnel client reads back.
type Access struct {
	Code         string `json:"code"` // XXXX-XXXX, shown on the page and in the terminal
	Route        string `json:"route"`
	Owner        string `json:"owner"`
	ClientID     string `json:"client_id"`
	ClientName   string `json:"client_name"` // what the app calls itself: a claim
	RedirectHost string `json:"redirect_host"`
	// Verified is who the app provably is: the host its client ID metadata
	// document was fetched from over HTTPS (chatgpt.com); "" for an app
	// that registered itself.
	Verified string `json:"verified,omitempty"`
	// Registered is the address a self-registered app (dynamic client
	// registration) registered from: its name and redirect are its own
	// word.
	Registered string `json:"registered,omitempty"`
	// Mismatch says where the app's claims disagree with each other: its
	// name with its host, its redirect with its document's host.
	Mismatch string `json:"mismatch,omitempty"`
	// Person is who signed in at the relay's identity provider for the
	// app (--http-auth oidc with owner approval), "" otherwise.
	Person    string    `json:"person,omitempty"`
	State     string    `json:"state"` // pending, approved, denied
	DecidedBy string    `json:"decided_by,omitempty"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
}

// Tunnel is something the tunnel client did.
type Tunnel struct {
	Kind    string    `json:"kind"`
	Time    time.Time `json:"time"`
	URL     string    `json:"url,omitempty"`
	Message string    `json:"message,omitempty"`
	Request *Request  `json:"request,omitempty"`
	Access  *Access   `json:"access,omitempty"`
	Attempt int       `json:"attempt,omitempty"`
	Err     string    `json:"error,omitempty"`
}

// App is the asking app as the owner should see it: first who it
// provably is, then what it calls itself, where the two disagree, and the
// person signed in for it when there is one.
func (a Access) App() string {
	s := a.Identity()
	if a.Person != "" {
		s += ", signed in as " + a.Person
	}
	return s
}

// Identity is who the app is: `chatgpt.com (calls itself "ChatGPT")` for
// a metadata document's client, `"Claude Code", registered dynamically
// from ADDRESS, unverified` for a registration; its name alone from a
// relay that says neither.
func (a Access) Identity() string {
	var s string
	switch {
	case a.Verified != "":
		s = a.Verified
		if a.ClientName != "" && a.ClientName != a.ClientID {
			s += ` (calls itself "` + a.ClientName + `")`
		}
	case a.Registered != "":
		s = `"` + a.ClientName + `", registered dynamically from ` + a.Registered + ", unverified"
	default:
		return a.ClientName
	}
	if a.Mismatch != "" {
		s += "; " + a.Mismatch
	}
	return s
}

// ScreenLines is an access request waiting for a decision on a screen width
// columns wide, each line at most width wide: first the code and where
// the app returns, which are never cut (a long host is wrapped onto
// lines of its own), then who asks and for which route, wrapped onto at
// most three lines, the last cut to the width if need be. Text from the network is made terminal-safe; code styles the code.
func (a Access) ScreenLines(width int, mark string, code func(string) string) []string {
	width = max(width, 24)
	host := termsafe.String(a.RedirectHost)
	head := mark + " code " + code(a.Code) + " · returns to "
	headCols := ansi.StringWidth(head)
	var lines []string
	if headCols+ansi.StringWidth(host) <= width {
		lines = append(lines, head+host)
	} else {
		lines = append(lines, strings.TrimSuffix(head, " · returns to "), "  returns to")
		for rest := []rune(host); len(rest) > 0; {
			n := min(len(rest), width-4)
			lines = append(lines, ansi.Truncate("    "+string(rest[:n]), width, ""))
			rest = rest[n:]
		}
	}
	// Who asks comes first on its lines, wrapped rather than cut (the
	// verified host and the warnings matter most), at most three lines.
	app := ansi.Wrap(termsafe.String(a.App())+" asks for "+termsafe.String(a.Route), width-2, " ")
	wrapped := strings.Split(app, "\n")
	if len(wrapped) > 3 {
		wrapped = append(wrapped[:2], wrapped[2]+" "+strings.Join(wrapped[3:], " "))
	}
	for _, l := range wrapped {
		lines = append(lines, ansi.Truncate("  "+strings.TrimLeft(l, " "), width, "…"))
	}
	return lines
}
