// Package completion implements `pomdev completion SHELL`, which prints a
// shell completion script generated from the command tree.
package completion

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/spf13/cobra"
)

// Shells lists the supported shells.
var Shells = []string{"bash", "zsh", "fish", "powershell"}

// Options are the inputs of Run.
type Options struct {
	Out   io.Writer
	Shell string
	// Generate writes the script for shell; built from the root command.
	Generate func(w io.Writer, shell string) error
}

// NewCmdCompletion returns the completion command.
func NewCmdCompletion(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "completion " + strings.Join(Shells, "|"),
		Short: "Print a shell completion script",
		Long: `Print a completion script for your shell. Load it for the current session or
install it permanently:

  bash        source <(pomdev completion bash)
              pomdev completion bash > /etc/bash_completion.d/pomdev
  zsh         pomdev completion zsh > "${fpath[1]}/_pomdev"
  fish        pomdev completion fish > ~/.config/fish/completions/pomdev.fish
  powershell  pomdev completion powershell | Out-String | Invoke-Expression

Homebrew installs the scripts for bash, zsh and fish.`,
		ValidArgs: Shells,
		Args:      factory.ExactArgs(1, "a shell name: "+strings.Join(Shells, ", ")),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Out = f.IOStreams.Out
			opts.Shell = args[0]
			root := cmd.Root()
			opts.Generate = func(w io.Writer, shell string) error {
				switch shell {
				case "bash":
					return root.GenBashCompletionV2(w, true)
				case "zsh":
					return root.GenZshCompletion(w)
				case "fish":
					return root.GenFishCompletion(w, true)
				default:
					return root.GenPowerShellCompletionWithDesc(w)
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	return cmd
}

// Run checks the shell and writes its script.
func Run(opts *Options) error {
	if !slices.Contains(Shells, opts.Shell) {
		return exitcode.Usagef("unsupported shell %q; choose one of: %s", opts.Shell, strings.Join(Shells, ", "))
	}
	if err := opts.Generate(opts.Out, opts.Shell); err != nil {
		return fmt.Errorf("generate %s completion: %w", opts.Shell, err)
	}
	return nil
}
