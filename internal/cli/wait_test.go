package cli

import "github.com/spf13/cobra"

func newWaitCmd() *cobra.Command {
	return &cobra.Command{Use: "wait", RunE: func(cmd *cobra.Command, args []string) error {
		<-cmd.Context().Done()
		return cmd.Context().Err()
	}}
}
