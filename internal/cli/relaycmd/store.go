package relaycmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
	ctl "github.com/pomdev/pomdev/internal/relay/control"
	relaystore "github.com/pomdev/pomdev/internal/relay/store"
	"github.com/pomdev/pomdev/internal/relayrule"
	"github.com/spf13/cobra"
)

// StoreImportOptions are the inputs of StoreImportRun.
type StoreImportOptions struct {
	IO       *iostreams.IOStreams
	StateDir string
	Store    string
}

// NewCmdStore returns `pomdev relay store`.
func NewCmdStore(f *factory.Factory, runF func(*StoreImportOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Move a relay's state into a PostgreSQL store",
		Long: `A relay keeps route names, sign-ins and OAuth state (clients, grants, tokens)
in relay.db in its state directory, or, given --store postgres://…, in a
PostgreSQL database that several relays share.`,
	}
	opts := &StoreImportOptions{}
	imp := &cobra.Command{
		Use:   "import",
		Short: "Copy relay.db of a state directory into a new PostgreSQL store",
		Long: `Copy everything relay.db holds (route names with their keys, sign-ins, OAuth
clients, pending requests, grants and tokens) into the PostgreSQL store of
--store, which must hold none yet: all of it in one transaction, or nothing.
relay.db is first brought to this pomdev's schema, as starting the relay does,
and is left in place.

Stop the relay first, then start it (and any other relay of the fleet) with
the same --store. The state directory keeps the host key and admin token:
copy them to every node, so that clients see one host key.`,
		Example: `  pomdev relay store import --state-dir /var/lib/pomdev-relay --store postgres://pomdev@db.internal/pomdev`,
		Args:    factory.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IO = f.IOStreams
			if err := resolveStateDir(f, cmd, &opts.StateDir); err != nil {
				return err
			}
			if !cmd.Flags().Changed("store") {
				cfg, err := f.Config()
				if err != nil {
					return err
				}
				opts.Store = cfg.Relay.Store
			}
			if runF != nil {
				return runF(opts)
			}
			return StoreImportRun(cmd.Context(), opts)
		},
	}
	imp.Flags().StringVar(&opts.StateDir, "state-dir", "", "the state directory whose relay.db is copied")
	imp.Flags().StringVar(&opts.Store, "store", "", "the new PostgreSQL store (postgres://user@host/db; default: relay.store)")
	cmd.AddCommand(imp)
	return cmd
}

// StoreImportRun copies relay.db of opts.StateDir into opts.Store.
func StoreImportRun(ctx context.Context, opts *StoreImportOptions) error {
	if opts.Store == "" {
		return exitcode.Usagef("no store to import into; pass --store postgres://user@host/db")
	}
	if !relayrule.IsPostgresURL(opts.Store) {
		return exitcode.Usagef("--store is not a postgres:// URL")
	}
	path := filepath.Join(opts.StateDir, relaystore.File)
	if _, err := os.Stat(path); err != nil {
		return exitcode.New(exitcode.Usage, fmt.Errorf("%s: %w", path, err), "pass the --state-dir of the relay whose state you move")
	}
	if c, err := net.DialTimeout("unix", ctl.SocketPath(opts.StateDir), time.Second); err == nil {
		c.Close()
		return exitcode.New(exitcode.Failure, errors.New("a relay is running on "+opts.StateDir),
			"stop it first: what it writes while the copy runs would be lost")
	}
	src, err := relaystore.Open(opts.StateDir, "")
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := relaystore.Open("", opts.Store)
	if err != nil {
		return exitcode.New(exitcode.Unreachable, err, "")
	}
	defer dst.Close()
	n, err := relaystore.Copy(ctx, dst, src, opts.StateDir)
	if errors.Is(err, relaystore.ErrNotEmpty) {
		return exitcode.New(exitcode.Failure, fmt.Errorf("store %s %w", relaystore.Redact(opts.Store), err),
			"import only into a new store; nothing was copied")
	}
	if err != nil {
		return fmt.Errorf("store %s: %w (nothing was copied)", relaystore.Redact(opts.Store), err)
	}
	fmt.Fprintf(opts.IO.Out, "Copied %s into %s:\n", path, relaystore.Redact(opts.Store))
	for _, t := range relaystore.Tables {
		fmt.Fprintf(opts.IO.Out, "  %-14s %d\n", t, n[t])
	}
	fmt.Fprintf(opts.IO.Out, "Start the relay with --store %s (relay.db stays, unused).\n", relaystore.Redact(opts.Store))
	return nil
}
