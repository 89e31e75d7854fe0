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

// Jittered delays are d/2 plus the draw, the draw asked for in [0, d/2],
// and the undrawn delay still doubles. Each draw gives its own exact
// delays, so a backoff that ignored the draw, drew from another range or
// stopped doubling fails.
func TestJitter(t *testing.T) {
	full := []time.Duration{1, 2, 4, 8, 8}
	for _, tc := range []struct {
		name string
		draw func(int64) int64
		want func(d time.Duration) time.Duration
	}{
		{"lowest", func(int64) int64 { return 0 }, func(d time.Duration) time.Duration { return d / 2 }},
		{"highest", func(n int64) int64 { return n }, func(d time.Duration) time.Duration { return d }},
		{"middle", func(n int64) int64 { return n / 2 }, func(d time.Duration) time.Duration { return d/2 + d/4 }},
	} {
		var asked []int64
		b := &Backoff{Min: time.Second, Max: 8 * time.Second, Jitter: true, Rand: func(n int64) int64 {
			asked = append(asked, n)
			return tc.draw(n)
		}}
		for i, f := range full {
			d := f * time.Second
			if got := b.Next(); got != tc.want(d) {
				t.Fatalf("%s draw, delay %d: %v, want %v", tc.name, i, got, tc.want(d))
			}
			if len(asked) != i+1 || asked[i] != int64(d/2) {
				t.Fatalf("%s draw, delay %d: draws asked for %v, want the last in [0, %d]", tc.name, i, asked, int64(d/2))
			}
		}
	}
	// Without Jitter nothing is drawn.
	b := &Backoff{Min: time.Second, Max: 8 * time.Second, Rand: func(int64) int64 { t.Fatal("drew without Jitter"); return 0 }}
	if d := b.Next(); d != time.Second {
		t.Fatalf("unjittered %v", d)
	}
	// The default draw stays in [d/2, d] and is not constant.
	b = &Backoff{Min: time.Second, Max: time.Second, Jitter: true}
	seen := map[time.Duration]bool{}
	for range 64 {
		d := b.Next()
		if d < time.Second/2 || d > time.Second {
			t.Fatalf("default draw gave %v, outside [0.5s, 1s]", d)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Fatalf("64 default draws gave one delay: %v", seen)
	}
}
