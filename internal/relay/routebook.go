package relay

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// routeBookFile is the journal of route names of earlier versions (one
// JSON line per name given or used, the last line of a name winning),
// imported into the database once and then renamed *.migrated.
const routeBookFile = "routes.jsonl"

// knownRoute is who a route name belongs to and when it was last used.
type knownRoute struct {
	Name string    `json:"name"`
	FP   string    `json:"fp"`
	Used time.Time `json:"used"`
}

// routeBook remembers which key each route name belongs to, so that a name
// is never given to another key while its owner might come back. Names not
// used for ttl are forgotten; at most max are kept (the least recently used
// offline names go first). The names live in memory (guarded by the
// relay's mu; callers hold it) and in the relay's database (table routes,
// one row per name, written after the relay's mu is released).
type routeBook struct {
	db  *sql.DB
	ttl time.Duration
	max int

	names    map[string]knownRoute // guarded by Relay.mu
	pruneDue bool                  // names were dropped from memory; guarded by Relay.mu
}

func openRouteBook(db *sql.DB, dir string, ttl time.Duration, max int, now time.Time) (*routeBook, error) {
	b := &routeBook{db: db, ttl: ttl, max: max, names: map[string]knownRoute{}}
	rows, err := db.Query(`SELECT name, fp, used FROM routes`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var k knownRoute
		var used int64
		if err := rows.Scan(&k.Name, &k.FP, &used); err != nil {
			rows.Close()
			return nil, err
		}
		k.Used = time.Unix(used, 0).UTC()
		b.names[k.Name] = k
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := b.migrate(dir, now); err != nil {
		return nil, err
	}
	before := len(b.names)
	b.expire(now, nil)
	if len(b.names) != before {
		if err := b.prune(b.snapshot()); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// migrate imports the files of earlier versions: routes.jsonl (the
// journal) and routes.json (one object of name -> fingerprint), then
// renames them *.migrated.
func (b *routeBook) migrate(dir string, now time.Time) error {
	journal := filepath.Join(dir, routeBookFile)
	legacy := filepath.Join(dir, legacyRoutesFile)
	found := map[string]knownRoute{}
	data, err := os.ReadFile(journal)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		var k knownRoute
		if err := json.Unmarshal(sc.Bytes(), &k); err != nil || k.Name == "" || k.FP == "" {
			continue // a line cut short by a crash; the names before it stand
		}
		if old, ok := found[k.Name]; !ok || !k.Used.Before(old.Used) {
			found[k.Name] = k
		}
	}
	var old map[string]string
	if err := readJSON(legacy, &old); err != nil {
		return err
	}
	for name, fp := range old {
		if _, ok := found[name]; !ok {
			found[name] = knownRoute{Name: name, FP: fp, Used: now}
		}
	}
	if data == nil && old == nil {
		return nil
	}
	var ks []knownRoute
	for _, k := range found {
		if cur, ok := b.names[k.Name]; !ok || cur.Used.Before(k.Used) {
			b.names[k.Name] = k
			ks = append(ks, k)
		}
	}
	if err := b.save(ks...); err != nil {
		return fmt.Errorf("route names: %w", err)
	}
	for _, f := range []string{journal, legacy} {
		if _, err := os.Stat(f); err == nil {
			_ = os.Rename(f, f+".migrated")
		}
	}
	return nil
}

// owner is the key a name belongs to ("" when free). The caller holds the
// relay's mu.
func (b *routeBook) owner(name string, now time.Time) string {
	k, ok := b.names[name]
	if !ok || now.Sub(k.Used) > b.ttl {
		return ""
	}
	return k.FP
}

// use records that fp holds name now. The caller holds the relay's mu and
// passes the returned entry to save after releasing it.
func (b *routeBook) use(name, fp string, now time.Time, live func(string) bool) knownRoute {
	k := knownRoute{Name: name, FP: fp, Used: now.UTC().Truncate(time.Second)}
	_, existed := b.names[name]
	b.names[name] = k
	if !existed && len(b.names) > b.max {
		b.expire(now, live)
		b.pruneDue = true
	}
	return k
}

// expire forgets names unused for ttl and, past max, the least recently
// used tenth of the names not live. The caller holds the relay's mu.
func (b *routeBook) expire(now time.Time, live func(string) bool) {
	for name, k := range b.names {
		if now.Sub(k.Used) > b.ttl {
			delete(b.names, name)
		}
	}
	if len(b.names) <= b.max {
		return
	}
	offline := make([]knownRoute, 0, len(b.names))
	for _, k := range b.names {
		if live == nil || !live(k.Name) {
			offline = append(offline, k)
		}
	}
	slices.SortFunc(offline, func(a, b knownRoute) int { return a.Used.Compare(b.Used) })
	drop := len(b.names) - b.max + b.max/10
	for _, k := range offline[:min(drop, len(offline))] {
		delete(b.names, k.Name)
	}
}

// claim gives name to fp in the database, atomically for every relay of
// the store: when the name is free, already fp's, unused for ttl, or held
// by a key that free says may no longer hold it (the policy). It reports
// whether fp has it now and, when not, the row of the key that does. The
// caller does not hold the relay's mu, and records the answer in memory
// under it (use, or learn).
func (b *routeBook) claim(name, fp string, now time.Time, free func(owner string) bool) (bool, knownRoute, error) {
	k := knownRoute{Name: name, FP: fp, Used: now.UTC().Truncate(time.Second)}
	for range 2 {
		var got string
		err := b.db.QueryRow(`INSERT INTO routes (name, fp, used) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET fp = excluded.fp, used = excluded.used
			WHERE routes.fp = excluded.fp OR routes.used < $4 RETURNING fp`,
			name, fp, k.Used.Unix(), now.Add(-b.ttl).Unix()).Scan(&got)
		if err == nil {
			return true, k, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return false, knownRoute{}, err
		}
		held := knownRoute{Name: name}
		var used int64
		err = b.db.QueryRow(`SELECT fp, used FROM routes WHERE name = $1`, name).Scan(&held.FP, &used)
		if errors.Is(err, sql.ErrNoRows) {
			continue // pruned in between: claim again
		}
		if err != nil {
			return false, knownRoute{}, err
		}
		held.Used = time.Unix(used, 0).UTC()
		if !free(held.FP) {
			return false, held, nil
		}
		res, err := b.db.Exec(`UPDATE routes SET fp = $1, used = $2 WHERE name = $3 AND fp = $4 AND used = $5`, fp, k.Used.Unix(), name, held.FP, used)
		if err != nil {
			return false, knownRoute{}, err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return true, k, nil
		}
	}
	return false, knownRoute{}, fmt.Errorf("route %q: its row changed twice while claimed", name)
}

// learn records in memory that k holds its name (another key, as the
// database says); the caller holds the relay's mu.
func (b *routeBook) learn(k knownRoute) {
	if k.Name != "" && k.FP != "" {
		b.names[k.Name] = k
	}
}

// save records names' uses; the caller does not hold the relay's mu.
func (b *routeBook) save(ks ...knownRoute) error {
	if len(ks) == 0 {
		return nil
	}
	tx, err := b.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, k := range ks {
		if _, err := tx.Exec(`INSERT INTO routes (name, fp, used) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET fp = excluded.fp, used = excluded.used`,
			k.Name, k.FP, k.Used.Unix()); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// snapshot is the names in memory; the caller holds the relay's mu.
func (b *routeBook) snapshot() map[string]struct{} {
	keep := make(map[string]struct{}, len(b.names))
	for name := range b.names {
		keep[name] = struct{}{}
	}
	return keep
}

// prune deletes the rows of names not in keep (the names in memory when
// it was taken: the others expired or went past max), each only as it was
// read (a row a new use rewrote since stays); the caller does not hold the
// relay's mu.
func (b *routeBook) prune(keep map[string]struct{}) error {
	rows, err := b.db.Query(`SELECT name, used FROM routes`)
	if err != nil {
		return err
	}
	type row struct {
		name string
		used int64
	}
	var gone []row
	for rows.Next() {
		var x row
		if rows.Scan(&x.name, &x.used) == nil {
			if _, ok := keep[x.name]; !ok {
				gone = append(gone, x)
			}
		}
	}
	rows.Close()
	tx, err := b.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, x := range gone {
		if _, err := tx.Exec(`DELETE FROM routes WHERE name = $1 AND used = $2`, x.name, x.used); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// saveRoute writes a route name's use to the database; when names were
// dropped from memory (past MaxRouteNames) their rows go too, so the table
// stays as bounded as the map.
func (r *Relay) saveRoute(k knownRoute) {
	if err := r.book.save(k); err != nil {
		r.log.Warn("cannot save route names", "err", err)
	}
	r.pruneRoutes()
}

// pruneRoutes deletes the rows of names dropped from memory, if any were.
func (r *Relay) pruneRoutes() {
	r.mu.Lock()
	if !r.book.pruneDue {
		r.mu.Unlock()
		return
	}
	r.book.pruneDue = false
	keep := r.book.snapshot()
	r.mu.Unlock()
	// The table is read and rows deleted without the relay's mu: routing
	// does not wait on the database.
	if err := r.book.prune(keep); err != nil {
		r.log.Warn("cannot prune route names", "err", err)
	}
}
