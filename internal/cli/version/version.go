// Package version implements `pomdev version` (and the root --version flag,
// which runs the same code).
package version

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/pomdev/pomdev/internal/build"
	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/spf13/cobra"
)

// Options are the inputs of versionRun.
type Options struct {
	Out  io.Writer
	Info build.Info
	JSON bool
}

// NewCmdVersion returns the version command; runF replaces Run in tests.
func NewCmdVersion(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print pomdev's version, commit and build date",
		Args:  factory.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Out = f.IOStreams.Out
			opts.Info = build.Current()
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the version information as JSON")
	return cmd
}

// Run prints the version line, or JSON.
func Run(opts *Options) error {
	if opts.JSON {
		enc := json.NewEncoder(opts.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(opts.Info)
	}
	_, err := fmt.Fprintln(opts.Out, opts.Info.String())
	return err
}
