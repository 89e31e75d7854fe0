package relay

import (
	"errors"
	"net"
	"sync"
)

// Bounds of the sign-ins waiting for a person (--auth signin). A waiting
// sign-in gives back its handshake slot (MaxStartups), so these bound
// what waiting connections hold instead: relay-wide, per source address
// and per key.
const (
	maxSigninsWaiting          = 256
	maxSigninsWaitingPerSource = 8
	maxSigninsWaitingPerKey    = 4
)

// errSigninsFull refuses a sign-in past the bounds above.
var errSigninsFull = errors.New("too many sign-ins are waiting (from this address or for this key); finish or cancel one and connect again")

// handshakeConn is a connection in its SSH handshake. release gives back
// its handshake slot (once, however often it is called). gone is closed
// when a read of the connection fails for any reason but a deadline:
// x/crypto keeps reading the connection while the sign-in step waits for
// a person, so that read is where a client that left shows.
type handshakeConn struct {
	net.Conn
	release func()

	gone     chan struct{}
	goneOnce sync.Once
}

func newHandshakeConn(nc net.Conn, release func()) *handshakeConn {
	var once sync.Once
	return &handshakeConn{Conn: nc, release: func() { once.Do(release) }, gone: make(chan struct{})}
}

func (c *handshakeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			c.goneOnce.Do(func() { close(c.gone) })
		}
	}
	return n, err
}

// signinSlots counts the sign-ins waiting.
type signinSlots struct {
	mu    sync.Mutex
	n     int
	bySrc map[string]int
	byKey map[string]int
}

func (s *signinSlots) enter(src, fp string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bySrc == nil {
		s.bySrc, s.byKey = map[string]int{}, map[string]int{}
	}
	if s.n >= maxSigninsWaiting || s.bySrc[src] >= maxSigninsWaitingPerSource || s.byKey[fp] >= maxSigninsWaitingPerKey {
		return false
	}
	s.n++
	s.bySrc[src]++
	s.byKey[fp]++
	return true
}

func (s *signinSlots) leave(src, fp string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n--
	if s.bySrc[src]--; s.bySrc[src] <= 0 {
		delete(s.bySrc, src)
	}
	if s.byKey[fp]--; s.byKey[fp] <= 0 {
		delete(s.byKey, fp)
	}
}
