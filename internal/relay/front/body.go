package front

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// slowBody reports whether req ended because its body was too slow: the
// rate check cancels the request with errSlowBody before anything else
// can cancel it.
func slowBody(req *http.Request) bool {
	return errors.Is(context.Cause(req.Context()), errSlowBody)
}

// errSlowBody ends a request whose body arrives slower than the minimum
// rate.
var errSlowBody = errors.New("request body slower than the minimum rate")

// MinRate wraps body in a RateBody: after grace, it must arrive at rate
// bytes/s; cancel is called with the cause when it does not.
func MinRate(w http.ResponseWriter, body io.ReadCloser, grace time.Duration, rate int64, cancel context.CancelCauseFunc) *RateBody {
	return &RateBody{rc: http.NewResponseController(w), body: body, grace: grace, rate: rate, cancel: cancel}
}

// Tripped reports whether the body arrived too slowly.
func (b *RateBody) Tripped() bool { return b.tripped.Load() }

// RateBody enforces a minimum rate on a request body: after n bytes, the
// next must arrive by start + grace + n/rate. A timer armed for each read
// marks the body too slow, cancels the request to the tunnel (so the
// local server sees it aborted rather than cut short) and then unblocks the
// read through the connection's read deadline. Nothing is armed once the
// body has ended, so a long response is never touched.
type RateBody struct {
	rc     *http.ResponseController
	body   io.ReadCloser
	grace  time.Duration
	rate   int64
	cancel context.CancelCauseFunc

	start   time.Time
	n       int64
	tripped atomic.Bool

	mu    sync.Mutex // guards done and timer against trip
	done  bool
	timer *time.Timer
}

func (b *RateBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return b.body.Read(p)
	}
	if b.start.IsZero() {
		b.start = time.Now()
	}
	wait := time.Until(b.start.Add(b.grace + time.Duration(b.n*int64(time.Second)/b.rate)))
	if b.timer == nil {
		b.timer = time.AfterFunc(wait, b.trip)
	} else {
		b.timer.Reset(wait)
	}
	b.mu.Unlock()

	n, err := b.body.Read(p)

	b.mu.Lock()
	defer b.mu.Unlock()
	b.timer.Stop()
	b.n += int64(n)
	if err != nil {
		b.done = true
		if b.tripped.Load() {
			err = errSlowBody
		}
	}
	return n, err
}

// trip runs when a read waited past its time.
func (b *RateBody) trip() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.tripped.Store(true)
	b.cancel(errSlowBody)
	_ = b.rc.SetReadDeadline(time.Now())
}

func (b *RateBody) Close() error { return b.body.Close() }
