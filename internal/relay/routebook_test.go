package relay

import (
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	relaystore "github.com/pomdev/pomdev/internal/relay/store"
)

func testDB(t testing.TB, dir string) *sql.DB {
	t.Helper()
	db, err := relaystore.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Names are kept in the database; a reopened book has the same names; the
// files of earlier versions (routes.jsonl, a line cut short included, and
// routes.json) are imported once and renamed.
func TestRouteBookStoreAndMigration(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	if err := os.WriteFile(filepath.Join(dir, legacyRoutesFile), []byte(`{"old-name":"SHA256:old"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	journal := `{"name":"j1","fp":"SHA256:a","used":"2026-11-30T10:00:00Z"}
{"name":"j1","fp":"SHA256:b","used":"2026-11-30T11:00:00Z"}
{"name":"j2","fp":"SHA256:c","us`
	if err := os.WriteFile(filepath.Join(dir, routeBookFile), []byte(journal), 0o600); err != nil {
		t.Fatal(err)
	}
	db := testDB(t, dir)
	b, err := openRouteBook(db, dir, 90*24*time.Hour, 1000, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{legacyRoutesFile, routeBookFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", f, err)
		}
		if _, err := os.Stat(filepath.Join(dir, f+".migrated")); err != nil {
			t.Errorf("%s not kept as .migrated: %v", f, err)
		}
	}
	for i := range 3 {
		if err := b.save(b.use(fmt.Sprintf("name-%d", i), "SHA256:k", now, nil)); err != nil {
			t.Fatal(err)
		}
	}
	b2, err := openRouteBook(db, dir, 90*24*time.Hour, 1000, now)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"old-name": "SHA256:old", "j1": "SHA256:b", "name-0": "SHA256:k", "name-2": "SHA256:k"} {
		if got := b2.owner(name, now); got != want {
			t.Errorf("%s: owner %q after reopen, want %q", name, got, want)
		}
	}
	if _, ok := b2.names["j2"]; ok {
		t.Error("a journal line cut short was imported")
	}
}

// Names unused for the TTL are free again, in memory and after a reopen
// (their rows deleted); used ones stay reserved.
func TestRouteBookExpiry(t *testing.T) {
	dir := t.TempDir()
	db := testDB(t, dir)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b, _ := openRouteBook(db, dir, 90*24*time.Hour, 1000, t0)
	_ = b.save(b.use("stale", "SHA256:a", t0, nil))
	_ = b.save(b.use("fresh", "SHA256:b", t0.Add(60*24*time.Hour), nil))
	later := t0.Add(100 * 24 * time.Hour)
	if b.owner("stale", later) != "" || b.owner("fresh", later) != "SHA256:b" {
		t.Fatalf("stale %q fresh %q", b.owner("stale", later), b.owner("fresh", later))
	}
	b2, _ := openRouteBook(db, dir, 90*24*time.Hour, 1000, later)
	if _, ok := b2.names["stale"]; ok || b2.owner("fresh", later) == "" {
		t.Fatalf("after reopen: %v", b2.names)
	}
	var n int
	_ = db.QueryRow(`SELECT count(*) FROM routes`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d rows after the stale name expired", n)
	}
}

// Past the maximum, the least recently used names not live are
// forgotten, in memory and in the table; live names stay.
func TestRouteBookMax(t *testing.T) {
	dir := t.TempDir()
	r := &Relay{log: discardLogger(), routes: map[string]*route{}}
	var err error
	if r.book, err = openRouteBook(testDB(t, dir), dir, 90*24*time.Hour, 10, time.Now()); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for i := range 30 {
		r.mu.Lock()
		k := r.book.use(fmt.Sprintf("n%02d", i), "SHA256:k", t0.Add(time.Duration(i)*time.Second), func(name string) bool { return name == "n00" })
		r.mu.Unlock()
		r.saveRoute(k)
	}
	if len(r.book.names) > 10 {
		t.Fatalf("%d names kept, max 10", len(r.book.names))
	}
	if _, ok := r.book.names["n00"]; !ok {
		t.Fatal("a live name was forgotten")
	}
	if _, ok := r.book.names["n29"]; !ok {
		t.Fatal("the newest name was forgotten")
	}
	var n int
	_ = r.book.db.QueryRow(`SELECT count(*) FROM routes`).Scan(&n)
	if n > 10 {
		t.Fatalf("%d rows for at most 10 names", n)
	}
}

// BenchmarkRouteNames times giving b.N new names (in-memory update and a
// row each); the cost per name does not grow with the names already kept.
func BenchmarkRouteNames(b *testing.B) {
	dir := b.TempDir()
	r := &Relay{log: discardLogger()}
	r.book, _ = openRouteBook(testDB(b, dir), dir, 90*24*time.Hour, 1_000_000, time.Now())
	for i := 0; b.Loop(); i++ {
		r.mu.Lock()
		k := r.book.use(fmt.Sprintf("name-%d", i), "SHA256:k", time.Now(), r.isLive)
		r.mu.Unlock()
		r.saveRoute(k)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// sessions.json of earlier versions is imported (expired entries
// dropped) and renamed; sessions then live in the database.
func TestSigninSessionsMigrated(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	legacy := fmt.Sprintf(`{"SHA256:live":%q,"SHA256:old":%q}`, now.Add(time.Hour).Format(time.RFC3339), now.Add(-time.Hour).Format(time.RFC3339))
	if err := os.WriteFile(filepath.Join(dir, sessionsFile), []byte(legacy), 0o600); err != nil {
		t.Fatal(err)
	}
	db := testDB(t, dir)
	s, err := newSignin(db, dir, 24*time.Hour, 15*time.Minute, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if !s.signedIn("SHA256:live") || s.signedIn("SHA256:old") {
		t.Fatalf("sessions after import: %v", s.sessions)
	}
	if _, err := os.Stat(filepath.Join(dir, sessionsFile+".migrated")); err != nil {
		t.Fatal("sessions.json not renamed")
	}
	s2, err := newSignin(db, dir, 24*time.Hour, 15*time.Minute, time.Now)
	if err != nil || !s2.signedIn("SHA256:live") {
		t.Fatalf("session lost on reopen: %v %v", s2.sessions, err)
	}
}
