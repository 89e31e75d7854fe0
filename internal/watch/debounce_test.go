package watch

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// Debouncing on a fake clock (testing/synctest): a key fires once, wait
// after its last bump, each key on its own; nothing fires after stop.
func TestDebouncer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		var fired []string
		d := newDebouncer(150*time.Millisecond, func(k string) {
			mu.Lock()
			defer mu.Unlock()
			fired = append(fired, fmt.Sprintf("%s@%v", k, time.Since(start)))
		})
		d.bump("a")
		time.Sleep(100 * time.Millisecond)
		d.bump("a") // a now fires at 250 ms
		time.Sleep(100 * time.Millisecond)
		d.bump("b") // b at 350 ms
		time.Sleep(149 * time.Millisecond)
		synctest.Wait()
		mu.Lock()
		if got := fmt.Sprint(fired); got != "[a@250ms]" {
			t.Fatalf("at 349ms: %s", got)
		}
		mu.Unlock()
		time.Sleep(time.Second)
		d.bump("c")
		d.stop()
		d.bump("d")
		time.Sleep(time.Second)
		mu.Lock()
		defer mu.Unlock()
		if got := fmt.Sprint(fired); got != "[a@250ms b@350ms]" {
			t.Fatalf("fired %s", got)
		}
	})
}
