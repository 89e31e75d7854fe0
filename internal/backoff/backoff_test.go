package backoff

import (
	"testing"
	"time"
)

func TestDoublesToMaxAndResets(t *testing.T) {
	b := &Backoff{Min: time.Second, Max: 30 * time.Second}
	var got []time.Duration
	for range 7 {
		got = append(got, b.Next())
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("delays %v, want %v seconds", got, want)
		}
	}
	b.Reset()
	if d := b.Next(); d != time.Second {
		t.Fatalf("after Reset: %v", d)
	}
}

// Jittered delays lie in [d/2, d] and still double.
func TestJitter(t *testing.T) {
	for _, draw := range []func(int64) int64{func(int64) int64 { return 0 }, func(n int64) int64 { return n }} {
		b := &Backoff{Min: time.Second, Max: 8 * time.Second, Jitter: true, Rand: draw}
		for _, full := range []time.Duration{1, 2, 4, 8, 8} {
			d := b.Next()
			if d < full*time.Second/2 || d > full*time.Second {
				t.Fatalf("jittered delay %v outside [%v, %v]", d, full*time.Second/2, full*time.Second)
			}
		}
	}
}
