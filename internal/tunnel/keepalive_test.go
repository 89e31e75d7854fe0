package tunnel

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// The keepalive's timing on a fake clock (testing/synctest): a relay that
// never answers is dropped after exactly interval × (1 + max−1) + interval
// (the first ping at one interval, then max intervals without an answer);
// one that answers is never dropped; ctx ends it at once.
func TestKeepaliveTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gone := make(chan struct{})
		closed := 0
		start := time.Now()
		err := keepalive(context.Background(), 15*time.Second, 3,
			func() error { <-gone; return errors.New("closed") }, // never answers until closed
			func() { closed++; close(gone) })
		if err == nil || !strings.Contains(err.Error(), "3 missed") || closed != 1 {
			t.Fatalf("err %v, closed %d", err, closed)
		}
		// Pings at 15 s, 30 s and 45 s go unanswered, each for 15 s.
		if took := time.Since(start); took != 60*time.Second {
			t.Fatalf("dropped after %v, want 60s", took)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour+time.Second)
		defer cancel()
		var pings atomic.Int32
		// Answers, slowly but within the interval.
		err := keepalive(ctx, 15*time.Second, 3, func() error { pings.Add(1); time.Sleep(14 * time.Second); return nil }, func() { t.Error("closed a live connection") })
		time.Sleep(15 * time.Second) // the last ping's answer
		if err != nil || pings.Load() != 240 {
			t.Fatalf("err %v after %d pings in an hour, want nil and 240", err, pings.Load())
		}
	})
	synctest.Test(t, func(t *testing.T) {
		// A ping that fails is a connection gone: Wait reports it, not the
		// keepalive.
		if err := keepalive(context.Background(), time.Second, 3, func() error { return errors.New("EOF") }, func() { t.Error("closed") }); err != nil {
			t.Fatalf("got %v", err)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		// Missed pings in a row only: one answer in between resets the count.
		answers := []bool{false, false, true, false, false, false}
		gone := make(chan struct{})
		var n atomic.Int32
		start := time.Now()
		err := keepalive(context.Background(), 10*time.Second, 3, func() error {
			if answers[n.Add(1)-1] {
				return nil
			}
			<-gone
			return errors.New("closed")
		}, func() { close(gone) })
		if err == nil {
			t.Fatal("never dropped")
		}
		if took := time.Since(start); took != 70*time.Second || n.Load() != 6 {
			t.Fatalf("dropped after %v and %d pings, want 70s and 6", took, n.Load())
		}
	})
}
