// Package watch reports file changes under a directory for `pomdev up`:
// fsnotify on every directory (new directories are followed), dependency,
// VCS and build output and editor temporary files ignored, and changes to
// each path debounced so a save that writes a file several times is one
// change.
package watch

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/fsnotify/fsnotify"
)

// DefaultIgnore lists what is never watched: dependencies, VCS data, build
// output and editor temporary files.
var DefaultIgnore = []string{
	"**/node_modules/**", "**/.git/**", "**/dist/**", "**/build/**", "**/.vite/**", "**/coverage/**",
	"**/*.swp", "**/*.swx", "**/*~", "**/.#*", "**/#*#", "**/4913", "**/.DS_Store",
}

// DefaultDebounce is how long a path must stay quiet before its change is
// reported.
const DefaultDebounce = 150 * time.Millisecond

// Change is one debounced change: Path is relative to the root, with
// slashes.
type Change struct {
	Path string
}

// Options tune a Watcher.
type Options struct {
	// Ignore adds globs (relative to the root, ** allowed) to DefaultIgnore.
	Ignore   []string
	Debounce time.Duration
}

// Watcher watches a directory tree.
type Watcher struct {
	root     string
	ignore   []string
	debounce time.Duration
	fsw      *fsnotify.Watcher
}

// New watches root and every directory below it that is not ignored.
func New(root string, opts Options) (*Watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &Watcher{root: filepath.Clean(root), ignore: append(append([]string{}, DefaultIgnore...), opts.Ignore...),
		debounce: opts.Debounce, fsw: fsw}
	if w.debounce <= 0 {
		w.debounce = DefaultDebounce
	}
	if err := w.addTree(w.root); err != nil {
		fsw.Close()
		return nil, err
	}
	return w, nil
}

func (w *Watcher) rel(p string) string {
	r, err := filepath.Rel(w.root, p)
	if err != nil {
		return filepath.ToSlash(p)
	}
	return filepath.ToSlash(r)
}

// Ignored reports whether the relative slash path is ignored.
func (w *Watcher) Ignored(rel string) bool {
	for _, g := range w.ignore {
		if Match(g, rel) || Match(g, rel+"/") {
			return true
		}
	}
	return false
}

// addTree watches dir and its subdirectories.
func (w *Watcher) addTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // vanished meanwhile
		}
		if !d.IsDir() {
			return nil
		}
		if p != w.root && w.Ignored(w.rel(p)) {
			return filepath.SkipDir
		}
		if err := w.fsw.Add(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
}

// Run sends debounced changes to out until ctx ends, then closes the
// watcher. out should be buffered or drained promptly.
func (w *Watcher) Run(ctx context.Context, out chan<- Change) error {
	defer w.fsw.Close()
	deb := newDebouncer(w.debounce, func(rel string) {
		select {
		case out <- Change{Path: rel}:
		case <-ctx.Done():
		}
	})
	defer deb.stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return nil
			}
			return err
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return nil
			}
			rel := w.rel(ev.Name)
			if w.Ignored(rel) {
				continue
			}
			if ev.Has(fsnotify.Create) {
				if st, err := os.Stat(ev.Name); err == nil && st.IsDir() {
					// A new directory: watch it, and report what it holds
					// (files may have landed before the watch).
					_ = w.addTree(ev.Name)
					_ = filepath.WalkDir(ev.Name, func(p string, d fs.DirEntry, err error) error {
						if err == nil && !d.IsDir() && !w.Ignored(w.rel(p)) {
							deb.bump(w.rel(p))
						}
						return nil
					})
					continue
				}
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			deb.bump(rel)
		}
	}
}

// Match reports whether the slash path name matches pattern, with
// doublestar's syntax: "**" for any number of path segments (zero
// included), "*", "?", classes "[...]" and alternatives "{ts,tsx}". It is
// the one matcher of watch globs, for validation (ValidGlob) as for
// matching.
func Match(pattern, name string) bool {
	ok, err := doublestar.Match(pattern, name)
	return err == nil && ok
}

// ValidGlob reports whether pattern is a well-formed glob.
func ValidGlob(pattern string) bool { return doublestar.ValidatePattern(pattern) }
