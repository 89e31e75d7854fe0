// Package previewcmd implements `pomdev preview`: internal/preview's local
// MCP Apps host as a command, interactive in the browser or, with
// --check, one headless render for CI.
package previewcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/pomdev/pomdev/internal/mcpcheck"
	"github.com/pomdev/pomdev/internal/preview"
	"github.com/pomdev/pomdev/internal/termsafe"
	"github.com/spf13/cobra"
)

// Options are the inputs of Run.
type Options struct {
	IO      *iostreams.IOStreams
	Ctx     context.Context
	URL     string
	Headers map[string]string
	// Open opens the page in the browser (nil: print the URL only).
	Open func(string) error
	// Login, when set (--login), signs in with OAuth when the server asks
	// (as inspect --login does, with the same token cache).
	Login *mcpcheck.Login

	Check      bool
	Tool       string
	Args       string
	Profile    string
	Theme      string
	Screenshot string
	Browser    string
	Width      int
	Height     int
	Wait       time.Duration
	Timeout    time.Duration
	JSON       bool
}

// NewCmdPreview returns the preview command.
func NewCmdPreview(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{}
	var target factory.MCPTarget
	var noBrowser bool
	cmd := &cobra.Command{
		Use:   "preview [URL]",
		Short: "Render an MCP app's widgets locally, as ChatGPT or Claude would",
		Long: `Serve a local MCP Apps host on 127.0.0.1 and open it in the browser. It lists the
server's tools, builds a form from each tool's inputSchema, calls the tool and
renders its widget with the official host-side bridge of
@modelcontextprotocol/ext-apps, in a sandboxed frame on its own origin whose
Content-Security-Policy comes from the resource's _meta.ui.csp. What the widget
gets is what a host sends: ui/initialize with the host context, the tool input,
the tool result, answers to its tools/call, ui/message and ui/open-link.

Switches on the page: the host profile (--profile: chatgpt, or claude, which
loads nothing from localhost), theme, display mode, locale and width. CSP
violations, console errors and uncaught exceptions of the widget are listed
next to it, with every message between widget and host. When the server
restarts or the widget changes, the page renders again with the last result.

--check renders one call headless in Chromium (chromium, chromium-browser or
google-chrome on PATH, or --browser) and exits non-zero on a CSP violation, a
console error, an uncaught exception or a widget that renders nothing: a widget
smoke test for CI. It also applies the host rules of the profile's host
(pomdev inspect --host: what ChatGPT or Claude refuses beyond the
specification); their errors fail the check too. --screenshot saves the render
as PNG.

URL defaults to inspect.url in pomdev.yaml, else the app's server process
(http://127.0.0.1:<port>/mcp); a tunnel's URL works too (--token, -H or --login
for one behind OAuth). The page and its API answer only at a URL with a random
token, from 127.0.0.1.

Exit codes (--check): 0 rendered with no problem, 1 a problem in the widget,
2 usage, 3 the server wants authorization, 4 unreachable or not an MCP server
or no browser, 5 the tool call failed (the widget rendered).`,
		Example: `  pomdev preview
  pomdev preview http://127.0.0.1:8080/mcp --profile claude --no-browser
  pomdev preview --check --tool echo --args '{"message":"hi"}'
  pomdev preview --check --tool echo --profile claude --theme dark --screenshot echo.png`,
		Args: factory.OneURL("preview"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			opts.IO, opts.Ctx = f.IOStreams, cmd.Context()
			if opts.URL, opts.Headers, opts.Login, err = target.Resolve(f, cfg, args); err != nil {
				return err
			}
			if _, err := preview.LookupProfile(opts.Profile); err != nil {
				return exitcode.Usagef("--profile: %v", err)
			}
			if opts.Theme != "light" && opts.Theme != "dark" {
				return exitcode.Usagef("--theme %q: want light or dark", opts.Theme)
			}
			if !opts.Check {
				for _, name := range []string{"tool", "args", "screenshot", "browser", "json", "width", "height", "wait", "timeout"} {
					if cmd.Flags().Changed(name) {
						return exitcode.Usagef("--%s goes with --check", name)
					}
				}
			} else if opts.Tool == "" {
				return exitcode.Usagef("--check needs --tool NAME (the tool whose widget to render)")
			}
			if opts.Width < 200 || opts.Width > 4096 || opts.Height < 200 || opts.Height > 4096 {
				return exitcode.Usagef("--width and --height: from 200 to 4096 pixels, got %d×%d", opts.Width, opts.Height)
			}
			if opts.Screenshot != "" {
				if fi, err := os.Stat(filepath.Dir(opts.Screenshot)); err != nil || !fi.IsDir() {
					return exitcode.Usagef("--screenshot %s: its directory does not exist", opts.Screenshot)
				}
			}
			if opts.Args != "" {
				var v map[string]any
				if err := json.Unmarshal([]byte(opts.Args), &v); err != nil {
					return exitcode.Usagef("--args: not a JSON object: %v", err)
				}
			}
			if !noBrowser {
				opts.Open = f.Browser()
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	fl := cmd.Flags()
	target.AddFlags(fl)
	fl.StringVar(&opts.Profile, "profile", preview.Profiles[0].Name, "host to emulate: "+profileNames())
	fl.StringVar(&opts.Theme, "theme", "light", "theme the host reports: light or dark")
	fl.BoolVar(&noBrowser, "no-browser", false, "print the page's URL without opening a browser")
	fl.BoolVar(&opts.Check, "check", false, "render once in headless Chromium and exit: non-zero on a problem")
	fl.StringVar(&opts.Tool, "tool", "", "with --check: the tool to call")
	fl.StringVar(&opts.Args, "args", "", "with --check: the tool's arguments as a JSON object")
	fl.StringVar(&opts.Screenshot, "screenshot", "", "with --check: save the render as this PNG file")
	fl.StringVar(&opts.Browser, "browser", "", "with --check: the Chromium to run (default: found on PATH)")
	fl.IntVar(&opts.Width, "width", 1024, "with --check: the page's width in pixels")
	fl.IntVar(&opts.Height, "height", 768, "with --check: the page's height in pixels")
	fl.DurationVar(&opts.Wait, "wait", 5*time.Second, "with --check: how long the widget may take to render anything")
	fl.DurationVar(&opts.Timeout, "timeout", 60*time.Second, "with --check: bound on the whole run")
	fl.BoolVar(&opts.JSON, "json", false, "with --check: print the result as JSON")
	return cmd
}

func profileNames() string {
	var out []string
	for _, p := range preview.Profiles {
		out = append(out, p.Name)
	}
	return strings.Join(out, ", ")
}

// Run serves the preview until interrupted, or renders once (--check).
func Run(opts *Options) error {
	var mu sync.Mutex // reports arrive from the page's requests, concurrently
	cs := opts.IO.ColorScheme()
	onReport := func(r preview.Report) {
		if opts.Check || r.Kind == "mounted" || r.Kind == "done" || r.Kind == "log" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		printReport(opts.IO.ErrOut, cs, r)
	}
	poll := time.Duration(0)
	if opts.Check {
		poll = -1
	}
	mo := mcpcheck.Options{URL: opts.URL, Headers: opts.Headers, Timeout: 30 * time.Second}
	if opts.Login != nil {
		h, done, err := opts.Login.Handler(opts.URL)
		if err != nil {
			return exitcode.New(exitcode.AuthRequired, fmt.Errorf("login: %w", err), "")
		}
		defer done()
		mo.OAuthHandler = h
		mo.Timeout += 5 * time.Minute // for the sign-in in the browser
	}
	srv, err := preview.Start(opts.Ctx, preview.Options{MCP: mo, OnReport: onReport, Poll: poll})
	if err != nil {
		return err
	}
	defer srv.Close()
	// Connect first: a wrong URL or a server asking for a sign-in is an
	// error here, with its exit code, not only a line on the page.
	tools, err := srv.Tools(opts.Ctx)
	if err != nil {
		return factory.Exit(err)
	}
	if opts.Check {
		return check(opts, srv, tools)
	}
	fmt.Fprintf(opts.IO.Out, "preview: %s\n", srv.URL())
	n := fmt.Sprintf("%d tools", len(tools))
	if len(tools) == 1 {
		n = "1 tool"
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s\n", cs.Gray(fmt.Sprintf("%s · %s, %d with a widget · Ctrl-C to stop", termsafe.String(opts.URL), n, len(withWidget(tools)))))
	if opts.Open != nil {
		if err := opts.Open(srv.URL()); err != nil {
			fmt.Fprintf(opts.IO.ErrOut, "could not open a browser (%v); open the URL above\n", err)
		}
	}
	<-opts.Ctx.Done()
	return opts.Ctx.Err()
}

func withWidget(tools []*mcp.Tool) []string {
	var out []string
	for _, t := range tools {
		if ui, _ := t.Meta["ui"].(map[string]any); ui != nil {
			if u, _ := ui["resourceUri"].(string); u != "" {
				out = append(out, t.Name)
			}
		} else if u, _ := t.Meta["ui/resourceUri"].(string); u != "" {
			out = append(out, t.Name)
		}
	}
	return out
}

func check(opts *Options, srv *preview.Server, tools []*mcp.Tool) error {
	found := false
	for _, t := range tools {
		found = found || t.Name == opts.Tool
	}
	widgets := withWidget(tools)
	if !found {
		return exitcode.Usagef("no tool %q on the server; tools with a widget: %s", opts.Tool, strings.Join(widgets, ", "))
	}
	args := json.RawMessage(opts.Args)
	if opts.Args == "" {
		args = json.RawMessage("{}")
	}
	started := time.Now().Add(-time.Second) // file times can be coarse
	res, err := srv.Check(opts.Ctx, preview.CheckOptions{Browser: opts.Browser, Tool: opts.Tool, Args: args, Profile: opts.Profile,
		Theme: opts.Theme, Width: opts.Width, Height: opts.Height, Screenshot: opts.Screenshot, Wait: opts.Wait, Timeout: opts.Timeout})
	if err != nil {
		if _, ok := err.(*preview.NoBrowserError); ok {
			return exitcode.New(exitcode.Unreachable, err, "install Chromium (Debian: apt-get install chromium) or give its path with --browser")
		}
		if opts.Ctx.Err() != nil {
			return opts.Ctx.Err()
		}
		return exitcode.New(exitcode.Unreachable, err, "")
	}
	profile, _ := preview.LookupProfile(opts.Profile)
	var advice []preview.Report // host rules' warnings: said, not failed
	for _, r := range res.Reports {
		if r.Kind == "advice" {
			advice = append(advice, r)
		}
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"url": opts.URL, "tool": opts.Tool, "profile": profile.Name, "theme": opts.Theme,
			"ok": res.OK(), "rendered": res.Done != nil && res.Done.Mounted, "text": text(res), "problems": nonNil(res.Problems),
			"advice": nonNil(advice), "screenshot": opts.Screenshot})
	} else {
		cs := opts.IO.ColorScheme()
		state := cs.Green("rendered")
		if !res.OK() {
			state = cs.Red("FAILED")
		}
		fmt.Fprintf(opts.IO.Out, "%s %s (%s, %s theme): %s\n", cs.Bold("widget of"), termsafe.String(opts.Tool), profile.Title, opts.Theme, state)
		if t := summary(text(res), 100); t != "" {
			fmt.Fprintf(opts.IO.Out, "  text: %s\n", termsafe.String(t))
		}
		for _, p := range res.Problems {
			printReport(opts.IO.Out, cs, p)
		}
		for _, r := range advice {
			printReport(opts.IO.Out, cs, r)
		}
		if res.Done != nil && !res.Done.Mounted {
			fmt.Fprintf(opts.IO.Out, "  %s the widget rendered nothing within %s\n", cs.Red("✗"), opts.Wait)
		}
		if opts.Screenshot != "" {
			fmt.Fprintf(opts.IO.Out, "  screenshot: %s\n", opts.Screenshot)
		}
	}
	if opts.Screenshot != "" {
		if fi, err := os.Stat(opts.Screenshot); err != nil || fi.ModTime().Before(started) {
			return exitcode.New(exitcode.Failure, fmt.Errorf("the browser wrote no screenshot to %s", opts.Screenshot), "check that the directory is writable")
		}
	}
	if !res.OK() {
		if toolOnly(res) {
			return exitcode.New(exitcode.ToolError, fmt.Errorf("the tool %s failed; its widget rendered", opts.Tool),
				"check --args against the tool's inputSchema (pomdev inspect lists it)")
		}
		return exitcode.New(exitcode.Failure, fmt.Errorf("the widget of %s failed the check: %d problem(s)", opts.Tool, len(res.Problems)),
			"each problem above says what blocked the widget; pomdev preview (without --check) shows it live")
	}
	return nil
}

// toolOnly: the widget rendered and the only problems are the tool's.
func toolOnly(r *preview.CheckResult) bool {
	if r.Done == nil || !r.Done.Mounted || len(r.Problems) == 0 {
		return false
	}
	for _, p := range r.Problems {
		if p.Kind != "tool" {
			return false
		}
	}
	return true
}

// summary is the widget's text on one line, at most n runes.
func summary(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

func text(r *preview.CheckResult) string {
	if r.Done == nil {
		return ""
	}
	return r.Done.Text
}

func nonNil(r []preview.Report) []preview.Report {
	if r == nil {
		return []preview.Report{}
	}
	return r
}

// printReport writes one finding of the page; everything in it came from
// the widget or the server and is escaped.
func printReport(w io.Writer, cs *iostreams.ColorScheme, r preview.Report) {
	e := termsafe.String
	label := map[string]string{"csp": "CSP", "console": "console", "error": "error", "host": "host", "tool": "tool", "message": "widget", "log": "log", "dropped": "…", "advice": "host"}[r.Kind]
	if label == "" {
		label = e(r.Kind)
	}
	mark := cs.Red("✗")
	switch r.Kind {
	case "message", "dropped":
		mark = cs.Gray("·")
	case "advice":
		mark = cs.Yellow("!")
	}
	subject := ""
	if r.Tool != "" {
		subject = e(r.Tool) + ": "
	}
	fmt.Fprintf(w, "  %s %s %s%s\n", mark, label, subject, e(r.Message))
	if r.Hint != "" {
		fmt.Fprintf(w, "    %s\n", cs.Gray("hint: "+e(r.Hint)))
	}
}
