// Package pgtest gives tests a real PostgreSQL: a throwaway cluster made
// with initdb and started with pg_ctl in a temporary directory, listening
// only on a Unix socket there (no TCP port to collide on), run as the
// unprivileged user postgres when the tests run as root. CI installs
// Debian's postgresql; without it a test fails in CI and skips elsewhere.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registered as "pgx"
)

// Cluster is a PostgreSQL server of a test's own.
type Cluster struct {
	dir   string // the socket directory; data in dir/data
	bin   string // where initdb, pg_ctl live
	owner *user.User
}

// URL is the address of database db on c (over its Unix socket).
func (c *Cluster) URL(db string) string {
	q := url.Values{"host": {c.dir}, "user": {"postgres"}, "sslmode": {"disable"}}
	return "postgres:///" + db + "?" + q.Encode()
}

// Dir is the cluster's directory (its log is Dir/log).
func (c *Cluster) Dir() string { return c.dir }

// binDir finds initdb: on PATH, or in Debian's /usr/lib/postgresql/N/bin
// (newest N), or in POMDEV_TEST_PG_BIN.
func binDir() (string, error) {
	if d := os.Getenv("POMDEV_TEST_PG_BIN"); d != "" {
		return d, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	if len(dirs) > 0 {
		return filepath.Dir(dirs[0]), nil
	}
	return "", errors.New("initdb not found (apt-get install postgresql)")
}

func version(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// Need fails the test in CI and skips it elsewhere, when PostgreSQL is
// missing.
func need(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("PostgreSQL is required in CI: %v", err)
	}
	t.Skipf("no PostgreSQL: %v", err)
}

// New starts a cluster of the test's own, stopped (and removed) when the
// test ends: for tests that stop and start the server.
func New(t testing.TB) *Cluster {
	t.Helper()
	c, err := start()
	if err != nil {
		if errors.Is(err, errMissing) {
			need(t, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(c.Remove)
	return c
}

var errMissing = errors.New("PostgreSQL is not installed")

func start() (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errMissing, err)
	}
	c := &Cluster{bin: bin}
	if os.Geteuid() == 0 {
		// initdb refuses root; the server runs as postgres, in a
		// directory it owns.
		if c.owner, err = user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("%w: running as root, and no user postgres to run the server as: %v", errMissing, err)
		}
	}
	// Short: the socket's path (dir/.s.PGSQL.5432) must fit in 107 bytes.
	if c.dir, err = os.MkdirTemp("", "pomdev-pg-"); err != nil {
		return nil, err
	}
	if c.owner != nil {
		uid, _ := strconv.Atoi(c.owner.Uid)
		gid, _ := strconv.Atoi(c.owner.Gid)
		if err := os.Chown(c.dir, uid, gid); err != nil {
			os.RemoveAll(c.dir)
			return nil, err
		}
	}
	if out, err := c.run("initdb", "-D", c.data(), "--auth=trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(c.dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if err := c.Start(); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	return c, nil
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// run runs a PostgreSQL program, as the cluster's owner when there is one.
func (c *Cluster) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if c.owner != nil {
		cmd = exec.Command("runuser", append([]string{"-u", c.owner.Username, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd.CombinedOutput()
}

// Start starts the server (again, after Stop) and waits until it accepts
// connections.
func (c *Cluster) Start() error {
	opts := "-c listen_addresses='' -c unix_socket_directories=" + c.dir + " -c fsync=off -c full_page_writes=off -c max_connections=200"
	if out, err := c.run("pg_ctl", "-D", c.data(), "-o", opts, "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	return nil
}

// Stop stops the server at once (connections are cut, as when it dies).
func (c *Cluster) Stop() error {
	if out, err := c.run("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

// Remove stops the server, if running, and deletes its directory.
func (c *Cluster) Remove() {
	if _, err := os.Stat(filepath.Join(c.data(), "postmaster.pid")); err == nil {
		_ = c.Stop()
	}
	os.RemoveAll(c.dir)
}

// CreateDB creates a database with a fresh name on c and returns its URL;
// it is dropped when the test ends.
func (c *Cluster) CreateDB(t testing.TB) string {
	t.Helper()
	return createDB(t, c.URL("postgres"), func(db string) string { return c.URL(db) })
}

func createDB(t testing.TB, admin string, urlOf func(string) string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "t_" + hex.EncodeToString(b)
	a, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer a.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// The server may be stopped by the test: then the cluster goes.
		_, _ = a.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
	})
	return urlOf(name)
}

// The shared server: POMDEV_TEST_POSTGRES (a URL of a database whose user
// may create databases) when set, else one cluster started for the test
// binary by Main and stopped when its tests end.
var shared struct {
	sync.Mutex
	main    bool
	cluster *Cluster
	err     error
}

// Main runs a package's tests (call it from TestMain) and stops the
// shared cluster if one was started.
func Main(m *testing.M) int {
	shared.Lock()
	shared.main = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	if shared.cluster != nil {
		shared.cluster.Remove()
	}
	shared.Unlock()
	return code
}

// DB is a fresh database on the shared server, dropped when the test
// ends.
func DB(t testing.TB) string {
	t.Helper()
	if admin := os.Getenv("POMDEV_TEST_POSTGRES"); admin != "" {
		return createDB(t, admin, func(db string) string { return withDB(admin, db) })
	}
	shared.Lock()
	defer shared.Unlock()
	if !shared.main {
		t.Fatal("pgtest.DB needs the package's TestMain to call pgtest.Main (which stops the server it starts)")
	}
	if shared.cluster == nil && shared.err == nil {
		shared.cluster, shared.err = start()
	}
	if shared.err != nil {
		if errors.Is(shared.err, errMissing) {
			need(t, shared.err)
		}
		t.Fatal(shared.err)
	}
	return shared.cluster.CreateDB(t)
}

// withDB is admin's URL naming database db instead.
func withDB(admin, db string) string {
	u, err := url.Parse(admin)
	if err != nil {
		return admin
	}
	u.Path = "/" + db
	return u.String()
}

// Store is the store relays under test use: a fresh database when
// POMDEV_TEST_STORE=postgres (CI runs the relay's tests once so), else ""
// (relay.db in the state directory).
func Store(t testing.TB) string {
	t.Helper()
	switch s := os.Getenv("POMDEV_TEST_STORE"); strings.ToLower(s) {
	case "", "sqlite":
		return ""
	case "postgres":
		return DB(t)
	default:
		t.Fatalf("POMDEV_TEST_STORE=%q: want postgres or sqlite", s)
		return ""
	}
}
