package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/pomdev/pomdev/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// schema is each table's columns and their types, in order, read from
// either engine's catalogue.
func schema(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	q := `SELECT m.name, p.name, p.type FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' ORDER BY m.name, p.cid`
	if EngineOf(db) == Postgres {
		q = `SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name != 'pomdev_schema' ORDER BY table_name, ordinal_position`
	}
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var table, col, typ string
		if err := rows.Scan(&table, &col, &typ); err != nil {
			t.Fatal(err)
		}
		typ = strings.ToLower(typ)
		if typ == "integer" {
			typ = "bigint" // flags: both hold them
		}
		out[table] += col + " " + typ + ","
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The migrations build the same tables, columns and types on PostgreSQL
// as on a new relay.db, and opening again changes nothing.
func TestPostgresSchemaIsSQLites(t *testing.T) {
	url := pgtest.DB(t)
	pg, err := Open("", url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if EngineOf(pg) != Postgres {
		t.Fatal("engine of a postgres store is not Postgres")
	}
	if v, err := SchemaVersion(pg); v != Version || err != nil {
		t.Fatalf("version %d %v, want %d", v, err, Version)
	}
	lite, err := Open(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	want, got := schema(t, lite), schema(t, pg)
	if len(want) != 11 || !reflect.DeepEqual(got, want) {
		t.Fatalf("postgres schema:\n%v\nrelay.db's:\n%v", got, want)
	}
	pg.Close()
	pg, err = Open("", url)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := SchemaVersion(pg); v != Version {
		t.Fatalf("version after a second open %d", v)
	}
	var n int
	if err := pg.QueryRow(`SELECT count(*) FROM pomdev_schema`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("pomdev_schema rows: %d %v", n, err)
	}
}

// Relays starting together on a new store migrate it once: every one
// opens it, and each step ran once (a second CREATE TABLE or ADD COLUMN
// racing the first would fail one of them).
func TestPostgresMigrateTogether(t *testing.T) {
	url := pgtest.DB(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			db, err := Open("", url)
			if err == nil {
				db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("relay %d: %v", i, err)
		}
	}
}

// A store migrated by a newer pomdev is refused, not changed.
func TestPostgresNewer(t *testing.T) {
	url := pgtest.DB(t)
	db, err := Open("", url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE pomdev_schema SET version = 999`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open("", url)
	if !errors.Is(err, ErrNewer) || !strings.Contains(err.Error(), "every relay of a store must run this pomdev or a newer one") {
		t.Fatalf("a newer store: %v", err)
	}
	db, _ = sql.Open("pgx", url)
	defer db.Close()
	var v int
	if err := db.QueryRow(`SELECT version FROM pomdev_schema`).Scan(&v); err != nil || v != 999 {
		t.Fatalf("version after refusing: %d %v", v, err)
	}
}

// A store that cannot be reached is an error that says where and what to
// check, and never shows the password.
func TestPostgresUnreachable(t *testing.T) {
	c := pgtest.New(t)
	url := strings.Replace(c.URL("postgres"), "postgres:///", "postgres://postgres:s3cret-pw@/", 1)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err := Open("", url)
	if err == nil || !strings.Contains(err.Error(), "is PostgreSQL running there") || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("an unreachable store: %v", err)
	}
	_, err = Open("", "mysql://u:s3cret-pw@h/db")
	if err == nil || !strings.Contains(err.Error(), "not a postgres:// URL") || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("not a postgres URL: %v", err)
	}
	if got := Redact("postgres://h/db?password=s3cret-pw&sslmode=require"); strings.Contains(got, "s3cret-pw") || !strings.Contains(got, "sslmode=require") {
		t.Fatalf("Redact: %s", got)
	}
}

// A relay.db (here one from before versioning, migrated by Open) is
// copied into a new PostgreSQL store whole, NULs and bad bytes made
// storable; a store that holds rows is refused and left as it was.
func TestCopyIntoPostgres(t *testing.T) {
	dir := t.TempDir()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, File))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(legacy); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`INSERT INTO clients (id, name, redirect_uris, auth_method, created) VALUES ('c2', $1, '[]', 'none', 2)`, "nul\x00and\xff"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	lite, err := Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	pg, err := Open("", pgtest.DB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	n, err := Copy(context.Background(), pg, lite, "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"clients": 2, "auth_requests": 0, "grants": 1, "tokens": 1, "routes": 1, "sessions": 1, "secrets": 0}
	if !reflect.DeepEqual(n, want) {
		t.Fatalf("copied %v, want %v", n, want)
	}
	var name, fp string
	var expires int64
	if err := pg.QueryRow(`SELECT c.name, r.fp, t.expires FROM clients c, routes r, tokens t WHERE c.id = 'c2' AND r.name = 'brave-otter-1' AND t.hash = 'h1'`).Scan(&name, &fp, &expires); err != nil {
		t.Fatal(err)
	}
	if name != "nul\uFFFDand\uFFFD" || fp != "SHA256:o" || expires != 9999999999 {
		t.Fatalf("copied rows: %q %q %d", name, fp, expires)
	}
	if _, err := Copy(context.Background(), pg, lite, ""); !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "2 clients") {
		t.Fatalf("a second copy: %v", err)
	}
	var c int
	if err := pg.QueryRow(`SELECT count(*) FROM clients`).Scan(&c); err != nil || c != 2 {
		t.Fatalf("clients after the refused copy: %d %v", c, err)
	}
}
