package store

import (
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// columns are table's column names.
func columns(t *testing.T, db *sql.DB, table string) string {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return strings.Join(out, ",")
}

// legacy is relay.db as relays before versioning left it (user_version 0):
// the oldest tables, without the columns added since, with rows.
const legacy = `
CREATE TABLE clients (id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL DEFAULT '', name TEXT NOT NULL, redirect_uris TEXT NOT NULL,
	auth_method TEXT NOT NULL, created INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE grants (id TEXT PRIMARY KEY, owner TEXT NOT NULL, client_id TEXT NOT NULL, client_name TEXT NOT NULL,
	approved_by TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL, UNIQUE (owner, client_id));
CREATE TABLE tokens (hash TEXT PRIMARY KEY, kind TEXT NOT NULL, grant_id TEXT NOT NULL, family TEXT NOT NULL, route TEXT NOT NULL,
	owner TEXT NOT NULL, client_id TEXT NOT NULL, scopes TEXT NOT NULL, auth_time INTEGER NOT NULL, expires INTEGER NOT NULL,
	used INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE routes (name TEXT PRIMARY KEY, fp TEXT NOT NULL, used INTEGER NOT NULL);
CREATE TABLE sessions (fp TEXT PRIMARY KEY, expires INTEGER NOT NULL);
INSERT INTO clients (id, name, redirect_uris, auth_method, created) VALUES ('c1', 'old app', '["https://a.example/cb"]', 'none', 1);
INSERT INTO grants VALUES ('g1', 'SHA256:o', 'c1', 'old app', 'key SHA256:o', 1, 9999999999);
INSERT INTO tokens (hash, kind, grant_id, family, route, owner, client_id, scopes, auth_time, expires) VALUES ('h1', 'refresh', 'g1', 'f', 'r', 'SHA256:o', 'c1', '["mcp"]', 1, 9999999999);
INSERT INTO routes VALUES ('brave-otter-1', 'SHA256:o', 5);
INSERT INTO sessions VALUES ('SHA256:o', 9999999999);
`

// A relay.db of a relay before versioning is completed and versioned;
// its rows stay; opening again changes nothing.
func TestMigrateLegacy(t *testing.T) {
	dir := t.TempDir()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, File))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(legacy); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	db, err := Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, _ := SchemaVersion(db); v != Version {
		t.Fatalf("version %d, want %d", v, Version)
	}
	for table, want := range map[string]string{
		"clients":  "id,secret_hash,name,redirect_uris,auth_method,created,used,source,auth_keys",
		"grants":   "id,owner,client_id,client_name,approved_by,created,expires,routes,browsers",
		"tokens":   "hash,kind,grant_id,family,route,owner,client_id,scopes,auth_time,expires,used,revoked,sub,email",
		"sessions": "fp,expires,sub,email",
		"routes":   "name,fp,used",
	} {
		if got := columns(t, db, table); got != want {
			t.Errorf("%s: %s, want %s", table, got, want)
		}
	}
	if got := columns(t, db, "auth_requests"); !strings.HasPrefix(got, "id,approval,code_hash") {
		t.Errorf("auth_requests: %s", got)
	}
	var name, routes, fp string
	if err := db.QueryRow(`SELECT c.name, g.routes, r.fp FROM clients c, grants g, routes r WHERE c.id = 'c1' AND g.id = 'g1' AND r.name = 'brave-otter-1'`).Scan(&name, &routes, &fp); err != nil {
		t.Fatal(err)
	}
	if name != "old app" || routes != "" || fp != "SHA256:o" {
		t.Fatalf("rows after the migration: %q %q %q", name, routes, fp)
	}
	db.Close()
	db, err = Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := SchemaVersion(db); v != Version {
		t.Fatalf("version after a second open %d", v)
	}
}

// A database from a newer pomdev is refused, not changed.
func TestMigrateNewer(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA user_version = 999`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(dir, ""); !errors.Is(err, ErrNewer) || !strings.Contains(err.Error(), "move the file away") {
		t.Fatalf("a newer database: %v", err)
	}
}

// A step that fails leaves the database at the version before it, with
// nothing of the step applied.
func TestMigrateStepFails(t *testing.T) {
	dir := t.TempDir()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, File))
	if err != nil {
		t.Fatal(err)
	}
	// grants is a view: step 3 cannot add its columns.
	if _, err := raw.Exec(`CREATE VIEW grants AS SELECT 1 AS id`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if _, err := Open(dir, ""); err == nil || !strings.Contains(err.Error(), "schema step") {
		t.Fatalf("a failing step: %v", err)
	}
	raw, _ = sql.Open("sqlite", "file:"+filepath.Join(dir, File))
	defer raw.Close()
	var v int
	if err := raw.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v >= 3 {
		t.Fatalf("version after the failed step: %d %v", v, err)
	}
}
