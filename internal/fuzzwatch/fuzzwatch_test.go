package fuzzwatch

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// fakeT records a failure instead of ending the test.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = format
	panic(f)
}

func catch(fn func(*fakeT)) string {
	ft := &fakeT{}
	func() {
		defer func() {
			if r := recover(); r != nil && r != ft {
				panic(r)
			}
		}()
		fn(ft)
	}()
	return ft.failed
}

// A hang ends the process with the stacks: run in a child process.
func TestWatchdogHang(t *testing.T) {
	if os.Getenv("FUZZWATCH_HANG") == "1" {
		Run(t, Limits{Time: 50 * time.Millisecond}, func() { select {} })
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWatchdogHang$")
	cmd.Env = append(os.Environ(), "FUZZWATCH_HANG=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "fuzzwatch: the input took over 50ms") {
		t.Fatalf("%v\n%s", err, out)
	}
}

// Each watchdog fires on what it watches, and none fires on a quick,
// small, tidy input.
func TestWatchdogs(t *testing.T) {
	if got := catch(func(ft *fakeT) { Run(ft, Limits{}, func() { _ = strings.Repeat("x", 100) }) }); got != "" {
		t.Fatalf("a tidy input failed: %s", got)
	}
	stop := make(chan struct{})
	defer close(stop)
	if got := catch(func(ft *fakeT) {
		Run(ft, Limits{Bytes: 1 << 20}, func() { _ = make([]byte, 8<<20) })
	}); !strings.Contains(got, "allocated") {
		t.Errorf("allocation: %q", got)
	}
	if got := catch(func(ft *fakeT) { Run(ft, Limits{}, func() { go func() { <-stop }() }) }); !strings.Contains(got, "left behind") {
		t.Errorf("leak: %q", got)
	}
}
