// Package accesscmd implements `pomdev access`: approve or deny, from the
// developer's own terminal, an app's OAuth access request that a pomdev
// relay sent to the running `pomdev up` or `pomdev tunnel`.
package accesscmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/ownerctl"
	"github.com/pomdev/pomdev/internal/termsafe"
	"github.com/spf13/cobra"
)

// NewCmdAccess returns the access command.
func NewCmdAccess(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Approve or deny an app's access to your tunnel (pomdev relay's OAuth)",
		Long: `A pomdev relay with --http-auth owner lets an app (ChatGPT, Claude, an MCP
client) reach your tunnel only once you approve it. The app's sign-in page shows
a code; the same request appears in pomdev up (the dashboard's Access pane: a
allows, d denies) and pomdev tunnel. These commands decide it from another
terminal: they reach the running pomdev up or pomdev tunnel over a socket in
pomdev's config directory, which asks its relay over its SSH connection.`,
		Example: `  pomdev access list
  pomdev access approve KQ4M-7TXD
  pomdev access deny KQ4M-7TXD
  pomdev access grants
  pomdev access revoke Zm9vYmFyYmF6`,
	}
	run := func(verb string) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			dir, err := f.ConfigDir()
			if err != nil {
				return err
			}
			code := ""
			if len(args) > 0 {
				code = args[0]
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			out, err := ownerctl.Send(ctx, dir, verb, code)
			if errors.Is(err, ownerctl.ErrNoneRunning) {
				return exitcode.New(exitcode.Unreachable, err,
					"run it where pomdev up or pomdev tunnel runs (same user and config dir); a stock ssh user presses a on the status screen or runs ssh RELAY pomdev-access "+verb+" CODE")
			}
			if err != nil {
				return err
			}
			if out == "" && verb == "list" {
				out = "No access request is waiting."
			}
			if out == "" && verb == "grants" {
				out = "No app holds a grant to your tunnels."
			}
			fmt.Fprintln(f.IOStreams.Out, termsafe.String(out))
			return nil
		}
	}
	code := factory.ExactArgs(1, "the code the app's sign-in page shows, for example KQ4M-7TXD")
	cmd.AddCommand(
		&cobra.Command{Use: "approve CODE", Short: "Let the app in", Args: code, RunE: run("approve")},
		&cobra.Command{Use: "deny CODE", Short: "Refuse the app", Args: code, RunE: run("deny")},
		&cobra.Command{Use: "list", Short: "List the requests waiting for you", Args: factory.NoArgs, RunE: run("list")},
		&cobra.Command{Use: "grants", Short: "List the apps you approved (grants, remembered for the relay's --grant-ttl)", Args: factory.NoArgs, RunE: run("grants")},
		&cobra.Command{Use: "revoke GRANT", Short: "Revoke a grant: its tokens stop working, the app must ask again",
			Args: factory.ExactArgs(1, "the grant's ID, from pomdev access grants"), RunE: run("revoke")},
	)
	return cmd
}
