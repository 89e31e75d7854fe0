package bufpool

import (
	"runtime"
	"testing"
)

func TestReuse(t *testing.T) {
	b := Proxy.Get()
	if len(b) != Size {
		t.Fatalf("len %d, want %d", len(b), Size)
	}
	Proxy.Put(b[:10]) // a shortened slice still goes back whole
	if got := Proxy.Get(); len(got) != Size {
		t.Fatalf("len %d after Put, want %d", len(got), Size)
	}
	Proxy.Put(make([]byte, 10)) // too small: dropped
	if got := Proxy.Get(); len(got) != Size {
		t.Fatalf("len %d after a small Put, want %d", len(got), Size)
	}
}

// TestReuseAllocates: a thousand Get/Put rounds allocate far less than a
// thousand buffers. A pool that dropped what it was given (or never kept
// shortened slices) allocates 32 MiB here.
func TestReuseAllocates(t *testing.T) {
	const rounds = 1000
	for _, short := range []bool{false, true} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range rounds {
			b := Proxy.Get()
			b[0] = 1
			if short {
				b = b[:1]
			}
			Proxy.Put(b)
		}
		runtime.ReadMemStats(&after)
		// A collection during the loop empties the pool once or twice;
		// a hundred buffers leave room for that and stay far below a
		// thousand. The race detector's pool drops a quarter of its Puts:
		// 600 buffers there, still well below what a pool that keeps
		// nothing allocates.
		limit := uint64(100 * Size)
		if raceEnabled {
			limit = 600 * Size
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > limit {
			t.Errorf("short=%v: %d rounds allocated %d KiB, want under %d KiB", short, rounds, got>>10, limit>>10)
		}
	}
}

func BenchmarkGetPut(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Proxy.Put(Proxy.Get())
	}
}
