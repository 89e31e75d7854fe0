// Package factory owns what every pomdev command is built from: the
// streams, the configuration (loaded once per invocation, after flags are
// parsed), the logger and the clock, plus the small cobra helpers shared by
// the command packages (argument checks that give usage errors, flags bound
// to configuration keys).
//
// Command packages import factory; internal/cli imports the command
// packages. Nothing here is global: cli.Main builds one Factory per run.
package factory

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pkg/browser"
	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/pomdev/pomdev/internal/safeurl"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Factory carries the dependencies of commands.
type Factory struct {
	IOStreams *iostreams.IOStreams
	// Now is the clock (tests replace it).
	Now func() time.Time
	// ConfigOptions is where configuration is looked up; tests point it at
	// temporary directories. The root command fills in ConfigFile and Flags.
	ConfigOptions config.Options

	loaded *config.Loaded
	logger *slog.Logger
}

// New returns a Factory writing to ios.
func New(ios *iostreams.IOStreams) *Factory {
	return &Factory{IOStreams: ios, Now: time.Now}
}

// LoadConfig loads and validates the configuration, and builds the logger
// it describes. The root command calls it once, before any command runs.
func (f *Factory) LoadConfig() error {
	l, err := config.Load(f.ConfigOptions)
	if err != nil {
		return err
	}
	f.loaded = l
	f.logger = NewLogger(f.IOStreams.ErrOut, l.Log.Level, l.Log.Format)
	return nil
}

// Config returns the configuration loaded for this invocation.
func (f *Factory) Config() (*config.Loaded, error) {
	if f.loaded == nil {
		if err := f.LoadConfig(); err != nil {
			return nil, err
		}
	}
	return f.loaded, nil
}

// Logger returns the invocation's logger; before the configuration is
// loaded it logs at info level in text.
func (f *Factory) Logger() *slog.Logger {
	if f.logger == nil {
		return NewLogger(f.IOStreams.ErrOut, "info", "text")
	}
	return f.logger
}

// NewLogger returns a slog logger writing level and above to w as text or
// JSON.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// ConfigKeyAnnotation marks a flag as bound to a configuration key.
const ConfigKeyAnnotation = "pomdev_config_key"

// BindFlag binds the already defined flag name to the configuration key:
// when the flag is given it wins over env and files, and `pomdev config
// show` names it as the source.
func BindFlag(fs *pflag.FlagSet, name, key string) {
	if err := fs.SetAnnotation(name, ConfigKeyAnnotation, []string{key}); err != nil {
		panic(fmt.Sprintf("BindFlag(%q): %v", name, err)) // programming error
	}
}

// FlagBindings returns the bindings of every flag of cmd (its own and the
// inherited persistent ones).
func FlagBindings(cmd *cobra.Command) []config.FlagBinding {
	var out []config.FlagBinding
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		if keys := fl.Annotations[ConfigKeyAnnotation]; len(keys) == 1 {
			out = append(out, config.FlagBinding{Key: keys[0], Flag: fl})
		}
	})
	return out
}

// NoArgs refuses positional arguments with a usage error.
func NoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return exitcode.Usagef("%s takes no arguments, got %q\nRun '%s --help' for usage.", cmd.CommandPath(), strings.Join(args, " "), cmd.CommandPath())
	}
	return nil
}

// ExactArgs wants n positional arguments named by what (for the message).
func ExactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return exitcode.Usagef("%s needs %s\nRun '%s --help' for usage.", cmd.CommandPath(), what, cmd.CommandPath())
		}
		return nil
	}
}

// ErrSilent is returned by commands that already told the user what went
// wrong; Main prints nothing more.
var ErrSilent = errors.New("silent error")

// ConfigDir is pomdev's own directory in the user config dir
// ($XDG_CONFIG_HOME/pomdev on Linux): its key, known_hosts, relay state.
func (f *Factory) ConfigDir() (string, error) {
	userDir := f.ConfigOptions.UserConfigDir
	if userDir == nil {
		userDir = os.UserConfigDir
	}
	dir, err := userDir()
	if err != nil {
		return "", exitcode.Usagef("no user config directory (%v); set XDG_CONFIG_HOME or HOME", err)
	}
	return filepath.Join(dir, "pomdev"), nil
}

// Browser returns how to open a URL in the user's browser, or nil when
// there is no one to look at it: stdout is not a terminal, or (on Linux and
// the BSDs) no graphical display. Commands print the URL either way. Only
// https URLs, and http ones to this machine, are opened (safeurl): links
// come from relays and servers.
func (f *Factory) Browser() func(string) error {
	if !f.IOStreams.IsStdoutTTY() {
		return nil
	}
	switch runtime.GOOS {
	case "darwin", "windows":
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return nil
		}
	}
	return OpenSafe(browser.OpenURL)
}

// OpenSafe wraps open so that it refuses URLs safeurl.ForBrowser refuses.
func OpenSafe(open func(string) error) func(string) error {
	return func(u string) error {
		if err := safeurl.ForBrowser(u); err != nil {
			return fmt.Errorf("not opening in a browser: %w", err)
		}
		return open(u)
	}
}
