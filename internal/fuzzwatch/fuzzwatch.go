// Package fuzzwatch is the watchdog of pomdev's fuzz targets: besides
// panics, an input fails when handling it takes too long (a spin or a
// hang), allocates too much (a size taken from the input), or leaves
// goroutines behind (a leak a peer could repeat).
package fuzzwatch

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// Limits bound one input's handling. Zero fields take the defaults: 2 s,
// 64 MiB allocated, no goroutine left.
type Limits struct {
	Time  time.Duration
	Bytes uint64
	// Goroutines is how many more goroutines than before may remain once
	// the input is handled (after a grace of a second for them to end).
	Goroutines int
}

// Run calls fn under the limits and fails t if it breaks one. fn runs on
// the calling goroutine (so it may call t.Fatal); an input that takes too
// long panics from the watchdog's goroutine with every goroutine's stack,
// which ends the process: the fuzzer keeps the input as a crasher.
func Run(t testing.TB, l Limits, fn func()) {
	t.Helper()
	if l.Time == 0 {
		l.Time = 2 * time.Second
	}
	if l.Bytes == 0 {
		l.Bytes = 64 << 20
	}
	g0 := goroutineIDs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	watchdog := time.AfterFunc(l.Time, func() {
		buf := make([]byte, 1<<20)
		panic(fmt.Sprintf("fuzzwatch: the input took over %s; goroutines:\n%s", l.Time, buf[:runtime.Stack(buf, true)]))
	})
	fn()
	watchdog.Stop()
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > l.Bytes {
		t.Fatalf("the input allocated %d bytes (limit %d)", n, l.Bytes)
	}
	// New goroutines are counted by ID, not by total: a goroutine of the
	// caller's that ends meanwhile must not hide one the input started.
	deadline := time.Now().Add(time.Second)
	for {
		n := 0
		for id := range goroutineIDs() {
			if !g0[id] {
				n++
			}
		}
		if n <= l.Goroutines {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left behind (%d before):\n%s", n, len(g0), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

// goroutineIDs is the set of live goroutines, read from their stacks'
// "goroutine N [" headers.
func goroutineIDs() map[string]bool {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	ids := map[string]bool{}
	for _, line := range bytes.Split(buf, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("goroutine ")); ok {
			if id, _, ok := bytes.Cut(rest, []byte(" ")); ok {
				ids[string(id)] = true
			}
		}
	}
	return ids
}
