package up

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/x/ansi"
	"github.com/pomdev/pomdev/internal/devloop"
	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/mcpcheck"
	"github.com/pomdev/pomdev/internal/supervise"
	"github.com/pomdev/pomdev/internal/termsafe"
	"github.com/pomdev/pomdev/internal/tui"
)

// kindURL is the line that gives the dashboard the remote URL; plain
// output has the "Remote URL:" line instead.
const kindURL = "url"

// kindPreview carries the preview page's URL: the dashboard keeps it for
// its p key; plain output prints "Preview: URL".
const kindPreview = "preview"

// render turns one event into the lines `up` shows, each with the kind
// that routes it to a dashboard pane. It is pure: the same event always
// gives the same lines. Text from the network (requests, the relay, the
// MCP server) and from processes may carry terminal controls: every line
// is escaped, and process output loses its colours too.
func render(e devloop.Event) []tui.Line {
	var out []tui.Line
	add := func(kind, format string, args ...any) {
		out = append(out, tui.Line{Kind: kind, Text: termsafe.String(fmt.Sprintf(format, args...))})
	}
	switch e := e.(type) {
	case devloop.Assumed:
		add("assumed", "no pomdev.yaml: %s (pomdev up --write-config saves this)", e.Summary)
	case devloop.Inline:
		add("inline", "serving self-contained widgets (inline settings of pomdev.yaml)")
	case devloop.MissingModules:
		if e.Process != "" {
			add("hint", "%s cannot find its npm packages: run npm install in %s", e.Process, e.Dir)
		} else {
			add("hint", "%s has a package.json but no node_modules: run npm install there (pomdev init --no-install skips it)", e.Dir)
		}
	case devloop.Process:
		return renderProcess(e.Event)
	case devloop.ProcessFailed:
		add("error", "%s: %v", e.Process, e.Err)
	case devloop.CheckStale:
		add("check", "check: %s down since %s; the last check is stale", e.Process, e.Since.Format("15:04:05"))
	case devloop.IdentityCreated:
		add("identity", "created pomdev's key (%s)", e.Fingerprint)
	case devloop.LocalRelay:
		add("relay", "local relay on %s (SSH %s)", e.URL, e.SSHAddr)
	case devloop.Tunnel:
		return renderTunnel(e)
	case devloop.RelayUnreachable:
		add("unreachable", "%s unreachable: %s · retrying in %s (offline: pomdev up --relay local; without a tunnel: --no-tunnel)", e.Relay, e.Reason, e.Wait)
	case devloop.TunnelFailed:
		add("error", "tunnel: %v", e.Err)
	case devloop.OwnerControlUnavailable:
		add("tunnel", "pomdev access will not reach this tunnel: %v", e.Err)
	case devloop.CheckLocal:
		if e.Err != nil {
			add("check", "check (%s): local %s failed: %v", e.Cause, e.URL, e.Err)
			break
		}
		add("check", "check (%s): local OK, %s: %s; %s", e.Cause, plural(len(e.Tools), "tool"), strings.Join(e.Tools, ", "), lintSummary(e.Errors, e.URL))
	case devloop.ToolsChanged:
		add("check", "tools changed: added [%s], removed [%s], changed schemas [%s]; hosts cache tool lists: %s",
			strings.Join(e.Added, ", "), strings.Join(e.Removed, ", "), strings.Join(e.Changed, ", "), RefreshHint)
	case devloop.CheckTunnel:
		switch {
		case e.Protected:
			add("check", "check: through the tunnel: protected by OAuth — tunnel OK")
		case e.Err != nil:
			add("check", "check: through the tunnel failed: %v", e.Err)
		case e.Gated:
			add("check", "check: through the tunnel OK (%s, as its owner through the relay's OAuth gate)", e.URL)
		default:
			add("check", "check: through the tunnel OK (%s)", e.URL)
		}
		for _, w := range e.LocalhostWidgets {
			add("check", "warning: widget %s loads assets from localhost, which hosts such as Claude.ai cannot reach; run pomdev up --inline (or serve the widgets from a public origin)", w)
		}
		// Only what a host would refuse: the usual case keeps the pane as it is.
		for _, f := range e.Hosts {
			add("check", "hosts: %s %s [%s] %s: %s; fix: %s", f.Severity, f.Rule, f.Host, f.Subject, f.Message, f.Fix)
		}
	case devloop.Preview:
		add(kindPreview, "%s", e.URL)
	case devloop.Stopping:
		add("stopping", "stopping...")
	}
	return out
}

func renderProcess(e supervise.Event) []tui.Line {
	line := func(kind, format string, args ...any) []tui.Line {
		return []tui.Line{{Kind: kind, Process: e.Process, Text: termsafe.String(fmt.Sprintf(format, args...))}}
	}
	switch e.Kind {
	case supervise.Output:
		return []tui.Line{{Kind: "output", Process: e.Process, Text: termsafe.String(ansi.Strip(e.Line))}}
	case supervise.Started:
		return line("started", "%s started (pid %d)", e.Process, e.PID)
	case supervise.Ready:
		return line("ready", "%s ready (pid %d)", e.Process, e.PID)
	case supervise.NotReady:
		return line("not-ready", "%s is not ready: %v", e.Process, e.Err)
	case supervise.Exited:
		if e.Output != "" {
			return line("exited", "%s exited (code %d): %s", e.Process, e.Code, e.Output)
		}
		return line("exited", "%s exited (code %d)", e.Process, e.Code)
	case supervise.Restarting:
		if e.Wait > 0 {
			return line("restarting", "%s %s; restarting in %s", e.Process, e.Cause, e.Wait)
		}
		return line("restarted", "%s restarted: %s", e.Process, e.Cause)
	case supervise.CrashLoop:
		return line("crash-loop", "%s keeps crashing: %s", e.Process, e.Cause)
	}
	return nil
}

func renderTunnel(e devloop.Tunnel) []tui.Line {
	var out []tui.Line
	add := func(kind, format string, args ...any) {
		out = append(out, tui.Line{Kind: kind, Text: termsafe.String(fmt.Sprintf(format, args...))})
	}
	switch e.Kind {
	case event.TunnelSignIn:
		add("sign-in", "%s: %s (waiting for approval)", e.Message, e.URL)
	case event.TunnelReady:
		add(kindURL, "%s", e.URL)
		add("ready", "Remote URL: %s", e.URL)
		if e.Local {
			add("ready", "MCP endpoint: %s/mcp (this machine only: ChatGPT and Claude cannot reach it; without --relay, pom.run gives a public URL)", e.URL)
		} else {
			add("ready", "MCP endpoint: %s/mcp (paste it into ChatGPT or Claude)", e.URL)
		}
	case event.TunnelRequest:
		if e.Request == nil {
			break
		}
		line := e.Request.Line()
		if e.Request.RPCMethod == "server/discover" && e.Request.Status == 400 {
			// pomdev's check asks for the newest protocol first.
			line += " (protocol probe: the server speaks an earlier MCP version; not an error)"
		}
		add("request", "%s", line)
	case event.TunnelDisconnected:
		add("disconnected", "tunnel disconnected (%s); %s", e.Err, e.Message)
	case event.TunnelRefused, event.TunnelLog, event.TunnelHolding:
		add("tunnel", "%s", e.Message)
	case event.TunnelAccess:
		if a := e.Access; a != nil && a.State == "pending" {
			add("access", "access: %s (%s) asks for %s · code %s · approve: a in the dashboard, or pomdev access approve %s",
				a.App(), a.RedirectHost, a.Route, a.Code, a.Code)
		} else if a != nil {
			add("access", "access: %s %s for %s (%s)", a.App(), a.State, a.Route, a.DecidedBy)
		}
	}
	return out
}

// lintSummary is the check's word on lint errors, naming the first.
func lintSummary(errs []mcpcheck.Finding, url string) string {
	switch len(errs) {
	case 0:
		return "0 lint errors"
	case 1:
		return fmt.Sprintf("1 lint error: %s %s: %s (pomdev inspect %s)", errs[0].Rule, errs[0].Subject, errs[0].Message, url)
	}
	return fmt.Sprintf("%d lint errors, first %s %s: %s (pomdev inspect %s)", len(errs), errs[0].Rule, errs[0].Subject, errs[0].Message, url)
}

// plural is "1 tool", "2 tools".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// RefreshHint is how to make each host read a changed tool list again
// (they cache it per connector; the tunnel's URL stays the same, so the
// connector need not be made again).
const RefreshHint = "refresh each host's copy (ChatGPT: Settings → Apps → the app → Refresh; Claude: Settings → Connectors → the connector → Disconnect, then Connect); the URL stays the same"
