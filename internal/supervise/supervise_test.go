//go:build unix

package supervise

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) add(e Event) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }

func (r *recorder) find(kind string, n int) (Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := 0
	for _, e := range r.events {
		if e.Kind == kind {
			seen++
			if seen == n {
				return e, true
			}
		}
	}
	return Event{}, false
}

func (r *recorder) wait(t *testing.T, kind string, n int) Event {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if e, ok := r.find(kind, n); ok {
			return e
		}
		if time.Now().After(deadline) {
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("no %s event #%d; events: %+v", kind, n, r.events)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func run(t *testing.T, spec Spec) (*Process, *recorder, context.CancelFunc, chan error) {
	t.Helper()
	rec := &recorder{}
	p := New(spec, rec.add)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("Run did not return")
		}
	})
	return p, rec, cancel, done
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// A server that becomes ready on its port; a requested restart gives a new
// pid; stopping leaves nothing running, grandchildren included.
func TestReadyRestartStop(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("python3 needed for the test server")
	}
	port := freePort(t)
	dir := t.TempDir()
	// sh -> python3 (a grandchild) listening on the port.
	cmd := "echo starting $GREETING; exec python3 -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"127.0.0.1\"," + strconv.Itoa(port) + ")); s.listen(); print(\"listening\", flush=True); time.sleep(600)' & wait"
	p, rec, cancel, done := run(t, Spec{Name: "server", Command: cmd, Dir: dir, Env: []string{"GREETING=hello"}, Port: port, Grace: 2 * time.Second})
	first := rec.wait(t, Ready, 1)
	if first.PID == 0 || !alive(first.PID) {
		t.Fatalf("ready event %+v", first)
	}
	lines := p.Lines()
	if len(lines) < 2 || lines[0] != "starting hello" || lines[1] != "listening" {
		t.Fatalf("output %q", lines)
	}
	p.Restart("server/src/tools.ts changed")
	restart := rec.wait(t, Restarting, 1)
	if restart.Cause != "server/src/tools.ts changed" {
		t.Fatalf("cause %q", restart.Cause)
	}
	second := rec.wait(t, Ready, 2)
	if second.PID == first.PID || alive(first.PID) {
		t.Fatalf("old pid %d alive=%v, new %d", first.PID, alive(first.PID), second.PID)
	}
	cancel()
	<-done
	done <- nil
	if alive(second.PID) {
		t.Fatal("the process outlived Stop")
	}
	// The grandchild (python3) is gone too: nobody listens on the port.
	if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
		c.Close()
		t.Fatal("a grandchild still listens after stop")
	}
	if _, err := os.Stat(filepath.Join(dir)); err != nil {
		t.Fatal(err)
	}
}

// A crashing process restarts with backoff, and a crash loop is reported
// with its last output.
func TestCrashRestartsWithBackoff(t *testing.T) {
	_, rec, _, _ := run(t, Spec{Name: "crasher", Command: "echo boom; exit 3", BackoffMin: 20 * time.Millisecond, BackoffMax: 80 * time.Millisecond})
	e := rec.wait(t, Exited, 1)
	if e.Code != 3 {
		t.Fatalf("exit code %d", e.Code)
	}
	first := rec.wait(t, Restarting, 1)
	third := rec.wait(t, Restarting, 3)
	if first.Wait != 20*time.Millisecond || third.Wait != 80*time.Millisecond {
		t.Fatalf("backoff %v then %v", first.Wait, third.Wait)
	}
	loop := rec.wait(t, CrashLoop, 1)
	if !strings.Contains(loop.Cause, "boom") {
		t.Fatalf("crash loop %q", loop.Cause)
	}
}

// A process that ignores SIGTERM is killed after the grace period.
func TestStopKillsAfterGrace(t *testing.T) {
	p, rec, cancel, done := run(t, Spec{Name: "stubborn", Command: "trap '' TERM; echo up; while :; do sleep 0.05; done", Grace: 300 * time.Millisecond})
	rec.wait(t, Output, 1)
	pid := p.PID()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("stop did not finish")
	}
	done <- nil
	if alive(pid) {
		t.Fatal("still alive after the grace period")
	}
	rec.wait(t, Stopped, 1)
}

// Readiness that never comes is reported with the last output lines.
func TestNotReady(t *testing.T) {
	port := freePort(t)
	_, rec, _, _ := run(t, Spec{Name: "slow", Command: "echo cannot bind; sleep 30", Port: port, ReadyTimeout: 300 * time.Millisecond})
	e := rec.wait(t, NotReady, 1)
	if e.Err == nil || !strings.Contains(e.Err.Error(), "cannot bind") {
		t.Fatalf("not-ready %v", e.Err)
	}
}

// Restarts asked for (a file changed, r pressed) are not crashes: after
// five of them, one quick exit is not reported as a crash loop.
func TestRequestedRestartsAreNotCrashes(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "runs")
	// The sixth start exits at once with 1; the others run.
	cmd := `echo run >> ` + marker + `; if [ "$(wc -l < ` + marker + `)" -eq 6 ]; then exit 1; fi; exec sleep 60`
	p, rec, _, _ := run(t, Spec{Name: "edited", Command: cmd, BackoffMin: 20 * time.Millisecond, BackoffMax: 40 * time.Millisecond})
	for i := 1; i <= 5; i++ {
		rec.wait(t, Started, i)
		// The command has run (a start can be restarted before its
		// command begins, which would not count).
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(marker)
			if strings.Count(string(b), "\n") >= i {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %d never began", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
		p.Restart("file changed")
	}
	rec.wait(t, Exited, 1)
	rec.wait(t, Started, 7)
	if e, ok := rec.find(CrashLoop, 1); ok {
		t.Fatalf("one crash after five requested restarts reported as a crash loop: %q", e.Cause)
	}
}

// The cause of a crash comes before its stack: a tsx build error, a Node
// exception, a Go panic are picked out of their output; without any, the
// last lines.
func TestErrorLines(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		want  string
	}{
		{[]string{"> dev", "/app/server/src/tools.ts:63:53: ERROR: Expected identifier but found \")\"", "    at failureErrorWithLog (/app/node_modules/esbuild/lib/main.js:1463:15)", "    at readableAddChunk (node:internal/streams:1)"},
			"/app/server/src/tools.ts:63:53: ERROR: Expected identifier but found \")\""},
		{[]string{"listening", "TypeError: Cannot read properties of undefined (reading 'x')", "    at handler (/app/server.js:10:5)"},
			"TypeError: Cannot read properties of undefined (reading 'x')"},
		{[]string{"panic: runtime error: index out of range", "", "goroutine 1 [running]:", "\tmain.go:12 +0x1d"},
			"panic: runtime error: index out of range"},
		{[]string{"a", "b", "c", "d"}, "b | c | d"},
	} {
		if got := strings.Join(ErrorLines(tc.lines, 3), " | "); !strings.HasPrefix(got, tc.want) {
			t.Errorf("ErrorLines(%q) = %q, want it to start %q", tc.lines, got, tc.want)
		}
	}
}
