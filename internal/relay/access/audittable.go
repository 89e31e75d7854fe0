package access

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

	relaystore "github.com/pomdev/pomdev/internal/relay/store"
)

// tableTrail is the audit trail in a PostgreSQL store, beside the files:
// the lines of every relay of the store in its table audit, written by
// the second with the files (a request costs a copy in memory, not a
// statement). Lines wait in a bounded buffer; while the store does not
// answer, those past tableMaxPending are dropped and counted (the files
// keep them).
type tableTrail struct {
	db *sql.DB

	mu      sync.Mutex
	pending []tableLine
	dropped int
}

type tableLine struct {
	at          int64 // ms
	kind, route string
	line        string
}

// Bounds of the table trail.
const (
	tableMaxPending = 50_000
	tableBatch      = 500 // rows per INSERT
	// TableKeep is how long the table keeps a line.
	TableKeep = 30 * 24 * time.Hour
)

func (t *tableTrail) add(e Entry, line []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pending) >= tableMaxPending {
		t.dropped++
		return
	}
	t.pending = append(t.pending, tableLine{at: e.Time.UnixMilli(), kind: e.Kind, route: relaystore.Text(e.Route), line: relaystore.Text(string(line))})
}

// flush writes the buffered lines; lines it could not write go back to
// the buffer (as far as it holds them).
func (t *tableTrail) flush(ctx context.Context) error {
	t.mu.Lock()
	lines, dropped := t.pending, t.dropped
	t.pending, t.dropped = nil, 0
	t.mu.Unlock()
	var err error
	if dropped > 0 {
		lines = append(lines, tableLine{at: time.Now().UnixMilli(), kind: "dropped",
			line: fmt.Sprintf(`{"time":%q,"kind":"dropped","reason":"%d audit lines not kept in the store while it did not answer (this relay's audit.jsonl has them)"}`, time.Now().UTC().Format(time.RFC3339Nano), dropped)})
	}
	for len(lines) > 0 {
		n := min(len(lines), tableBatch)
		if err = t.insert(ctx, lines[:n]); err != nil {
			break
		}
		lines = lines[n:]
	}
	if len(lines) > 0 {
		t.mu.Lock()
		keep := min(len(lines), max(tableMaxPending-len(t.pending), 0))
		t.pending = append(lines[:keep:keep], t.pending...)
		t.dropped += len(lines) - keep
		t.mu.Unlock()
	}
	return err
}

func (t *tableTrail) insert(ctx context.Context, lines []tableLine) error {
	var q strings.Builder
	q.WriteString(`INSERT INTO audit (at, kind, route, line) VALUES `)
	args := make([]any, 0, 4*len(lines))
	for i, l := range lines {
		if i > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "($%d, $%d, $%d, $%d)", 4*i+1, 4*i+2, 4*i+3, 4*i+4)
		args = append(args, l.at, l.kind, l.route, l.line)
	}
	_, err := t.db.ExecContext(ctx, q.String(), args...)
	return err
}

// sweep deletes the lines older than TableKeep.
func (t *tableTrail) sweep(ctx context.Context, now time.Time) error {
	_, err := t.db.ExecContext(ctx, `DELETE FROM audit WHERE at < $1`, now.Add(-TableKeep).UnixMilli())
	return err
}
