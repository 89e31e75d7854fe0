package policy

import (
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher holds the last good policy of a file and reloads it when the
// file changes; a file that no longer validates is reported and the last
// good policy stays in force.
type Watcher struct {
	path     string
	log      *slog.Logger
	onChange func(*Policy)

	cur     atomic.Pointer[Policy]
	mu      sync.Mutex
	lastErr error
	timer   *time.Timer

	fw     *fsnotify.Watcher
	done   chan struct{}
	closed atomic.Bool
	wg     sync.WaitGroup
}

// debounce lets an editor finish writing before the file is read.
const debounce = 100 * time.Millisecond

// Watch loads path (an error here is fatal: there is no good policy yet)
// and watches it. onChange, if set, runs after each successful reload.
func Watch(path string, log *slog.Logger, onChange func(*Policy)) (*Watcher, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	p, err := Load(path)
	if err != nil {
		return nil, err
	}
	w := &Watcher{path: path, log: log, onChange: onChange, done: make(chan struct{})}
	w.cur.Store(p)
	if w.fw, err = fsnotify.NewWatcher(); err != nil {
		return nil, err
	}
	// The directory, not the file: editors replace files by renaming.
	if err := w.fw.Add(filepath.Dir(path)); err != nil {
		w.fw.Close()
		return nil, err
	}
	w.wg.Add(1)
	go w.run()
	return w, nil
}

// Policy is the policy in force.
func (w *Watcher) Policy() *Policy { return w.cur.Load() }

// Err is why the file on disk is not in force (nil when it is).
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

func (w *Watcher) run() {
	defer w.wg.Done()
	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) != w.path {
				continue
			}
			w.mu.Lock()
			if w.timer == nil {
				w.timer = time.AfterFunc(debounce, w.Reload)
			} else {
				w.timer.Reset(debounce)
			}
			w.mu.Unlock()
		case err, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			w.log.Warn("policy: watching the file failed; changes may be missed", "file", w.path, "err", err)
		}
	}
}

// Reload reads the file again now.
func (w *Watcher) Reload() {
	if w.closed.Load() {
		return
	}
	p, err := Load(w.path)
	w.mu.Lock()
	w.lastErr = err
	w.mu.Unlock()
	if err != nil {
		w.log.Warn("policy file not reloaded: the last good policy stays in force", "err", err)
		return
	}
	w.cur.Store(p)
	w.log.Info("policy reloaded", "file", w.path)
	if w.onChange != nil {
		w.onChange(p)
	}
}

// Close stops watching.
func (w *Watcher) Close() {
	w.closed.Store(true)
	close(w.done)
	w.fw.Close()
	w.wg.Wait()
	w.mu.Lock()
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
}
