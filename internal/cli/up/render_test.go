package up

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/devloop"
	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/mcpcheck"
	"github.com/pomdev/pomdev/internal/supervise"
)

func TestRender(t *testing.T) {
	at := time.Date(2026, 12, 2, 12, 1, 5, 0, time.UTC)
	proc := func(e supervise.Event) devloop.Event { return devloop.Process{Event: e} }
	for _, tc := range []struct {
		name string
		e    devloop.Event
		want []string // kind|process|text
	}{
		{"started", proc(supervise.Event{Process: "server", Kind: supervise.Started, PID: 42}), []string{"started|server|server started (pid 42)"}},
		{"output without colours or controls", proc(supervise.Event{Process: "server", Kind: supervise.Output, Line: "\x1b[31mred\x1b[0m \x1b]0;title\x07"}),
			[]string{"output|server|red "}},
		{"crash with its error", proc(supervise.Event{Process: "server", Kind: supervise.Exited, Code: 1, Output: "tools.ts:63:53: ERROR: Expected identifier"}),
			[]string{"exited|server|server exited (code 1): tools.ts:63:53: ERROR: Expected identifier"}},
		{"restart asked for", proc(supervise.Event{Process: "server", Kind: supervise.Restarting, Cause: "a.ts changed"}), []string{"restarted|server|server restarted: a.ts changed"}},
		{"restart after a crash", proc(supervise.Event{Process: "server", Kind: supervise.Restarting, Cause: "exited", Wait: 2 * time.Second}),
			[]string{"restarting|server|server exited; restarting in 2s"}},
		{"stopped says nothing", proc(supervise.Event{Process: "server", Kind: supervise.Stopped}), nil},
		{"stale check", devloop.CheckStale{Process: "server", Since: at}, []string{"check||check: server down since 12:01:05; the last check is stale"}},
		{"missing modules", devloop.MissingModules{Dir: "/app"}, []string{"hint||/app has a package.json but no node_modules: run npm install there (pomdev init --no-install skips it)"}},
		{"crash loop on missing modules", devloop.MissingModules{Dir: "/app", Process: "server"}, []string{"hint||server cannot find its npm packages: run npm install in /app"}},
		{"unreachable", devloop.RelayUnreachable{Relay: "pom.run", Reason: "DNS lookup failed (pom.run)", Wait: 8 * time.Second},
			[]string{"unreachable||pom.run unreachable: DNS lookup failed (pom.run) · retrying in 8s (offline: pomdev up --relay local; without a tunnel: --no-tunnel)"}},
		{"ready on the local relay", devloop.Tunnel{Tunnel: event.Tunnel{Kind: event.TunnelReady, URL: "http://127.0.0.1:9"}, Local: true}, []string{
			"url||http://127.0.0.1:9", "ready||Remote URL: http://127.0.0.1:9",
			"ready||MCP endpoint: http://127.0.0.1:9/mcp (this machine only: ChatGPT and Claude cannot reach it; without --relay, pom.run gives a public URL)"}},
		{"ready on a relay", devloop.Tunnel{Tunnel: event.Tunnel{Kind: event.TunnelReady, URL: "https://a.pom.run"}}, []string{
			"url||https://a.pom.run", "ready||Remote URL: https://a.pom.run", "ready||MCP endpoint: https://a.pom.run/mcp (paste it into ChatGPT or Claude)"}},
		{"protocol probe", devloop.Tunnel{Tunnel: event.Tunnel{Kind: event.TunnelRequest, Request: &event.Request{Time: at, Method: "POST", Path: "/mcp", Status: 400, RPCMethod: "server/discover"}}},
			[]string{"request||12:01:05 POST /mcp 400 0s server/discover (protocol probe: the server speaks an earlier MCP version; not an error)"}},
		{"a request's controls escaped", devloop.Tunnel{Tunnel: event.Tunnel{Kind: event.TunnelLog, Message: "relay: \x1b]52;c;aGk=\x07\u009b"}},
			[]string{`tunnel||relay: \x1b]52;c;aGk=\x07\u009b`}},
		{"connecting says nothing", devloop.Tunnel{Tunnel: event.Tunnel{Kind: event.TunnelConnecting}}, nil},
		{"access request", devloop.Tunnel{Tunnel: event.Tunnel{Kind: event.TunnelAccess, Access: &event.Access{Code: "ABCD-EFGH", ClientName: "Claude", RedirectHost: "claude.ai", Route: "app", State: "pending"}}},
			[]string{"access||access: Claude (claude.ai) asks for app · code ABCD-EFGH · approve: a in the dashboard, or pomdev access approve ABCD-EFGH"}},
		{"check", devloop.CheckLocal{Cause: "server ready", URL: "http://127.0.0.1:1/mcp", Tools: []string{"echo"}},
			[]string{"check||check (server ready): local OK, 1 tool: echo; 0 lint errors"}},
		{"check with lint errors", devloop.CheckLocal{Cause: "i pressed", URL: "http://127.0.0.1:1/mcp", Tools: []string{"a", "b"},
			Errors: []mcpcheck.Finding{{Rule: "APP001", Subject: "a", Message: "bad"}, {Rule: "APP002", Subject: "b", Message: "worse"}}},
			[]string{"check||check (i pressed): local OK, 2 tools: a, b; 2 lint errors, first APP001 a: bad (pomdev inspect http://127.0.0.1:1/mcp)"}},
		{"local check failed", devloop.CheckLocal{Cause: "r", URL: "http://127.0.0.1:1/mcp", Err: errors.New("refused")},
			[]string{"check||check (r): local http://127.0.0.1:1/mcp failed: refused"}},
		{"tunnel check as the owner", devloop.CheckTunnel{URL: "http://a.localhost:1/mcp", Gated: true},
			[]string{"check||check: through the tunnel OK (http://a.localhost:1/mcp, as its owner through the relay's OAuth gate)"}},
		{"tunnel check with localhost widgets", devloop.CheckTunnel{URL: "https://a.pom.run/mcp", LocalhostWidgets: []string{"ui://echo"}}, []string{
			"check||check: through the tunnel OK (https://a.pom.run/mcp)",
			"check||warning: widget ui://echo loads assets from localhost, which hosts such as Claude.ai cannot reach; run pomdev up --inline (or serve the widgets from a public origin)"}},
		{"tunnel check behind OAuth", devloop.CheckTunnel{URL: "https://a.pom.run/mcp", Protected: true}, []string{"check||check: through the tunnel: protected by OAuth — tunnel OK"}},
		{"tunnel check with what a host refuses", devloop.CheckTunnel{URL: "https://a.pom.run/mcp", HostsChecked: true,
			Hosts: []mcpcheck.Finding{{Rule: "HOST004", Host: "claude", Severity: "error", Subject: "ui://echo", Message: "wrong domain\x1b[2J", Fix: "set it"}}}, []string{
			"check||check: through the tunnel OK (https://a.pom.run/mcp)",
			"check||hosts: error HOST004 [claude] ui://echo: wrong domain\\x1b[2J; fix: set it"}},
		{"tools changed", devloop.ToolsChanged{Added: []string{"new"}, Changed: []string{"echo"}},
			[]string{"check||tools changed: added [new], removed [], changed schemas [echo]; hosts cache tool lists: " + RefreshHint}},
		{"preview", devloop.Preview{URL: "http://127.0.0.1:1/p/t/"}, []string{"preview||http://127.0.0.1:1/p/t/"}},
		{"stopping", devloop.Stopping{}, []string{"stopping||stopping..."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, l := range render(tc.e) {
				got = append(got, l.Kind+"|"+l.Process+"|"+l.Text)
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// Plain lines: process output behind its name, no dashboard-only line,
// no terminal control; JSON lines carry kind and message.
func TestLines(t *testing.T) {
	var buf strings.Builder
	o := &lines{w: &buf}
	o.event(devloop.Process{Event: supervise.Event{Process: "server", Kind: supervise.Output, Line: "\x1b[1mhi\x1b[0m"}})
	o.event(devloop.Tunnel{Tunnel: event.Tunnel{Kind: event.TunnelReady, URL: "https://a.pom.run"}})
	want := "[server] hi\nRemote URL: https://a.pom.run\nMCP endpoint: https://a.pom.run/mcp (paste it into ChatGPT or Claude)\n"
	if buf.String() != want {
		t.Fatalf("got %q", buf.String())
	}
	buf.Reset()
	o.event(devloop.Preview{URL: "http://127.0.0.1:1/p/t/"})
	if buf.String() != "Preview: http://127.0.0.1:1/p/t/ (the app's widgets, rendered as a host would)\n" {
		t.Fatalf("preview line: %q", buf.String())
	}
	buf.Reset()
	o = &lines{w: &buf, json: true}
	o.event(devloop.Stopping{})
	if !strings.Contains(buf.String(), `"kind":"stopping","message":"stopping..."`) {
		t.Fatalf("json %q", buf.String())
	}
}
