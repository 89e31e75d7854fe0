package relaycmd

import (
	"context"
	"errors"
	"fmt"
	ctl "github.com/pomdev/pomdev/internal/relay/control"
	"net/http"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/pomdev/pomdev/internal/termsafe"
	"github.com/spf13/cobra"
)

// ControlOptions are the inputs of the commands that talk to a running
// relay over its control socket.
type ControlOptions struct {
	IO       *iostreams.IOStreams
	StateDir string
	Args     []string
}

// controlCmd builds a subcommand that reaches the relay of --state-dir.
func controlCmd(f *factory.Factory, use, short, long, example string, args cobra.PositionalArgs, run func(*ControlOptions) error) *cobra.Command {
	opts := &ControlOptions{}
	cmd := &cobra.Command{
		Use: use, Short: short, Long: long, Example: example, Args: args,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IO, opts.Args = f.IOStreams, args
			if err := resolveStateDir(f, cmd, &opts.StateDir); err != nil {
				return err
			}
			return run(opts)
		},
	}
	cmd.Flags().StringVar(&opts.StateDir, "state-dir", "", "the running relay's state directory")
	return cmd
}

// NewCmdAccess returns `pomdev relay access`.
func NewCmdAccess(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "access",
		Short: "List, approve or deny the OAuth access requests waiting on a running relay",
		Long: `An app (ChatGPT, Claude, an MCP client) that wants a tunnel's tools signs in on
the relay's authorize page, which shows a code; the tunnel's owner approves it
from their terminal (a on the status screen, or ssh RELAY pomdev-access approve
CODE). The relay's admin can decide any request with these commands, which talk
to the relay running with the same state directory over its control socket.`,
	}
	decide := func(deny bool) func(*ControlOptions) error {
		return func(o *ControlOptions) error {
			var a ctl.Answer
			if err := control(o, http.MethodPost, "/access", ctl.AccessDecision{Code: o.Args[0], Deny: deny}, &a); err != nil {
				return err
			}
			fmt.Fprintf(o.IO.Out, "%s %s for %s (%s)\n", termsafe.String(a.Request.App()), a.Request.State, a.Request.Route, a.Request.Code)
			return nil
		}
	}
	code := factory.ExactArgs(1, "the code the authorize page shows, for example KQ4M-7TXD")
	cmd.AddCommand(
		controlCmd(f, "approve CODE", "Approve a pending access request", "", "  pomdev relay access approve KQ4M-7TXD", code, decide(false)),
		controlCmd(f, "deny CODE", "Deny a pending access request", "", "  pomdev relay access deny KQ4M-7TXD", code, decide(true)),
		controlCmd(f, "list", "List the pending access requests", "", "", factory.NoArgs, func(o *ControlOptions) error {
			var a ctl.Answer
			if err := control(o, http.MethodGet, "/access", nil, &a); err != nil {
				return err
			}
			if len(a.Requests) == 0 {
				fmt.Fprintln(o.IO.Out, "No access request is waiting.")
				return nil
			}
			tw := tabwriter.NewWriter(o.IO.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CODE\tROUTE\tAPP\tRETURNS TO\tEXPIRES")
			for _, q := range a.Requests {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", q.Code, q.Route, termsafe.String(q.App()), termsafe.String(q.RedirectHost), time.Until(q.Expires).Round(time.Second))
			}
			return tw.Flush()
		}),
	)
	return cmd
}

// NewCmdGrants returns `pomdev relay grants`.
func NewCmdGrants(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "grants",
		Short: "List or revoke the approvals a running relay remembers",
		Long: `An approved app keeps its access (through refresh tokens) while its grant lasts
(--grant-ttl, 30 days by default). Revoking a grant ends every token issued
under it at once; the app has to ask the owner again.`,
	}
	cmd.AddCommand(
		controlCmd(f, "list", "List the grants", "", "", factory.NoArgs, func(o *ControlOptions) error {
			var a ctl.Answer
			if err := control(o, http.MethodGet, "/grants", nil, &a); err != nil {
				return err
			}
			if len(a.Grants) == 0 {
				fmt.Fprintln(o.IO.Out, "No grant.")
				return nil
			}
			tw := tabwriter.NewWriter(o.IO.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "GRANT\tAPP\tOWNER KEY\tROUTES\tAPPROVED BY\tUNTIL")
			for _, g := range a.Grants {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", g.ID, termsafe.String(g.Who()), g.Owner, termsafe.String(strings.Join(g.Routes, ",")),
					termsafe.String(g.ApprovedBy), g.Expires.Local().Format(time.DateTime))
			}
			return tw.Flush()
		}),
		controlCmd(f, "revoke GRANT", "Revoke a grant and its tokens", "", "  pomdev relay grants revoke Zm9vYmFyYmF6", factory.ExactArgs(1, "the grant's ID, from pomdev relay grants list"), func(o *ControlOptions) error {
			if err := control(o, http.MethodPost, "/grants/revoke", ctl.Revoke{ID: o.Args[0]}, nil); err != nil {
				return err
			}
			fmt.Fprintf(o.IO.Out, "Grant %s revoked.\n", o.Args[0])
			return nil
		}),
	)
	return cmd
}

// resolveStateDir fills dir, unless --state-dir was given, from
// relay.state_dir or the default <config dir>/relay.
func resolveStateDir(f *factory.Factory, cmd *cobra.Command, dir *string) error {
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	if !cmd.Flags().Changed("state-dir") {
		*dir = cfg.Relay.StateDir
	}
	if *dir == "" {
		base, err := f.ConfigDir()
		if err != nil {
			return err
		}
		*dir = filepath.Join(base, "relay")
	}
	return nil
}

// control calls the relay's control socket; out, when not nil, gets its
// answer.
func control(o *ControlOptions, method, path string, body any, out *ctl.Answer) error {
	c := ctl.NewClient(o.StateDir)
	a, err := c.Call(context.Background(), method, path, body)
	switch {
	case errors.Is(err, ctl.ErrUnreachable):
		return exitcode.New(exitcode.Unreachable, err,
			"start it with the same --state-dir, or pass the state dir it uses (a relay has a control socket with --auth signin, --http-auth owner or --policy)")
	case errors.Is(err, ctl.ErrNoAccess):
		return exitcode.New(exitcode.Failure, err, "start it with --http-auth owner")
	case err != nil:
		return err
	}
	if out != nil {
		*out = a
	}
	return nil
}
