// Package factorytest builds a factory.Factory for command tests: test
// streams, a temporary working directory with an optional pomdev.yaml, a
// private user config dir and an injected environment.
package factorytest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/spf13/cobra"
)

// Streams are the test buffers behind a factory.
type Streams struct {
	Out, Err *bytes.Buffer
}

// New returns a factory whose working directory holds project as
// pomdev.yaml (none when empty) and whose environment is env.
func New(t *testing.T, project string, env map[string]string) (*factory.Factory, Streams) {
	t.Helper()
	work := t.TempDir()
	if project != "" {
		if err := os.WriteFile(filepath.Join(work, config.FileName), []byte(project), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ios, _, out, errOut := iostreams.Test()
	f := factory.New(ios)
	f.ConfigOptions = config.Options{
		WorkDir:       work,
		UserConfigDir: func() (string, error) { return filepath.Join(work, "user"), nil },
		LookupEnv:     func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	}
	return f, Streams{Out: out, Err: errOut}
}

// Execute runs cmd alone with args, loading the configuration with its
// flag bindings first, as the root command does.
func Execute(f *factory.Factory, cmd *cobra.Command, args ...string) error {
	cmd.SetArgs(args)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.PreRunE = func(c *cobra.Command, _ []string) error {
		f.ConfigOptions.Flags = factory.FlagBindings(c)
		return f.LoadConfig()
	}
	return cmd.Execute()
}
