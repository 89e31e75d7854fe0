// Package store is the relay's database: relay.db (SQLite) in its state
// directory by default, or a PostgreSQL database that several relays
// share (relay.store). It opens it and owns its schema, one ordered list
// of migrations for every table (the relay's route names and sign-in
// sessions, and the authorization server's clients, requests, grants and
// tokens) run on either engine, with the version in SQLite's PRAGMA
// user_version or PostgreSQL's table pomdev_schema. The packages that use
// the database create no schema; their statements are written once for
// both engines ($1, $2 … parameters, which SQLite also reads by number).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/stdlib" // PostgreSQL, registered as "pgx"
	"github.com/pomdev/pomdev/internal/relayrule"
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
	up   func(*sql.Tx, Engine) error
}

var migrations = []migration{
	{"access tables", exec(`
CREATE TABLE IF NOT EXISTS clients (
	id TEXT PRIMARY KEY,
	secret_hash TEXT NOT NULL DEFAULT '',
	name TEXT NOT NULL,
	redirect_uris TEXT NOT NULL,
	auth_method TEXT NOT NULL,
	created BIGINT NOT NULL,
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
	created BIGINT NOT NULL,
	expires BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS grants (
	id TEXT PRIMARY KEY,
	owner TEXT NOT NULL,
	client_id TEXT NOT NULL,
	client_name TEXT NOT NULL,
	approved_by TEXT NOT NULL,
	created BIGINT NOT NULL,
	expires BIGINT NOT NULL,
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
	auth_time BIGINT NOT NULL,
	expires BIGINT NOT NULL,
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
	{"routes", exec(`CREATE TABLE IF NOT EXISTS routes (name TEXT PRIMARY KEY, fp TEXT NOT NULL, used BIGINT NOT NULL)`)},
	// Signed-in keys (--auth signin) and who they signed in as.
	{"sessions", func(tx *sql.Tx, e Engine) error {
		if err := exec(`CREATE TABLE IF NOT EXISTS sessions (fp TEXT PRIMARY KEY, expires BIGINT NOT NULL)`)(tx, e); err != nil {
			return err
		}
		return addColumns("sessions", "sub", "email")(tx, e)
	}},
	// The relay's secrets on a shared store (secret.go); relay.db keeps
	// them in files, and the table empty.
	{"secrets", exec(`CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)`)},
	// The relays of a shared store (relay/fleet): each announces its
	// internal address and beats (seen, in ms); a lease names the relay
	// that holds a live route. relay.db leaves them empty.
	{"nodes, leases", exec(`
CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, addr TEXT NOT NULL, started BIGINT NOT NULL, seen BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS leases (route TEXT PRIMARY KEY, node TEXT NOT NULL, since BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS leases_node ON leases (node);`)},
	// The audit trail of every relay of a shared store (relay.db's relays
	// keep theirs in files, and the table empty): a line each, in order.
	{"audit", func(tx *sql.Tx, e Engine) error {
		id := "INTEGER PRIMARY KEY"
		if e == Postgres {
			id = "BIGSERIAL PRIMARY KEY"
		}
		return exec(`CREATE TABLE IF NOT EXISTS audit (id `+id+`, at BIGINT NOT NULL, kind TEXT NOT NULL, route TEXT NOT NULL, line TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);`)(tx, e)
	}},
	// Rate-limit windows every relay of a shared store counts together
	// (wrong approval codes per key): n in the window ending at reset (ms).
	{"limits", exec(`CREATE TABLE IF NOT EXISTS limits (key TEXT PRIMARY KEY, n BIGINT NOT NULL, reset BIGINT NOT NULL)`)},
}

// Version is the schema version this pomdev writes.
var Version = len(migrations)

// ErrNewer is a database whose schema is newer than this pomdev's.
var ErrNewer = errors.New("made by a newer pomdev")

// Engine is the database a store runs on.
type Engine string

const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// EngineOf is the engine of a database opened by Open.
func EngineOf(db *sql.DB) Engine {
	if _, ok := db.Driver().(*stdlib.Driver); ok {
		return Postgres
	}
	return SQLite
}

// Redact is store with its password hidden, for messages and logs.
func Redact(store string) string {
	u, err := url.Parse(store)
	if err != nil {
		return "(a store URL that does not parse)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Open opens the relay's database and brings its schema to Version:
// with store "", relay.db in dir (created); otherwise the PostgreSQL
// database store names (postgres://user:password@host/db?sslmode=…).
func Open(dir, store string) (*sql.DB, error) {
	if store == "" {
		return openSQLite(dir)
	}
	return openPostgres(store)
}

// openSQLite opens relay.db in dir: one writer at a time, WAL, a 5 s busy
// timeout.
func openSQLite(dir string) (*sql.DB, error) {
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

// Bounds of a PostgreSQL store's pool: enough connections for a node's
// concurrent sign-ins and token checks, few enough that a fleet of nodes
// stays well under the server's max_connections (100 by default).
const (
	pgMaxConns    = 16
	pgIdleConns   = 4
	pgIdleTimeout = 5 * time.Minute
	// pgOpenTimeout bounds reaching the server when the relay starts.
	pgOpenTimeout = 15 * time.Second
)

func openPostgres(store string) (*sql.DB, error) {
	name := Redact(store)
	if !relayrule.IsPostgresURL(store) {
		return nil, fmt.Errorf("store %s: not a postgres:// URL (leave relay.store unset for relay.db in the state directory)", name)
	}
	db, err := sql.Open("pgx", store)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	db.SetMaxOpenConns(pgMaxConns)
	db.SetMaxIdleConns(pgIdleConns)
	db.SetConnMaxIdleTime(pgIdleTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), pgOpenTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w (is PostgreSQL running there, and may this user connect?)", name, err)
	}
	if err := Migrate(db); err != nil {
		db.Close()
		if errors.Is(err, ErrNewer) {
			return nil, fmt.Errorf("store %s: %w (every relay of a store must run this pomdev or a newer one)", name, err)
		}
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	return db, nil
}

// pgLock is the advisory lock under which PostgreSQL migrations run, so
// that relays starting together on one store migrate it once.
const pgLock = 0x706f6d646576 // "pomdev"

// Migrate applies the migrations db lacks, each in a transaction with its
// new version, so a step that fails leaves the database as it was before
// it. On PostgreSQL each step holds an advisory lock and reads the
// version again under it: relays migrating one store at once take turns.
func Migrate(db *sql.DB) error {
	e := EngineOf(db)
	for {
		done, err := migrateStep(db, e)
		if err != nil || done {
			return err
		}
	}
}

// migrateStep applies the one migration after db's version; done when
// there is none.
func migrateStep(db *sql.DB, e Engine) (done bool, err error) {
	tx, err := db.Begin()
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if e == Postgres {
		if _, err := tx.Exec(`SELECT pg_advisory_xact_lock($1)`, pgLock); err != nil {
			return false, err
		}
		if _, err := tx.Exec(`CREATE TABLE IF NOT EXISTS pomdev_schema (version INTEGER NOT NULL)`); err != nil {
			return false, err
		}
	}
	v, err := schemaVersion(tx, e)
	if err != nil {
		return false, err
	}
	if v > Version {
		return false, fmt.Errorf("schema version %d: %w (this one knows %d)", v, ErrNewer, Version)
	}
	if v == Version {
		return true, tx.Commit()
	}
	m := migrations[v]
	if err := m.up(tx, e); err != nil {
		return false, fmt.Errorf("schema step %d (%s): %w", v+1, m.name, err)
	}
	if err := setVersion(tx, e, v+1); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("schema step %d (%s): %w", v+1, m.name, err)
	}
	return false, nil
}

// querier is a database or a transaction.
type querier interface {
	QueryRow(string, ...any) *sql.Row
}

func schemaVersion(q querier, e Engine) (int, error) {
	var v int
	if e == Postgres {
		err := q.QueryRow(`SELECT COALESCE(MAX(version), 0) FROM pomdev_schema`).Scan(&v)
		return v, err
	}
	err := q.QueryRow(`PRAGMA user_version`).Scan(&v)
	return v, err
}

func setVersion(tx *sql.Tx, e Engine, v int) error {
	if e == Postgres {
		if _, err := tx.Exec(`DELETE FROM pomdev_schema`); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO pomdev_schema (version) VALUES ($1)`, v)
		return err
	}
	// PRAGMA takes no parameters; the value is a number of ours.
	_, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", v))
	return err
}

// SchemaVersion is db's schema version (0 before any migration).
func SchemaVersion(db *sql.DB) (int, error) {
	e := EngineOf(db)
	if e == Postgres {
		var exists bool
		if err := db.QueryRow(`SELECT to_regclass('pomdev_schema') IS NOT NULL`).Scan(&exists); err != nil || !exists {
			return 0, err
		}
	}
	return schemaVersion(db, e)
}

func exec(q string) func(*sql.Tx, Engine) error {
	return func(tx *sql.Tx, _ Engine) error {
		_, err := tx.Exec(q)
		return err
	}
}

// addColumns adds the text columns (default ”) table lacks.
func addColumns(table string, cols ...string) func(*sql.Tx, Engine) error {
	return func(tx *sql.Tx, e Engine) error {
		for _, col := range cols {
			if e == Postgres {
				if _, err := tx.Exec(`ALTER TABLE ` + table + ` ADD COLUMN IF NOT EXISTS ` + col + ` TEXT NOT NULL DEFAULT ''`); err != nil {
					return err
				}
				continue
			}
			var n int
			if err := tx.QueryRow(`SELECT COUNT(*) FROM pragma_table_info($1) WHERE name = $2`, table, col).Scan(&n); err != nil {
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

// Text is s as every store keeps it: valid UTF-8 without NUL, which
// PostgreSQL refuses in text and SQLite takes. Bytes that are not UTF-8
// and NULs become U+FFFD, so a stranger's value is stored the same way on
// either engine instead of failing on one.
func Text(s string) string {
	if Storable(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// Storable reports whether every value is kept as it is (Text changes
// none): a lookup by any other value finds nothing, on either engine.
func Storable(values ...string) bool {
	for _, s := range values {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return false
		}
	}
	return true
}

// Pinger answers whether a store answers, pinging it at most once a
// second however often it is asked (readiness checks, or a flood of
// them; a failing request's check).
type Pinger struct {
	DB *sql.DB

	mu   sync.Mutex
	at   time.Time
	err  error
	busy bool
}

// Check is the store's last answer, asked again when it is a second old;
// while one ping is out, callers get the answer before it.
func (p *Pinger) Check(ctx context.Context) error {
	p.mu.Lock()
	if time.Since(p.at) < time.Second || p.busy {
		err := p.err
		p.mu.Unlock()
		return err
	}
	p.busy = true
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	err := p.DB.PingContext(ctx)
	cancel()
	p.mu.Lock()
	p.at, p.err, p.busy = time.Now(), err, false
	p.mu.Unlock()
	return err
}
