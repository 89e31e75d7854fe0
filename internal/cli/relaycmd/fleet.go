package relaycmd

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL, registered as "pgx"
	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/pomdev/pomdev/internal/relay/fleet"
	relaystore "github.com/pomdev/pomdev/internal/relay/store"
	"github.com/pomdev/pomdev/internal/relayrule"
	"github.com/pomdev/pomdev/internal/termsafe"
	"github.com/spf13/cobra"
)

// FleetStatusOptions are the inputs of FleetStatusRun.
type FleetStatusOptions struct {
	IO    *iostreams.IOStreams
	Store string
	JSON  bool
}

// NodeStatus is one relay of a fleet, as the store has it.
type NodeStatus struct {
	ID       string    `json:"id"`
	Addr     string    `json:"addr"`
	Started  time.Time `json:"started"`
	LastBeat time.Time `json:"last_beat"`
	Live     bool      `json:"live"`
	Tunnels  int       `json:"tunnels"`
}

// FleetStatus is what pomdev relay fleet status reports.
type FleetStatus struct {
	Store         string       `json:"store"`
	SchemaVersion int          `json:"schema_version"`
	StoreLatency  string       `json:"store_latency"`
	Nodes         []NodeStatus `json:"nodes"`
}

// NewCmdFleet returns `pomdev relay fleet`.
func NewCmdFleet(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "The relays that share a PostgreSQL store",
		Long: `Relays started with one --store form a fleet: each announces an internal
address in the store, and a request that reaches one relay for a tunnel another
holds is passed there (docs/RELAY.md, "A fleet of relays").`,
	}
	opts := &FleetStatusOptions{}
	status := &cobra.Command{
		Use:   "status",
		Short: "List the fleet's relays, their tunnels and the store's health",
		Long: `Read the store (it changes nothing there) and list each relay of the fleet:
its internal address, when it started and last beat (a relay whose last beat
is older than ` + fleet.DefaultDeadAfter.String() + ` is dead: its tunnels reach no one until their
clients reconnect to another relay), and the tunnels it holds.`,
		Example: `  pomdev relay fleet status --store postgres://pomdev@db.internal/pomdev`,
		Args:    factory.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IO = f.IOStreams
			if !cmd.Flags().Changed("store") {
				cfg, err := f.Config()
				if err != nil {
					return err
				}
				opts.Store = cfg.Relay.Store
			}
			return FleetStatusRun(cmd.Context(), opts)
		},
	}
	status.Flags().StringVar(&opts.Store, "store", "", "the fleet's PostgreSQL store (default: relay.store)")
	status.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	cmd.AddCommand(status)
	return cmd
}

// FleetStatusRun reads the fleet's state from the store.
func FleetStatusRun(ctx context.Context, opts *FleetStatusOptions) error {
	if opts.Store == "" || !relayrule.IsPostgresURL(opts.Store) {
		return exitcode.Usagef("a fleet is the relays of one PostgreSQL store; pass --store postgres://user@host/db")
	}
	name := relaystore.Redact(opts.Store)
	db, err := sql.Open("pgx", opts.Store)
	if err != nil {
		return exitcode.New(exitcode.Usage, fmt.Errorf("store %s: %w", name, err), "")
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	start := time.Now()
	if err := db.PingContext(ctx); err != nil {
		return exitcode.New(exitcode.Unreachable, fmt.Errorf("store %s: %w", name, err), "is PostgreSQL running there, and may this user connect?")
	}
	st := FleetStatus{Store: name, StoreLatency: time.Since(start).Round(10 * time.Microsecond).String()}
	if st.SchemaVersion, err = relaystore.SchemaVersion(db); err != nil {
		return fmt.Errorf("store %s: %w", name, err)
	}
	if st.SchemaVersion < relaystore.Version {
		return exitcode.New(exitcode.Failure, fmt.Errorf("store %s: schema version %d, this pomdev's is %d: no relay of this pomdev has run on it", name, st.SchemaVersion, relaystore.Version),
			"start a relay with this --store first")
	}
	rows, err := db.QueryContext(ctx, `SELECT n.id, n.addr, n.started, n.seen, (SELECT count(*) FROM leases l WHERE l.node = n.id) FROM nodes n ORDER BY n.started`)
	if err != nil {
		return fmt.Errorf("store %s: %w", name, err)
	}
	defer rows.Close()
	now := time.Now()
	for rows.Next() {
		var n NodeStatus
		var started, seen int64
		if err := rows.Scan(&n.ID, &n.Addr, &started, &seen, &n.Tunnels); err != nil {
			return err
		}
		n.Started, n.LastBeat = time.UnixMilli(started), time.UnixMilli(seen)
		n.Live = now.Sub(n.LastBeat) < fleet.DefaultDeadAfter
		st.Nodes = append(st.Nodes, n)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(opts.IO.Out, "Store  %s (schema version %d, answered in %s)\n", st.Store, st.SchemaVersion, st.StoreLatency)
	if len(st.Nodes) == 0 {
		fmt.Fprintln(opts.IO.Out, "No relay is running on this store.")
		return exitcode.New(exitcode.Failure, errors.New("no relay of the fleet is live"), "start one with pomdev relay --store …")
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tSTARTED\tLAST BEAT\tSTATE\tTUNNELS")
	live := 0
	for _, n := range st.Nodes {
		state := "dead"
		if n.Live {
			state, live = "live", live+1
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\t%s\t%d\n", termsafe.String(n.ID), termsafe.String(n.Addr), n.Started.Format(time.DateTime),
			now.Sub(n.LastBeat).Round(100*time.Millisecond), state, n.Tunnels)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if live == 0 {
		return exitcode.New(exitcode.Failure, errors.New("no relay of the fleet is live"), "")
	}
	return nil
}
