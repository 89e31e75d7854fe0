// Package knownhosts implements `pomdev known-hosts forget HOST`, which
// removes a relay's remembered host key from pomdev's known_hosts.
package knownhosts

import (
	"fmt"
	"path/filepath"

	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/pomdev/pomdev/internal/tunnel"
	"github.com/spf13/cobra"
)

// NewCmdKnownHosts returns the known-hosts command group.
func NewCmdKnownHosts(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "known-hosts",
		Short: "Manage the relay host keys pomdev trusts",
		Long: `pomdev trusts a relay's host key the first time it connects and records it in its
own known_hosts (OpenSSH format) in the config directory. A relay that later
presents another key is refused. If you know why the key changed (the relay was
reinstalled), forget the old one and connect again.`,
		Args: factory.NoArgs,
	}
	cmd.AddCommand(NewCmdForget(f, nil))
	return cmd
}

// ForgetOptions are the inputs of ForgetRun.
type ForgetOptions struct {
	IO   *iostreams.IOStreams
	Host string
	File string
}

// NewCmdForget returns `pomdev known-hosts forget HOST`.
func NewCmdForget(f *factory.Factory, runF func(*ForgetOptions) error) *cobra.Command {
	opts := &ForgetOptions{}
	return &cobra.Command{
		Use:     "forget HOST",
		Short:   "Forget a relay's host key (every port)",
		Example: "  pomdev known-hosts forget pom.run",
		Args:    factory.ExactArgs(1, "the relay's host name, for example pom.run"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := f.ConfigDir()
			if err != nil {
				return err
			}
			opts.IO, opts.Host = f.IOStreams, args[0]
			opts.File = filepath.Join(dir, tunnel.KnownHostsFile)
			if runF != nil {
				return runF(opts)
			}
			return ForgetRun(opts)
		},
	}
}

// ForgetRun removes the host's lines.
func ForgetRun(opts *ForgetOptions) error {
	n, err := tunnel.ForgetHost(opts.File, opts.Host)
	if err != nil {
		return fmt.Errorf("known hosts %s: %w", opts.File, err)
	}
	if n == 0 {
		return fmt.Errorf("%s is not in %s; nothing to forget", opts.Host, opts.File)
	}
	fmt.Fprintf(opts.IO.Out, "Forgot %d key(s) for %s in %s\n", n, opts.Host, opts.File)
	return nil
}
