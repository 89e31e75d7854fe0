package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Tables are the store's tables, in the order Copy fills them.
var Tables = []string{"clients", "auth_requests", "grants", "tokens", "routes", "sessions", "secrets"}

// ErrNotEmpty is a store that already holds rows: Copy fills only new
// ones, so that nothing there is overwritten or mixed with another
// relay's state.
var ErrNotEmpty = errors.New("already holds")

// Copy copies every row of src's tables into dst, both at Version (Open
// brings them there): from one read transaction of src, in one write
// transaction of dst, so dst gets all of src as it was at one moment, or
// nothing. Text is made storable on the way (Text). It returns the rows
// copied by table. With dir, the secret files there (SecretFiles) are
// copied into the table secrets too.
func Copy(ctx context.Context, dst, src *sql.DB, dir string) (map[string]int, error) {
	for _, db := range []*sql.DB{dst, src} {
		if v, err := SchemaVersion(db); err != nil || v != Version {
			return nil, fmt.Errorf("schema version %d, want %d (open both with store.Open first): %v", v, Version, err)
		}
	}
	rtx, err := src.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer rtx.Rollback()
	wtx, err := dst.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer wtx.Rollback()
	if EngineOf(dst) == Postgres {
		// Two imports (or a migration) at once take turns.
		if _, err := wtx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, pgLock); err != nil {
			return nil, err
		}
	}
	var held []string
	for _, t := range Tables {
		var n int
		if err := wtx.QueryRowContext(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
			return nil, err
		}
		if n > 0 {
			held = append(held, fmt.Sprintf("%d %s", n, t))
		}
	}
	if len(held) > 0 {
		return nil, fmt.Errorf("%w %s", ErrNotEmpty, strings.Join(held, ", "))
	}
	out := map[string]int{}
	for _, t := range Tables {
		n, err := copyTable(ctx, wtx, rtx, t)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t, err)
		}
		out[t] = n
	}
	if dir != "" {
		n, err := copySecrets(wtx, dir)
		if err != nil {
			return nil, err
		}
		out["secrets"] += n
	}
	return out, wtx.Commit()
}

func copyTable(ctx context.Context, dst, src *sql.Tx, table string) (int, error) {
	rows, err := src.QueryContext(ctx, `SELECT * FROM `+table)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	params := make([]string, len(cols))
	for i := range cols {
		params[i] = fmt.Sprintf("$%d", i+1)
	}
	ins, err := dst.PrepareContext(ctx, `INSERT INTO `+table+` (`+strings.Join(cols, ", ")+`) VALUES (`+strings.Join(params, ", ")+`)`)
	if err != nil {
		return 0, err
	}
	defer ins.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		for i, v := range vals {
			switch x := v.(type) {
			case string:
				vals[i] = Text(x)
			case []byte:
				vals[i] = Text(string(x))
			}
		}
		if _, err := ins.ExecContext(ctx, vals...); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}
