package taskgroup

import (
	"sync/atomic"
	"testing"
)

// Wait returns after every goroutine Go started; after Close, Go runs
// nothing, even from a goroutine of the group.
func TestGroup(t *testing.T) {
	var g Group
	var ran atomic.Int32
	release := make(chan struct{})
	for range 10 {
		if !g.Go(func() { <-release; ran.Add(1) }) {
			t.Fatal("an open group refused")
		}
	}
	if !g.Close() || g.Close() {
		t.Fatal("Close reports the first close only")
	}
	if g.Go(func() { ran.Add(100) }) {
		t.Fatal("a closed group ran a goroutine")
	}
	close(release)
	g.Wait()
	if n := ran.Load(); n != 10 {
		t.Fatalf("%d ran before Wait returned, want 10", n)
	}
}
