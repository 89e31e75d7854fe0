// Package store is the relay's database, relay.db in its state
// directory: it opens it and owns its schema, one ordered list of
// migrations for every table (the relay's route names and sign-in
// sessions, and the authorization server's clients, requests, grants and
// tokens), with the version in SQLite's PRAGMA user_version. The packages
// that use the database create no schema.
package store

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the CGO-free SQLite driver, registered as "sqlite"
)

// File is the relay's database in its state directory.
const File = "relay.db"

// migration is one step of the schema. Steps 1 to 7 are the schema as
// relays before versioning built it, piece by piece: each is written so
// that it also completes a database of any of those relays (all of them
// at user_version 0), which is how those databases are imported. Steps
// after them run once, in order, on a database at the version before.
type migration struct {
	name string
	up   func(*sql.Tx) error
}

var migrations = []migration{
	{"access tables", exec(`
CREATE TABLE IF NOT EXISTS clients (
	id TEXT PRIMARY KEY,
	secret_hash TEXT NOT NULL DEFAULT '',
	name TEXT NOT NULL,
	redirect_uris TEXT NOT NULL,
	auth_method TEXT NOT NULL,
	created INTEGER NOT NULL,
	used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS auth_requests (
	id TEXT PRIMARY KEY,
	approval TEXT NOT NULL UNIQUE,
	code_hash TEXT UNIQUE,
	route TEXT NOT NULL,
	owner TEXT NOT NULL,
	client_id TEXT NOT NULL,
	state TEXT NOT NULL,
	decided_by TEXT NOT NULL DEFAULT '',
	data TEXT NOT NULL,
	created INTEGER NOT NULL,
	expires INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS grants (
	id TEXT PRIMARY KEY,
	owner TEXT NOT NULL,
	client_id TEXT NOT NULL,
	client_name TEXT NOT NULL,
	approved_by TEXT NOT NULL,
	created INTEGER NOT NULL,
	expires INTEGER NOT NULL,
	UNIQUE (owner, client_id)
);
CREATE TABLE IF NOT EXISTS tokens (
	hash TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	grant_id TEXT NOT NULL,
	family TEXT NOT NULL,
	route TEXT NOT NULL,
	owner TEXT NOT NULL,
	client_id TEXT NOT NULL,
	scopes TEXT NOT NULL,
	auth_time INTEGER NOT NULL,
	expires INTEGER NOT NULL,
	used INTEGER NOT NULL DEFAULT 0,
	revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tokens_family ON tokens (family);
CREATE INDEX IF NOT EXISTS tokens_grant ON tokens (grant_id);`)},
	// The person a token was issued to (identity provider).
	{"tokens.sub, tokens.email", addColumns("tokens", "sub", "email")},
	// The routes a grant covers and the browsers bound to it: a grant from
	// before covers no route, so its owner is asked again.
	{"grants.routes, grants.browsers", addColumns("grants", "routes", "browsers")},
	// The address a client registered from, for the cap per source.
	{"clients.source", addColumns("clients", "source")},
	// The keys of a private_key_jwt client.
	{"clients.auth_keys", addColumns("clients", "auth_keys")},
	// Route names kept for their keys.
	{"routes", exec(`CREATE TABLE IF NOT EXISTS routes (name TEXT PRIMARY KEY, fp TEXT NOT NULL, used INTEGER NOT NULL)`)},
	// Signed-in keys (--auth signin) and who they signed in as.
	{"sessions", func(tx *sql.Tx) error {
		if err := exec(`CREATE TABLE IF NOT EXISTS sessions (fp TEXT PRIMARY KEY, expires INTEGER NOT NULL)`)(tx); err != nil {
			return err
		}
		return addColumns("sessions", "sub", "email")(tx)
	}},
}

// Version is the schema version this pomdev writes.
var Version = len(migrations)

// ErrNewer is a database whose schema is newer than this pomdev's.
var ErrNewer = errors.New("made by a newer pomdev")

// Open opens (creating it) relay.db in dir and brings its schema to
// Version: one writer at a time, WAL, a 5 s busy timeout.
func Open(dir string) (*sql.DB, error) {
	path := filepath.Join(dir, File)
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// One writer at a time is what SQLite allows; one connection also
	// keeps every statement on the same view of the database.
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w (move it away to start afresh)", path, err)
	}
	_ = os.Chmod(path, 0o600)
	if err := Migrate(db); err != nil {
		db.Close()
		if errors.Is(err, ErrNewer) {
			return nil, fmt.Errorf("%s: %w (use that pomdev, or move the file away to start afresh)", path, err)
		}
		return nil, fmt.Errorf("%s: %w (move it away to start afresh; grants will be asked for again)", path, err)
	}
	return db, nil
}

// Migrate applies the migrations db lacks, each in a transaction with its
// new version, so a step that fails leaves the database as it was before
// it.
func Migrate(db *sql.DB) error {
	v, err := SchemaVersion(db)
	if err != nil {
		return err
	}
	if v > Version {
		return fmt.Errorf("schema version %d: %w (this one knows %d)", v, ErrNewer, Version)
	}
	for i := v; i < Version; i++ {
		m := migrations[i]
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		if err := m.up(tx); err != nil {
			tx.Rollback()
			return fmt.Errorf("schema step %d (%s): %w", i+1, m.name, err)
		}
		// PRAGMA takes no parameters; the value is a number of ours.
		if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("schema step %d (%s): %w", i+1, m.name, err)
		}
	}
	return nil
}

// SchemaVersion is db's schema version (PRAGMA user_version).
func SchemaVersion(db *sql.DB) (int, error) {
	var v int
	err := db.QueryRow(`PRAGMA user_version`).Scan(&v)
	return v, err
}

func exec(q string) func(*sql.Tx) error {
	return func(tx *sql.Tx) error {
		_, err := tx.Exec(q)
		return err
	}
}

// addColumns adds the text columns (default ”) table lacks.
func addColumns(table string, cols ...string) func(*sql.Tx) error {
	return func(tx *sql.Tx) error {
		for _, col := range cols {
			var n int
			if err := tx.QueryRow(`SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?`, table, col).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				continue
			}
			if _, err := tx.Exec(`ALTER TABLE ` + table + ` ADD COLUMN ` + col + ` TEXT NOT NULL DEFAULT ''`); err != nil {
				return err
			}
		}
		return nil
	}
}
