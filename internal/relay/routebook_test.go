package relay

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The journal is appended to, never rewritten, for each new name; a
// reopened book has the same names; the previous format is migrated.
func TestRouteBookJournal(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, legacyRoutesFile), []byte(`{"old-name":"SHA256:old"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	b, err := openRouteBook(dir, 90*24*time.Hour, 1000, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, legacyRoutesFile)); !os.IsNotExist(err) {
		t.Fatalf("routes.json left behind: %v", err)
	}
	path := filepath.Join(dir, routeBookFile)
	prev, _ := os.ReadFile(path)
	st0, _ := os.Stat(path)
	for i := range 3 {
		if _, err := b.save(b.use(fmt.Sprintf("name-%d", i), "SHA256:k", now, nil)); err != nil {
			t.Fatal(err)
		}
		cur, _ := os.ReadFile(path)
		if !bytes.HasPrefix(cur, prev) || bytes.Count(cur, []byte("\n")) != bytes.Count(prev, []byte("\n"))+1 {
			t.Fatalf("save %d did not append one line:\n%s\n->\n%s", i, prev, cur)
		}
		prev = cur
	}
	st1, _ := os.Stat(path)
	if !os.SameFile(st0, st1) {
		t.Fatal("the journal was replaced, not appended to")
	}
	b2, err := openRouteBook(dir, 90*24*time.Hour, 1000, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"old-name", "name-0", "name-2"} {
		if b2.owner(name, now) == "" {
			t.Errorf("%s forgotten on reopen", name)
		}
	}
	if got := b2.owner("old-name", now); got != "SHA256:old" {
		t.Errorf("migrated owner %q", got)
	}
}

// Names unused for the TTL are free again, in memory and after a reopen;
// used ones stay reserved.
func TestRouteBookExpiry(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b, _ := openRouteBook(dir, 90*24*time.Hour, 1000, t0)
	_, _ = b.save(b.use("stale", "SHA256:a", t0, nil))
	_, _ = b.save(b.use("fresh", "SHA256:b", t0.Add(60*24*time.Hour), nil))
	later := t0.Add(100 * 24 * time.Hour)
	if b.owner("stale", later) != "" || b.owner("fresh", later) != "SHA256:b" {
		t.Fatalf("stale %q fresh %q", b.owner("stale", later), b.owner("fresh", later))
	}
	b2, _ := openRouteBook(dir, 90*24*time.Hour, 1000, later)
	if _, ok := b2.names["stale"]; ok || b2.owner("fresh", later) == "" {
		t.Fatalf("after reopen: %v", b2.names)
	}
}

// Past the maximum, the least recently used names not live are
// forgotten; live names stay.
func TestRouteBookMax(t *testing.T) {
	b, _ := openRouteBook(t.TempDir(), 90*24*time.Hour, 10, time.Now())
	t0 := time.Now()
	for i := range 30 {
		b.use(fmt.Sprintf("n%02d", i), "SHA256:k", t0.Add(time.Duration(i)*time.Second), func(name string) bool { return name == "n00" })
	}
	if len(b.names) > 10 {
		t.Fatalf("%d names kept, max 10", len(b.names))
	}
	if _, ok := b.names["n00"]; !ok {
		t.Fatal("a live name was forgotten")
	}
	if _, ok := b.names["n29"]; !ok {
		t.Fatal("the newest name was forgotten")
	}
}

// A journal of repeated uses is compacted: its length stays within a
// bound of the names it holds, and it loads to the same names.
func TestRouteBookCompaction(t *testing.T) {
	r := &Relay{}
	dir := t.TempDir()
	var err error
	if r.book, err = openRouteBook(dir, 90*24*time.Hour, 1000, time.Now()); err != nil {
		t.Fatal(err)
	}
	r.log = discardLogger()
	for i := range 5000 {
		r.mu.Lock()
		k := r.book.use(fmt.Sprintf("n%d", i%10), "SHA256:k", time.Now(), r.isLive)
		r.mu.Unlock()
		r.saveRoute(k)
	}
	data, _ := os.ReadFile(filepath.Join(dir, routeBookFile))
	if lines := strings.Count(string(data), "\n"); lines > 2*10+1024+1 {
		t.Fatalf("%d lines for 10 names", lines)
	}
	b, _ := openRouteBook(dir, 90*24*time.Hour, 1000, time.Now())
	if len(b.names) != 10 {
		t.Fatalf("%d names after compaction", len(b.names))
	}
}

// BenchmarkRouteNames times giving b.N new names (in-memory update and a
// journal append each); the cost per name does not grow with the names
// already kept.
func BenchmarkRouteNames(b *testing.B) {
	r := &Relay{log: discardLogger()}
	r.book, _ = openRouteBook(b.TempDir(), 90*24*time.Hour, 1_000_000, time.Now())
	for i := 0; b.Loop(); i++ {
		r.mu.Lock()
		k := r.book.use(fmt.Sprintf("name-%d", i), "SHA256:k", time.Now(), r.isLive)
		r.mu.Unlock()
		r.saveRoute(k)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
