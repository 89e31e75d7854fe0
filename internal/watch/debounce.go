package watch

import (
	"sync"
	"time"
)

// debouncer calls fire(key) once a key has gone wait without a bump: a
// save that writes a file several times is one change. One timer per key,
// reset on every bump; fire runs on the timer's goroutine.
type debouncer struct {
	wait time.Duration
	fire func(key string)

	mu     sync.Mutex
	timers map[string]*time.Timer
}

func newDebouncer(wait time.Duration, fire func(string)) *debouncer {
	return &debouncer{wait: wait, fire: fire, timers: map[string]*time.Timer{}}
}

// bump (re)starts key's timer.
func (d *debouncer) bump(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timers == nil {
		return // stopped
	}
	if t, ok := d.timers[key]; ok {
		t.Reset(d.wait)
		return
	}
	d.timers[key] = time.AfterFunc(d.wait, func() {
		d.mu.Lock()
		if d.timers == nil {
			d.mu.Unlock()
			return
		}
		delete(d.timers, key)
		d.mu.Unlock()
		d.fire(key)
	})
}

// stop drops every pending key; later bumps do nothing.
func (d *debouncer) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range d.timers {
		t.Stop()
	}
	d.timers = nil
}
