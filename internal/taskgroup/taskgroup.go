// Package taskgroup runs goroutines that are waited for, and refuses new
// ones once closed: a WaitGroup whose Add cannot race its Wait.
package taskgroup

import "sync"

// Group is the goroutines of one owner (a connection, the relay's front).
// The zero Group is ready to use.
type Group struct {
	mu     sync.Mutex
	wg     sync.WaitGroup
	closed bool
}

// Go runs f on a goroutine Wait waits for; once the group is closed it
// runs nothing and reports false.
func (g *Group) Go(f func()) bool {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.wg.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.wg.Done()
		f()
	}()
	return true
}

// Close makes Go refuse from now on; it reports whether this call closed
// the group.
func (g *Group) Close() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.closed = true
	return true
}

// Wait waits for the goroutines Go started.
func (g *Group) Wait() { g.wg.Wait() }
