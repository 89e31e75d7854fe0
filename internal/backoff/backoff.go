// Package backoff is the one exponential backoff of pomdev: process
// restarts (supervise), tunnel reconnects (tunnel) and a relay never
// reached (up) wait by it.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff doubles a delay from Min up to Max. With Jitter, each delay is
// drawn from [d/2, d] so that many clients do not retry in step. The zero
// value is not useful; set Min and Max.
type Backoff struct {
	Min, Max time.Duration
	Jitter   bool
	// Rand draws in [0, n]; nil uses math/rand/v2 (tests set it).
	Rand func(n int64) int64

	cur time.Duration
}

// Peek is the delay Next returns next, before jitter.
func (b *Backoff) Peek() time.Duration {
	if b.cur == 0 {
		return b.Min
	}
	return b.cur
}

// Next returns the delay to wait now and doubles the next one.
func (b *Backoff) Next() time.Duration {
	d := b.Peek()
	b.cur = min(2*d, b.Max)
	if b.Jitter && d > 1 {
		draw := b.Rand
		if draw == nil {
			draw = func(n int64) int64 { return rand.Int64N(n + 1) }
		}
		d = d/2 + time.Duration(draw(int64(d/2)))
	}
	return d
}

// Reset starts over from Min (after a run that lasted, or a success).
func (b *Backoff) Reset() { b.cur = 0 }
