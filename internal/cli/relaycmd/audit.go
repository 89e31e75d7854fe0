package relaycmd

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/relay/access"
	relaystore "github.com/pomdev/pomdev/internal/relay/store"
	"github.com/pomdev/pomdev/internal/relayrule"
	"github.com/pomdev/pomdev/internal/termsafe"
	"github.com/spf13/cobra"
)

// AuditOptions are the inputs of AuditRun.
type AuditOptions struct {
	ControlOptions
	Ctx    context.Context
	Route  string
	Follow bool
	JSON   bool
	// Decisions reads the decisions kept apart (decisions.jsonl).
	Decisions bool
	// Poll is how often --follow looks for new lines (250 ms).
	Poll time.Duration
	// Store, when set, is the PostgreSQL store whose table holds the
	// trail of every relay of a fleet.
	Store string
}

// NewCmdAudit returns `pomdev relay audit`.
func NewCmdAudit(f *factory.Factory) *cobra.Command {
	opts := &AuditOptions{}
	var cmd *cobra.Command
	cmd = controlCmd(f, "audit", "Read the relay's audit trail of authorization decisions and gated requests",
		`Every authorization decision (a request for access, the owner's approval or
denial, tokens issued, refreshed, reused or revoked, requests the gate refused)
and every request through a gated route (route, app, grant, JSON-RPC method,
tool, status) is a JSON line in audit.jsonl in the relay's state directory. This
prints it as a table (or --json as stored), --route keeps one route's, and
--follow waits for new lines as tail -f does. The decisions are also kept apart
in decisions.jsonl, which request floods cannot push out (--decisions reads
it). Each file rotates (64 MiB, decisions 16 MiB) into .1 to .4.

Relays on a PostgreSQL store (relay.store) also write their lines into the
store's table audit, kept 30 days: with --store (or relay.store set) this reads
the fleet's whole trail there, in order, whichever relay wrote each line.`,
		"  pomdev relay audit --route witty-otter-123 --follow", factory.NoArgs, func(o *ControlOptions) error {
			opts.ControlOptions = *o
			if !cmd.Flags().Changed("store") {
				cfg, err := f.Config()
				if err != nil {
					return err
				}
				opts.Store = cfg.Relay.Store
			}
			return AuditRun(opts)
		})
	cmd.Flags().StringVar(&opts.Store, "store", "", "read the trail of every relay of this PostgreSQL store (default: relay.store; unset: the state directory's files)")
	cmd.Flags().StringVar(&opts.Route, "route", "", "only this route's lines")
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new lines until interrupted")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the JSON lines as stored")
	cmd.Flags().BoolVar(&opts.Decisions, "decisions", false, "read only the decisions (decisions.jsonl), kept apart from requests")
	cmd.PreRun = func(cmd *cobra.Command, _ []string) { opts.Ctx = cmd.Context() }
	return cmd
}

// AuditRun prints the trail.
func AuditRun(o *AuditOptions) error {
	if o.Store != "" {
		return o.fromStore()
	}
	path := filepath.Join(o.StateDir, access.AuditFile)
	if o.Decisions {
		path = filepath.Join(o.StateDir, access.DecisionsFile)
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		if !o.Follow {
			fmt.Fprintf(o.IO.Out, "No audit trail in %s yet (the relay writes one with --http-auth owner).\n", o.StateDir)
			return nil
		}
	} else if err != nil {
		return exitcode.New(exitcode.Failure, fmt.Errorf("audit trail %s: %w", path, err), "run as the relay's user, or pass its --state-dir")
	}
	ctx := o.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	poll := o.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	var rd *bufio.Reader
	if f != nil {
		defer func() { f.Close() }()
		rd = bufio.NewReaderSize(f, 64<<10)
	}
	var partial []byte
	for {
		for rd != nil {
			line, err := rd.ReadBytes('\n')
			if err == io.EOF {
				partial = append(partial, line...)
				break
			}
			if err != nil {
				return err
			}
			if len(partial) > 0 {
				line, partial = append(partial, line...), nil
			}
			o.print(line)
		}
		if !o.Follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
		if f == nil {
			if f, err = os.Open(path); err == nil {
				rd = bufio.NewReaderSize(f, 64<<10)
			}
			continue
		}
		// Rotated: the trail moved to .1 and a new file began.
		if st, err := os.Stat(path); err == nil {
			if cur, err := f.Stat(); err == nil && !os.SameFile(st, cur) {
				f.Close()
				if f, err = os.Open(path); err != nil {
					return err
				}
				rd, partial = bufio.NewReaderSize(f, 64<<10), nil
			}
		}
	}
}

func (o *AuditOptions) print(line []byte) {
	var e access.Entry
	if json.Unmarshal(line, &e) != nil {
		return
	}
	if o.Route != "" && e.Route != o.Route {
		return
	}
	if o.JSON {
		o.IO.Out.Write(termsafe.JSON(line))
		return
	}
	fields := []string{e.Time.Local().Format("2006-01-02 15:04:05"), e.Kind, e.Route, e.Decision}
	if e.Client != "" {
		fields = append(fields, "client="+e.Client)
	}
	if e.Method != "" {
		fields = append(fields, e.Method)
	}
	if e.Tool != "" {
		fields = append(fields, e.Tool)
	}
	if e.Status != 0 {
		fields = append(fields, fmt.Sprint(e.Status))
	}
	if e.By != "" {
		fields = append(fields, "by "+e.By)
	}
	if e.Reason != "" {
		fields = append(fields, "("+e.Reason+")")
	}
	if e.Source != "" {
		fields = append(fields, "from "+e.Source)
	}
	fmt.Fprintln(o.IO.Out, termsafe.String(strings.Join(fields, " ")))
}

// fromStore prints the trail of the store's table, by id (the order the
// relays wrote it), batch by batch, then, with --follow, what comes.
func (o *AuditOptions) fromStore() error {
	if !relayrule.IsPostgresURL(o.Store) {
		return exitcode.Usagef("--store is not a postgres:// URL")
	}
	name := relaystore.Redact(o.Store)
	db, err := sql.Open("pgx", o.Store)
	if err != nil {
		return exitcode.New(exitcode.Usage, fmt.Errorf("store %s: %w", name, err), "")
	}
	defer db.Close()
	ctx := o.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	poll := o.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	q := `SELECT id, line FROM audit WHERE id > $1`
	args := []any{int64(0)}
	if o.Route != "" {
		q += ` AND route = $2`
		args = append(args, relaystore.Text(o.Route))
	}
	if o.Decisions {
		q += ` AND kind NOT IN ('request', 'refused')`
	}
	q += ` ORDER BY id LIMIT 1000`
	for {
		n, err := o.storeBatch(ctx, db, q, args)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return exitcode.New(exitcode.Unreachable, fmt.Errorf("store %s: %w", name, err), "is PostgreSQL running there, and may this user read it?")
		}
		if n == 1000 {
			continue
		}
		if !o.Follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

// storeBatch prints the lines after args[0] and moves args[0] past them.
func (o *AuditOptions) storeBatch(ctx context.Context, db *sql.DB, q string, args []any) (int, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id int64
		var line string
		if err := rows.Scan(&id, &line); err != nil {
			return n, err
		}
		args[0] = id
		o.print([]byte(line))
		n++
	}
	return n, rows.Err()
}
