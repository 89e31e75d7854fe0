package devloop

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/supervise"
	"github.com/pomdev/pomdev/internal/watch"
)

// recorder keeps a session's events for a test to wait on.
type recorder struct {
	mu     sync.Mutex
	events []Event
	cond   *sync.Cond
}

func newRecorder() *recorder {
	r := &recorder{}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *recorder) add(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	r.cond.Broadcast()
}

// wait returns the first event from index from on that ok accepts, and
// its index; it fails the test after a deadline.
func (r *recorder) wait(t *testing.T, from int, what string, ok func(Event) bool) (Event, int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	stop := time.AfterFunc(time.Until(deadline), r.cond.Broadcast)
	defer stop.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		for i := from; i < len(r.events); i++ {
			if ok(r.events[i]) {
				return r.events[i], i
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in %+v", what, r.events)
		}
		r.cond.Wait()
	}
}

func procEvent(kind string) func(Event) bool {
	return func(e Event) bool { p, ok := e.(Process); return ok && p.Kind == kind }
}

// A session runs its processes, restarts the one whose watched file
// changed (and only it), and stops everything when its context ends:
// Run returns nil, the last event is Stopping, no process is left.
func TestSessionRunsWatchesAndStops(t *testing.T) {
	dir := t.TempDir()
	a := &config.Loaded{}
	a.Dir = dir
	a.Processes = []config.Process{
		{Name: "worker", Command: "echo $$ >> worker.pids; exec sleep 7781", Watch: []string{"src/**/*.{ts,tsx}"}, Restart: config.DefaultRestart},
		{Name: "other", Command: "echo $$ >> other.pids; exec sleep 7782", Watch: []string{"docs/*.md"}, Restart: config.DefaultRestart},
	}
	if err := os.MkdirAll(filepath.Join(dir, "src", "ui"), 0o755); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	s, err := New(Config{App: a, NoTunnel: true, OnEvent: rec.add})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	_, i := rec.wait(t, 0, "worker started", func(e Event) bool {
		p, ok := e.(Process)
		return ok && p.Kind == supervise.Started && p.Process == "worker"
	})
	rec.wait(t, 0, "other started", func(e Event) bool {
		p, ok := e.(Process)
		return ok && p.Kind == supervise.Started && p.Process == "other"
	})
	if rows := s.Processes(); len(rows) != 2 || rows[0].Name != "worker" || rows[0].State != "running" || rows[0].PID == 0 {
		t.Fatalf("rows %+v", rows)
	}
	// The watcher may start after the processes: write until the restart.
	restarted := make(chan Event, 1)
	go func() {
		e, _ := rec.wait(t, i, "restart", procEvent(supervise.Restarting))
		restarted <- e
	}()
	var e Event
	for n := 0; e == nil; n++ {
		if err := os.WriteFile(filepath.Join(dir, "src", "ui", "view.tsx"), []byte(strconv.Itoa(n)), 0o644); err != nil {
			t.Fatal(err)
		}
		select {
		case e = <-restarted:
		case <-time.After(200 * time.Millisecond):
		}
	}
	if p := e.(Process); p.Process != "worker" || p.Cause != "src/ui/view.tsx changed" {
		t.Fatalf("restart %+v", p)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	rec.mu.Lock()
	var stopping int
	for _, e := range rec.events {
		if p, ok := e.(Process); ok && p.Process == "other" && p.Kind == supervise.Restarting {
			t.Errorf("other restarted: %+v", p)
		}
		if _, ok := e.(Stopping); ok {
			stopping++
		}
	}
	rec.mu.Unlock()
	if stopping != 1 {
		t.Errorf("%d Stopping events", stopping)
	}
	for _, f := range []string{"worker.pids", "other.pids"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		for _, l := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(l)
			if err := syscall.Kill(pid, 0); err == nil && !zombie(pid) {
				t.Errorf("%s: pid %d still running", f, pid)
			}
		}
	}
	if err := s.Run(context.Background()); err == nil {
		t.Error("a second Run was accepted")
	}
}

func zombie(pid int) bool {
	st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return strings.Contains(string(st), ") Z ")
}

// A watcher that cannot start ends Run with a *WatchError once what was
// started has stopped.
func TestSessionWatcherFails(t *testing.T) {
	a := &config.Loaded{}
	a.Dir = t.TempDir()
	a.Processes = []config.Process{{Name: "worker", Command: "exec sleep 7783", Watch: []string{"*.txt"}, Restart: config.DefaultRestart}}
	s, err := New(Config{App: a, NoTunnel: true, NewWatcher: func(string, watch.Options) (*watch.Watcher, error) {
		return nil, errors.New("inotify: too many instances")
	}})
	if err != nil {
		t.Fatal(err)
	}
	var we *WatchError
	if err := s.Run(context.Background()); !errors.As(err, &we) || we.Dir != a.Dir {
		t.Fatalf("got %v", err)
	}
	if st := s.Processes()[0].State; st != "stopped" && st != "starting" && st != "exited" {
		t.Fatalf("worker %s after Run", st)
	}
}

// A relay address that cannot be used is refused before anything runs.
func TestSessionBadRelay(t *testing.T) {
	a := &config.Loaded{}
	a.Dir = t.TempDir()
	a.Tunnel.Relay = "user@"
	var re *RelayError
	if _, err := New(Config{App: a}); !errors.As(err, &re) {
		t.Fatalf("got %v", err)
	}
}
