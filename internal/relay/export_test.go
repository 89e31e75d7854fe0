package relay

import (
	"time"

	"github.com/pomdev/pomdev/internal/relay/front"
)

// SetStreamIdle shortens how long idle channels are kept, for a test; it
// returns what restores it.
func SetStreamIdle(d time.Duration) func() {
	old := front.StreamIdle
	front.StreamIdle = d
	return func() { front.StreamIdle = old }
}

// OpenStreams counts the forwarded channels the relay holds for HTTP.
func OpenStreams(r *Relay) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rt := range r.routes {
		n += rt.link.Open()
	}
	return n
}

// SigninsWaiting counts the sign-ins waiting for a person.
func SigninsWaiting(r *Relay) int {
	r.signin.mu.Lock()
	defer r.signin.mu.Unlock()
	return len(r.signin.pending)
}

// Handshakes counts the connections in their SSH handshake.
func Handshakes(r *Relay) int {
	r.startMu.Lock()
	defer r.startMu.Unlock()
	return r.startups
}

// ApexReading counts the bodies the relay's own endpoints are reading.
func ApexReading(r *Relay) int { return len(r.apex.reading) }
