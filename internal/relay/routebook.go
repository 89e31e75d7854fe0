package relay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// routeBookFile is the journal of route names: one JSON line per name given
// or used, the last line of a name (latest "used") winning on load.
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
// offline names go first).
//
// Lock order: fileMu, then the relay's mu. The names map is guarded by the
// relay's mu (callers hold it); the journal file by fileMu, which nobody
// takes while holding the relay's mu.
type routeBook struct {
	path string
	ttl  time.Duration
	max  int

	names map[string]knownRoute // guarded by Relay.mu

	fileMu    sync.Mutex
	lines     int // lines in the journal
	compacted int // lines after the last compaction
}

func openRouteBook(dir string, ttl time.Duration, max int, now time.Time) (*routeBook, error) {
	b := &routeBook{path: filepath.Join(dir, routeBookFile), ttl: ttl, max: max, names: map[string]knownRoute{}}
	data, err := os.ReadFile(b.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		var k knownRoute
		if err := json.Unmarshal(sc.Bytes(), &k); err != nil || k.Name == "" || k.FP == "" {
			// A line cut short by a crash; the names before it stand.
			continue
		}
		b.lines++
		if old, ok := b.names[k.Name]; !ok || !k.Used.Before(old.Used) {
			b.names[k.Name] = k
		}
	}
	// The earlier format: one JSON object of name -> fingerprint.
	legacy := filepath.Join(dir, legacyRoutesFile)
	var old map[string]string
	if err := readJSON(legacy, &old); err != nil {
		return nil, err
	}
	for name, fp := range old {
		if _, ok := b.names[name]; !ok {
			b.names[name] = knownRoute{Name: name, FP: fp, Used: now}
		}
	}
	b.compacted = len(b.names)
	b.expire(now, nil)
	if old != nil || b.lines > 2*len(b.names)+1024 {
		if err := b.compact(b.snapshot()); err != nil {
			return nil, err
		}
		if old != nil {
			_ = os.Remove(legacy)
		}
	}
	return b, nil
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

// snapshot copies the names; the caller holds the relay's mu.
func (b *routeBook) snapshot() []knownRoute {
	out := make([]knownRoute, 0, len(b.names))
	for _, k := range b.names {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b knownRoute) int { return a.Used.Compare(b.Used) })
	return out
}

// save appends k to the journal; the caller does not hold the relay's mu.
// It reports whether the journal has grown enough to be compacted.
func (b *routeBook) save(k knownRoute) (compact bool, err error) {
	line, err := json.Marshal(k)
	if err != nil {
		return false, err
	}
	b.fileMu.Lock()
	defer b.fileMu.Unlock()
	f, err := os.OpenFile(b.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return false, err
	}
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	b.lines++
	return b.lines > 2*b.compacted+1024, err
}

// compact rewrites the journal with one line per name in names. The
// caller holds fileMu, or is the only user (openRouteBook).
func (b *routeBook) compact(names []knownRoute) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, k := range names {
		if err := enc.Encode(k); err != nil {
			return err
		}
	}
	if err := writeFileAtomic(b.path, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("route names: %w", err)
	}
	b.lines, b.compacted = len(names), len(names)
	return nil
}
