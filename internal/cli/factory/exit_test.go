package factory

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/devloop"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/mcpcheck"
	"github.com/pomdev/pomdev/internal/scaffold"
	"github.com/pomdev/pomdev/internal/tunnel"
)

// Every typed error of the library packages gets its documented exit code
// and a hint naming what to do, wrapped or not; coded errors pass as they
// are.
func TestExit(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		err  error
		code int
		hint string // a part of it; "" for none
		msg  string // a part of the message
	}{
		{&config.Error{Key: "restart", Msg: "bad"}, exitcode.Usage, "", "restart: bad"},
		{&devloop.ConfigError{Err: boom}, exitcode.Usage, "", "boom"},
		{&devloop.PortInUseError{Port: 8080, Process: "server", Holder: "node (pid 1)"}, exitcode.Failure, "tunnel.target together", "port 8080 of server"},
		{&devloop.RelayError{Err: boom}, exitcode.Usage, "", "--relay: boom"},
		{&devloop.WatchError{Dir: "/app", Err: boom}, exitcode.Failure, "inotify", "watching /app: boom"},
		{&mcpcheck.URLError{URL: "ftp://x"}, exitcode.Usage, "", "not an http(s) URL"},
		{&mcpcheck.ArgsError{Err: boom}, exitcode.Usage, "", "--args: boom (give a JSON object"},
		{&mcpcheck.ToolError{Tool: "echo", Err: boom}, exitcode.ToolError, "--args against tools/list", "tools/call echo: boom"},
		{&mcpcheck.ToolError{Tool: "echo", Err: mcpcheck.ErrToolFailed}, exitcode.ToolError, "", "the tool reported an error"},
		{&mcpcheck.AuthError{URL: "http://x/mcp"}, exitcode.AuthRequired, "--login", "requires authorization"},
		{&mcpcheck.ConnectError{URL: "http://x/mcp", Err: boom, Reason: mcpcheck.ConnectTimeout}, exitcode.Unreachable, "raise --timeout", "within the timeout"},
		{&mcpcheck.ConnectError{URL: "http://x/mcp", Err: boom, Reason: mcpcheck.ConnectNetwork}, exitcode.Unreachable, "pomdev up starts it", "http://x/mcp: boom"},
		{&mcpcheck.ConnectError{URL: "http://x/mcp", Err: boom}, exitcode.Unreachable, "usually serve Streamable HTTP at /mcp", "does not answer as an MCP server"},
		{&mcpcheck.StepError{Step: "tools/list", Err: boom, Timeout: true}, exitcode.Unreachable, "raise --timeout", "tools/list: no answer"},
		{&mcpcheck.StepError{Step: "tools/list", Err: boom}, exitcode.Unreachable, "", "tools/list failed"},
		{&scaffold.NameError{Name: "A", Rule: "it has capital letters"}, exitcode.Usage, "", "capital letters"},
		{&scaffold.NotEmptyError{Dir: "/d"}, exitcode.Usage, "--force", "/d is not empty"},
		{&scaffold.ConflictError{Dir: "/d", Files: []string{"a"}}, exitcode.Failure, "move those files away", "nothing was written"},
		{&tunnel.HostKeyChangedError{Host: "127.0.0.1:2222", Old: "a", New: "b"}, exitcode.Failure, "pomdev known-hosts forget 127.0.0.1", "host key changed"},
		{&tunnel.KeyRefusedError{Addr: "r:22", Err: boom}, exitcode.AuthRequired, "--identity", "relay r:22 refused the key"},
		{&tunnel.UnreachableError{Addr: "r:22", Err: boom}, exitcode.Unreachable, "--relay", "boom"},
		{exitcode.New(exitcode.ToolError, &tunnel.UnreachableError{Err: boom}, "as it was"), exitcode.ToolError, "as it was", "boom"},
		{context.Canceled, exitcode.Interrupted, "", "canceled"},
		{boom, exitcode.Failure, "", "boom"},
	} {
		for _, err := range []error{tc.err, fmt.Errorf("up: %w", tc.err)} {
			got := Exit(err)
			if code := exitcode.Code(got); code != tc.code {
				t.Errorf("%T %v: code %d, want %d", tc.err, err, code, tc.code)
			}
			if h := exitcode.Hint(got); (tc.hint == "") != (h == "") || !strings.Contains(h, tc.hint) {
				t.Errorf("%T: hint %q, want %q", tc.err, h, tc.hint)
			}
			if !strings.Contains(got.Error(), tc.msg) || !errors.Is(got, tc.err) {
				t.Errorf("%T: message %q, want %q and the error in the chain", tc.err, got, tc.msg)
			}
		}
	}
	if Exit(nil) != nil {
		t.Fatal("nil became an error")
	}
}
