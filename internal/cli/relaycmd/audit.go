package relaycmd

import (
	"bufio"
	"context"
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
}

// NewCmdAudit returns `pomdev relay audit`.
func NewCmdAudit(f *factory.Factory) *cobra.Command {
	opts := &AuditOptions{}
	cmd := controlCmd(f, "audit", "Read the relay's audit trail of authorization decisions and gated requests",
		`Every authorization decision (a request for access, the owner's approval or
denial, tokens issued, refreshed, reused or revoked, requests the gate refused)
and every request through a gated route (route, app, grant, JSON-RPC method,
tool, status) is a JSON line in audit.jsonl in the relay's state directory. This
prints it as a table (or --json as stored), --route keeps one route's, and
--follow waits for new lines as tail -f does. The decisions are also kept apart
in decisions.jsonl, which request floods cannot push out (--decisions reads
it). Each file rotates (64 MiB, decisions 16 MiB) into .1 to .4.`,
		"  pomdev relay audit --route witty-otter-123 --follow", factory.NoArgs, func(o *ControlOptions) error {
			opts.ControlOptions = *o
			return AuditRun(opts)
		})
	cmd.Flags().StringVar(&opts.Route, "route", "", "only this route's lines")
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new lines until interrupted")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the JSON lines as stored")
	cmd.Flags().BoolVar(&opts.Decisions, "decisions", false, "read only the decisions (decisions.jsonl), kept apart from requests")
	cmd.PreRun = func(cmd *cobra.Command, _ []string) { opts.Ctx = cmd.Context() }
	return cmd
}

// AuditRun prints the trail.
func AuditRun(o *AuditOptions) error {
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
