package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/build"
	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/cli/factory/factorytest"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
)

func testFactory(t *testing.T, project string) *factory.Factory {
	t.Helper()
	f, _ := factorytest.New(t, project, nil)
	return f
}

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		project    string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"help", "", []string{"--help"}, 0, "Usage:", ""},
		{"version flag", "", []string{"--version"}, 0, "pomdev version v9.9.9", ""},
		{"unknown command", "", []string{"nope"}, exitcode.Usage, "", `Error: unknown command "nope"`},
		{"unknown flag", "", []string{"version", "--nope"}, exitcode.Usage, "", "unknown flag: --nope"},
		{"bad config", "log: {level: loud}\n", []string{"version"}, exitcode.Usage, "", `log.level: "loud" is not valid`},
		{"config show", "tunnel: {relay: r.example}\n", []string{"config", "show"}, 0, "r.example", ""},
		{"log flag", "", []string{"config", "show", "--log-level", "debug"}, 0, "flag --log-level", ""},
	}
	old := buildInfo
	buildInfo = func() build.Info { return build.Info{Version: "v9.9.9", GoVersion: "go", Platform: "p"} }
	t.Cleanup(func() { buildInfo = old })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testFactory(t, tt.project)
			ios, _, out, errOut := iostreams.Test()
			f.IOStreams = ios
			code := run(context.Background(), f, tt.args)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out, errOut)
			}
			if !strings.Contains(out.String(), tt.wantStdout) {
				t.Errorf("stdout %q lacks %q", out, tt.wantStdout)
			}
			if tt.wantStderr == "" && errOut.Len() > 0 {
				t.Errorf("unexpected stderr %q", errOut)
			}
			if !strings.Contains(errOut.String(), tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", errOut, tt.wantStderr)
			}
		})
	}
}

func TestInterruptedExitCode(t *testing.T) {
	f := testFactory(t, "")
	ios, _, _, errOut := iostreams.Test()
	f.IOStreams = ios
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	root := NewCmdRoot(f)
	// A command that waits for the context, as long-running ones do.
	root.AddCommand(newWaitCmd())
	root.SetArgs([]string{"wait"})
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	err := root.ExecuteContext(ctx)
	if code := exitcode.Code(err); code != exitcode.Interrupted {
		t.Fatalf("code %d (%v), want 130; stderr %s", code, err, errOut)
	}
}

func TestPrintErrorHint(t *testing.T) {
	ios, _, _, errOut := iostreams.Test()
	printError(ios, exitcode.New(exitcode.AuthRequired, errorString("401 from https://x/mcp\nsecond line"), "run: pomdev inspect --login"))
	want := "Error: 401 from https://x/mcp\n  second line\nHint: run: pomdev inspect --login\n"
	if errOut.String() != want {
		t.Fatalf("got %q\nwant %q", errOut, want)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
