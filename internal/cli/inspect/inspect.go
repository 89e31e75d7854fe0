// Package inspect implements `pomdev inspect`: the MCP client check of
// internal/mcpcheck as a command, with a readable report or JSON, and exit
// codes for scripts and CI.
package inspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/pomdev/pomdev/internal/mcpcheck"
	"github.com/pomdev/pomdev/internal/termsafe"
	"github.com/spf13/cobra"
)

// Options are the inputs of Run.
type Options struct {
	IO      *iostreams.IOStreams
	Ctx     context.Context
	URL     string
	Headers map[string]string
	Call    string
	Args    string
	JSON    bool
	Strict  bool
	Timeout time.Duration
	// Client is the client profile (--client); NoApps leaves out the MCP
	// Apps extension (--no-apps).
	Client string
	NoApps bool
	// Hosts are the hosts whose rules apply (--host): chatgpt, claude.
	Hosts []string
	// Login, when set (--login), uses and refreshes cached tokens and logs
	// in through the browser on a 401.
	Login *mcpcheck.Login
	// HTTPClient replaces the default (tests).
	HTTPClient *http.Client
}

// NewCmdInspect returns the inspect command.
func NewCmdInspect(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{}
	var target factory.MCPTarget
	var host string
	cmd := &cobra.Command{
		Use:   "inspect [URL]",
		Short: "Check an MCP server as a host would: tools, resources, MCP Apps lint",
		Long: `Connect to an MCP server over Streamable HTTP (protocol 2026-07-28 or 2025-11-25),
declaring roots and the MCP Apps extension (--client and --no-apps change what
it declares), and report: the handshake, every tool (all pages) and its widget
binding, resources and templates, the UI resources tools reference (read even
when not listed) with the CSP a host applies, prompts, and optionally one tool
call, checked against its outputSchema. Each step is timed. The MCP Apps lint
follows the specification; docs/INSPECT.md lists its rules.

--host chatgpt|claude|all adds what those hosts will do with the widgets beyond
the specification (CSP on the tool, widgets withheld from clients without the
extension, localhost or private addresses behind a public URL, Claude's widget
domain, sources Claude strips, ChatGPT's openai/outputTemplate and domain);
for Claude the server is read a second time as Claude reads it (no MCP Apps
extension declared, Claude's User-Agent). Each finding names its host, the
rule and its source; docs/INSPECT.md lists them.

--login signs in with the official Go SDK's OAuth client when the server asks
(discovery, PKCE, dynamic registration, refresh, step-up); tokens are cached.

URL defaults to inspect.url in pomdev.yaml, else the app's server process
(http://127.0.0.1:<port>/mcp).

Exit codes: 0 ok, 1 lint errors (warnings too with --strict), 2 usage, 3 the
server wants authorization, 4 unreachable or not an MCP server, 5 the called
tool failed.`,
		Example: `  pomdev inspect http://127.0.0.1:8080/mcp
  pomdev inspect https://my-app.pom.run/mcp --token "$TOKEN" --json
  pomdev inspect https://my-app.pom.run/mcp --login
  pomdev inspect --call echo --args '{"text":"hi"}'
  pomdev inspect https://my-app.pom.run/mcp --host all`,
		Args: factory.OneURL("inspect"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			opts.IO, opts.Ctx = f.IOStreams, cmd.Context()
			opts.Timeout = cfg.Inspect.Timeout
			if opts.URL, opts.Headers, opts.Login, err = target.Resolve(f, cfg, args); err != nil {
				return err
			}
			if opts.Args != "" && opts.Call == "" {
				return exitcode.Usagef("--args needs --call TOOL")
			}
			if host != "" {
				if opts.Hosts, err = mcpcheck.ParseHosts(host); err != nil {
					return exitcode.Usagef("%v", err)
				}
			}
			if !slices.Contains(mcpcheck.Profiles, opts.Client) {
				return exitcode.Usagef("--client %q: want %s", opts.Client, strings.Join(mcpcheck.Profiles, ", "))
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	fl := cmd.Flags()
	target.AddFlags(fl)
	fl.StringVar(&opts.Call, "call", "", "call this tool after listing")
	fl.StringVar(&opts.Args, "args", "", "the tool's arguments as a JSON object (with --call)")
	fl.BoolVar(&opts.JSON, "json", false, "print the report as JSON (schema in docs/INSPECT.md)")
	fl.BoolVar(&opts.Strict, "strict", false, "exit 1 on warnings too")
	fl.StringVar(&opts.Client, "client", mcpcheck.ProfileDefault, "client profile whose capabilities are declared: "+strings.Join(mcpcheck.Profiles, ", ")+" (docs/INSPECT.md)")
	fl.BoolVar(&opts.NoApps, "no-apps", false, "leave out the MCP Apps extension: see the text-only tools a host without it gets")
	fl.StringVar(&host, "host", "", "also check what these hosts will do with the widgets: chatgpt, claude or all (docs/INSPECT.md)")
	fl.Duration("timeout", 30*time.Second, "bound on the whole check")
	factory.BindFlag(fl, "timeout", "inspect.timeout")
	return cmd
}

// Run checks the server and prints the report.
func Run(opts *Options) error {
	var handler auth.OAuthHandler
	timeout := opts.Timeout
	if opts.Login != nil {
		h, done, err := opts.Login.Handler(opts.URL)
		if err != nil {
			return exitcode.New(exitcode.AuthRequired, fmt.Errorf("login: %w", err), "")
		}
		defer done()
		handler = h
		timeout += 5 * time.Minute // for the sign-in in the browser
	}
	copts := mcpcheck.Options{URL: opts.URL, Headers: opts.Headers, Timeout: timeout,
		Call: opts.Call, Args: json.RawMessage(opts.Args), HTTPClient: opts.HTTPClient, Client: opts.Client, NoApps: opts.NoApps,
		OAuthHandler: handler}
	rep, err := mcpcheck.Run(opts.Ctx, copts)
	if rep != nil && len(opts.Hosts) > 0 && (err == nil || errors.As(err, new(*mcpcheck.ToolError))) {
		if herr := mcpcheck.CheckHosts(opts.Ctx, copts, rep, opts.Hosts); herr != nil && err == nil {
			err = herr
		}
	}
	if rep != nil {
		if opts.JSON {
			enc := json.NewEncoder(opts.IO.Out)
			enc.SetIndent("", "  ")
			if err := enc.Encode(rep); err != nil {
				return err
			}
		} else {
			printReport(opts.IO.Out, opts.IO.ColorScheme(), rep)
		}
	}
	if err != nil {
		err = factory.Exit(err)
		if opts.JSON && rep == nil {
			// A script reading --json gets an object either way.
			enc := json.NewEncoder(opts.IO.Out)
			enc.SetIndent("", "  ")
			_ = enc.Encode(map[string]any{"url": opts.URL, "error": map[string]any{
				"message": err.Error(), "exitCode": exitcode.Code(err), "hint": exitcode.Hint(err)}})
		}
		return err
	}
	errs, warns := count(rep.Findings)
	if errs > 0 || opts.Strict && warns > 0 {
		return exitcode.New(exitcode.Failure, fmt.Errorf("%d lint error(s), %d warning(s)", errs, warns), "each finding above says how to fix it")
	}
	return nil
}

func count(fs []mcpcheck.Finding) (errs, warns int) {
	for _, f := range fs {
		switch f.Severity {
		case mcpcheck.SeverityError:
			errs++
		case mcpcheck.SeverityWarning:
			warns++
		}
	}
	return errs, warns
}

// printReport writes the text report. Everything the server sent is
// escaped (termsafe): a hostile server cannot drive the terminal.
func printReport(w io.Writer, cs *iostreams.ColorScheme, rep *mcpcheck.Report) {
	e := termsafe.String
	fmt.Fprintf(w, "%s %s %s (protocol %s) at %s\n", cs.Bold("MCP server"), e(rep.Server.Name), e(rep.Server.Version), e(rep.Protocol), cs.Cyan(e(rep.URL)))
	var steps []string
	for _, t := range rep.Timings {
		steps = append(steps, fmt.Sprintf("%s %.1fms", t.Step, t.MS))
	}
	fmt.Fprintln(w, cs.Gray("steps: "+strings.Join(steps, " · ")))

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\n%s\n", cs.Bold(fmt.Sprintf("TOOLS (%d)", len(rep.Tools))))
	for _, t := range rep.Tools {
		widget := "-"
		if t.UI != nil {
			switch {
			case t.UI.ResourceURI != "":
				widget = t.UI.ResourceURI + " (" + t.UI.Status + ")"
			default:
				widget = "no view (" + t.UI.Status + ")"
			}
			if v := t.UI.Visibility; len(v) > 0 {
				widget += " · " + strings.Join(v, "+")
			}
		}
		// One line per tool whatever the description holds.
		desc := []rune(e(strings.Join(strings.Fields(t.Description), " ")))
		if len(desc) > 60 {
			desc = append(desc[:57], []rune("...")...)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", e(t.Name), e(widget), string(desc))
	}
	if len(rep.Resources) > 0 {
		fmt.Fprintf(tw, "\n%s\n", cs.Bold(fmt.Sprintf("RESOURCES (%d)", len(rep.Resources))))
		for _, r := range rep.Resources {
			size := ""
			if r.Size > 0 {
				size = strconv.Itoa(r.Size) + " bytes"
			}
			listed := ""
			if !r.Listed {
				listed = "(not listed)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e(r.URI), e(r.MIMEType), size, listed)
		}
	}
	for _, r := range rep.Resources {
		if r.UI == nil {
			continue
		}
		fmt.Fprintf(tw, "\n%s\n", cs.Bold("WIDGET "+e(r.URI)))
		from := r.UI.From
		if from == "" {
			from = "none declared: the host allows no origin beyond its own"
		}
		fmt.Fprintf(tw, "  csp\t%s\n", e(from))
		for _, list := range []string{"connectDomains", "resourceDomains", "frameDomains", "baseUriDomains"} {
			if o := r.UI.CSP[list]; len(o) > 0 {
				fmt.Fprintf(tw, "    %s\t%s\n", list, e(strings.Join(o, " ")))
			}
		}
		if len(r.UI.Permissions) > 0 {
			fmt.Fprintf(tw, "  permissions\t%s\n", e(strings.Join(r.UI.Permissions, ", ")))
		}
		if r.UI.Domain != "" {
			fmt.Fprintf(tw, "  domain\t%s\n", e(r.UI.Domain))
		}
		if r.UI.PrefersBorder != nil {
			fmt.Fprintf(tw, "  prefersBorder\t%t\n", *r.UI.PrefersBorder)
		}
	}
	if len(rep.Templates) > 0 {
		fmt.Fprintf(tw, "\n%s\n", cs.Bold(fmt.Sprintf("RESOURCE TEMPLATES (%d)", len(rep.Templates))))
		for _, r := range rep.Templates {
			fmt.Fprintf(tw, "  %s\t%s\n", e(r.URITemplate), e(r.MIMEType))
		}
	}
	_ = tw.Flush()
	if len(rep.Prompts) > 0 {
		fmt.Fprintf(w, "\n%s %s\n", cs.Bold("PROMPTS:"), e(strings.Join(rep.Prompts, ", ")))
	}
	if rep.Call != nil {
		status := cs.Green("ok")
		if rep.Call.IsError {
			status = cs.Red("error")
		}
		fmt.Fprintf(w, "\n%s %s: %s %s\n", cs.Bold("CALL"), e(rep.Call.Tool), status, e(string(rep.Call.Content)))
		if len(rep.Call.StructuredContent) > 0 {
			fmt.Fprintf(w, "  structuredContent: %s\n", e(string(rep.Call.StructuredContent)))
		}
	}
	if len(rep.Findings) > 0 {
		fmt.Fprintf(w, "\n%s\n", cs.Bold("FINDINGS"))
		for _, f := range rep.Findings {
			sev := f.Severity
			switch sev {
			case mcpcheck.SeverityError:
				sev = cs.Red(sev)
			case mcpcheck.SeverityWarning:
				sev = cs.Yellow(sev)
			}
			rule := f.Rule
			if f.Host != "" {
				rule += " [" + f.Host + "]"
			}
			fmt.Fprintf(w, "  %-7s %s %s: %s\n          fix: %s\n", sev, rule, e(f.Subject), e(f.Message), e(f.Fix))
		}
	}
	errs, warns := count(rep.Findings)
	count := func(n int, noun string) string {
		if n == 1 {
			return "1 " + noun
		}
		return fmt.Sprintf("%d %ss", n, noun)
	}
	summary := count(len(rep.Tools), "tool") + ", " + count(len(rep.Resources), "resource") + ", " + count(errs, "error") + ", " + count(warns, "warning")
	if errs > 0 {
		summary = cs.Red(summary)
	} else {
		summary = cs.Green(summary)
	}
	fmt.Fprintf(w, "\n%s\n", summary)
}
