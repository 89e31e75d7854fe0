// Package cli owns pomdev's command tree and its entry point: Main parses
// the arguments, runs one command with a context cancelled by Ctrl-C or
// SIGTERM, prints any error with what to do about it, and returns the exit
// code (see internal/exitcode).
package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pomdev/pomdev/internal/cli/accesscmd"
	"github.com/pomdev/pomdev/internal/cli/completion"
	"github.com/pomdev/pomdev/internal/cli/configcmd"
	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/cli/initcmd"
	"github.com/pomdev/pomdev/internal/cli/inspect"
	"github.com/pomdev/pomdev/internal/cli/knownhosts"
	"github.com/pomdev/pomdev/internal/cli/previewcmd"
	"github.com/pomdev/pomdev/internal/cli/relaycmd"
	"github.com/pomdev/pomdev/internal/cli/tunnelcmd"
	"github.com/pomdev/pomdev/internal/cli/up"
	"github.com/pomdev/pomdev/internal/cli/version"
	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/pomdev/pomdev/internal/supervise"
	"github.com/spf13/cobra"
)

// Main runs pomdev with args (without the program name) and returns the
// process exit code.
func Main(ctx context.Context, args []string, ios *iostreams.IOStreams) int {
	// A copy of pomdev started to lead a supervised process's group runs
	// as that and exits (internal/supervise, shim_linux.go).
	supervise.ShimMain()
	// Signals, and a reader gone from stdout, stop the run (signals.go).
	ctx, stop := stopSignals(ctx)
	defer stop()
	return run(ctx, factory.New(ios), args)
}

// run executes the command tree against f; tests call it with a prepared
// Factory.
func run(ctx context.Context, f *factory.Factory, args []string) int {
	root := NewCmdRoot(f)
	root.SetArgs(args)
	root.SetIn(f.IOStreams.In)
	root.SetOut(f.IOStreams.Out)
	root.SetErr(f.IOStreams.ErrOut)
	// The library packages' typed errors get their codes and hints here.
	err := factory.Exit(root.ExecuteContext(ctx))
	if err == nil {
		return exitcode.OK
	}
	if ctx.Err() != nil && !isTyped(err) {
		// Nobody reads a closed output: the run ends quietly.
		if !errors.Is(context.Cause(ctx), ErrOutputClosed) {
			fmt.Fprintln(f.IOStreams.ErrOut, describeStop(ctx))
		}
		return exitcode.Interrupted
	}
	if !errors.Is(err, factory.ErrSilent) {
		printError(f.IOStreams, err)
	}
	return exitcode.Code(err)
}

func isTyped(err error) bool {
	var e *exitcode.Error
	return errors.As(err, &e)
}

// printError writes "Error: ..." (several lines for joined errors) and the
// hint, in red on a terminal.
func printError(ios *iostreams.IOStreams, err error) {
	cs := &iostreams.ColorScheme{}
	if ios.IsStderrTTY() {
		cs = ios.ColorScheme()
	}
	lines := strings.Split(strings.TrimRight(err.Error(), "\n"), "\n")
	fmt.Fprintf(ios.ErrOut, "%s %s\n", cs.Red("Error:"), lines[0])
	for _, l := range lines[1:] {
		fmt.Fprintf(ios.ErrOut, "  %s\n", l)
	}
	if h := exitcode.Hint(err); h != "" {
		fmt.Fprintf(ios.ErrOut, "%s %s\n", cs.Yellow("Hint:"), h)
	}
}

// RootOptions are the global flags.
type RootOptions struct {
	ConfigFile string
	Version    bool
}

// NewCmdRoot builds the command tree.
func NewCmdRoot(f *factory.Factory) *cobra.Command {
	opts := &RootOptions{}
	cmd := &cobra.Command{
		Use:   "pomdev",
		Short: "Build, run and share MCP apps",
		Long: `pomdev is the command-line companion for building MCP apps: MCP servers with
interactive widgets that ChatGPT, Claude and other hosts call. It scaffolds an
app, runs its server and widget processes, opens a public HTTPS tunnel through
pom.run or a relay you host, and checks the server the way a host would.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		// Root accepts no positional arguments: anything left is a mistyped
		// command.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			if cmd.SuggestionsMinimumDistance <= 0 {
				cmd.SuggestionsMinimumDistance = 2
			}
			msg := fmt.Sprintf("unknown command %q for pomdev", args[0])
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
			}
			return exitcode.Usagef("%s\nRun 'pomdev --help' for usage.", msg)
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			// Help must work even when the configuration is broken: it is
			// how the user learns to fix it.
			if cmd.Name() == "help" || strings.HasPrefix(cmd.Name(), cobra.ShellCompRequestCmd) {
				return nil
			}
			f.ConfigOptions.ConfigFile = opts.ConfigFile
			f.ConfigOptions.Flags = factory.FlagBindings(cmd)
			return f.LoadConfig()
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Version {
				return version.Run(&version.Options{Out: f.IOStreams.Out, Info: buildInfo()})
			}
			return cmd.Help()
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return exitcode.Usagef("%v\nRun '%s --help' for usage.", err, c.CommandPath())
	})
	cmd.CompletionOptions.DisableDefaultCmd = true

	pf := cmd.PersistentFlags()
	pf.StringVar(&opts.ConfigFile, "config", "", "configuration file (default ./pomdev.yaml; env "+config.EnvConfig+")")
	pf.String("log-level", "info", "log level: "+strings.Join(config.LogLevels, ", "))
	pf.String("log-format", "text", "log format on stderr: "+strings.Join(config.LogFormats, ", "))
	factory.BindFlag(pf, "log-level", "log.level")
	factory.BindFlag(pf, "log-format", "log.format")
	cmd.Flags().BoolVarP(&opts.Version, "version", "v", false, "print the version and exit")

	// The workflow commands (init, up, inspect, tunnel, relay) go in
	// "main"; the group is shown only when it has commands.
	mainCmds := []*cobra.Command{
		initcmd.NewCmdInit(f, nil),
		up.NewCmdUp(f, nil),
		inspect.NewCmdInspect(f, nil),
		previewcmd.NewCmdPreview(f, nil),
		tunnelcmd.NewCmdTunnel(f, nil),
		relaycmd.NewCmdRelay(f, nil),
	}
	if len(mainCmds) > 0 {
		cmd.AddGroup(&cobra.Group{ID: "main", Title: "Commands:"})
		for _, c := range mainCmds {
			c.GroupID = "main"
			cmd.AddCommand(c)
		}
	}
	cmd.AddGroup(&cobra.Group{ID: "more", Title: "More commands:"})
	for _, c := range []*cobra.Command{
		accesscmd.NewCmdAccess(f),
		configcmd.NewCmdConfig(f),
		knownhosts.NewCmdKnownHosts(f),
		completion.NewCmdCompletion(f, nil),
		version.NewCmdVersion(f, nil),
	} {
		c.GroupID = "more"
		cmd.AddCommand(c)
	}
	cmd.SetHelpCommandGroupID("more")
	cmd.AddCommand(newExitCodesTopic())
	return cmd
}

// newExitCodesTopic is `pomdev help exit-codes`.
func newExitCodesTopic() *cobra.Command {
	var b strings.Builder
	b.WriteString("pomdev exits with one of these codes, so scripts and CI can tell failures apart:\n\n")
	for _, row := range exitcode.Table {
		fmt.Fprintf(&b, "  %3d  %s\n", row.Code, row.Meaning)
	}
	b.WriteString("\npomdev inspect uses 1 to 5 the way the MCP Inspector CLI does. Errors are\nprinted on stderr with what failed and, where there is one, a hint of what to do.")
	return &cobra.Command{
		Use:   "exit-codes",
		Short: "Exit codes and what they mean",
		Long:  b.String(),
	}
}
