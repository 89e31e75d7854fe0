package relay

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/pomdev/pomdev/internal/relay/access"
	"github.com/pomdev/pomdev/internal/relay/front"
)

// Limits of the relay's own endpoints on its domain (the authorization
// server, the sign-in pages), which anyone may call without a token.
const (
	// MaxApexBody bounds a request body on the relay's own endpoints:
	// forms of the authorization server and the sign-in pages, and token
	// requests with a client assertion, which are a few KiB.
	MaxApexBody = 16 << 10
	// MaxRegisterBody bounds a dynamic client registration (RFC 7591).
	MaxRegisterBody = 64 << 10
	// MaxApexInFlight bounds the requests the relay's own endpoints work
	// on at once (their bodies read), and MaxApexInFlightPerSource those
	// of one address, bodies being read included.
	MaxApexInFlight          = 64
	MaxApexInFlightPerSource = 8
	// MaxApexReading bounds the bodies being read at once. A body is read
	// before its request takes one of the MaxApexInFlight slots, so
	// stalled bodies (which the minimum rate ends) hold only these.
	MaxApexReading = 1024
)

// apexGate bounds the relay's own endpoints: bodies being read and
// requests being served, relay-wide, and both together per source address.
type apexGate struct {
	reading chan struct{}
	slots   chan struct{}

	mu  sync.Mutex
	per map[string]int // per source; at most MaxApexReading+MaxApexInFlight keys
}

func newApexGate() *apexGate {
	return &apexGate{reading: make(chan struct{}, MaxApexReading), slots: make(chan struct{}, MaxApexInFlight), per: map[string]int{}}
}

// apexTicket is a request's place in the gate: first a reading slot,
// then (work) a serving slot.
type apexTicket struct {
	g       *apexGate
	src     string
	serving bool
}

// enter admits a request of src to read its body (false: src or the
// relay is at its bound).
func (g *apexGate) enter(src string) (*apexTicket, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.per[src] >= MaxApexInFlightPerSource {
		return nil, false
	}
	select {
	case g.reading <- struct{}{}:
	default:
		return nil, false
	}
	g.per[src]++
	return &apexTicket{g: g, src: src}, true
}

// work trades the ticket's reading slot for a serving slot (false: all
// are taken; the ticket still holds its reading slot until leave).
func (t *apexTicket) work() bool {
	select {
	case t.g.slots <- struct{}{}:
	default:
		return false
	}
	<-t.g.reading
	t.serving = true
	return true
}

func (t *apexTicket) leave() {
	g := t.g
	g.mu.Lock()
	if g.per[t.src]--; g.per[t.src] <= 0 {
		delete(g.per, t.src)
	}
	g.mu.Unlock()
	if t.serving {
		<-g.slots
	} else {
		<-g.reading
	}
}

// guardApex serves req with next only within the apex limits: a slot
// (503 when none), a body only on POST (400), never multipart (415), at
// most MaxApexBody (MaxRegisterBody for registration) bytes (413),
// arriving at the tunnel routes' minimum rate (408). The body is read
// whole before next sees it, so no handler below can be made to hold more,
// and before the request takes a serving slot, so stalled bodies cannot
// crowd out the requests that arrived whole.
func (r *Relay) guardApex(w http.ResponseWriter, req *http.Request, next func(http.ResponseWriter, *http.Request)) {
	ticket, ok := r.apex.enter(front.HostOf(req.RemoteAddr))
	if !ok {
		r.apexBusy(w)
		return
	}
	defer ticket.leave()
	serve := func(w http.ResponseWriter, req *http.Request) {
		if !ticket.work() {
			r.apexBusy(w)
			return
		}
		next(w, req)
	}
	hasBody := req.ContentLength != 0 || len(req.TransferEncoding) > 0
	if !hasBody {
		serve(w, req)
		return
	}
	if req.Method != http.MethodPost {
		r.page(w, http.StatusBadRequest, "Bad request", "Only a POST carries a body here.")
		return
	}
	if mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); strings.HasPrefix(mt, "multipart/") {
		r.page(w, http.StatusUnsupportedMediaType, "Unsupported body", "Forms here are application/x-www-form-urlencoded (or JSON for registration); multipart is refused.")
		return
	}
	limit := int64(MaxApexBody)
	if req.URL.Path == access.PathRegister {
		limit = MaxRegisterBody
	}
	if req.ContentLength > limit {
		r.page(w, http.StatusRequestEntityTooLarge, "Too large", fmt.Sprintf("Request bodies here are limited to %d bytes.", limit))
		return
	}
	// The rate check ends the read through the connection's deadline;
	// nothing else hangs on its context.
	_, cancel := context.WithCancelCause(req.Context())
	defer cancel(nil)
	rb := front.MinRate(w, req.Body, r.cfg.BodyGrace, r.cfg.MinBodyRate, cancel)
	body, err := io.ReadAll(io.LimitReader(rb, limit+1))
	switch {
	case rb.Tripped():
		w.Header().Set("Connection", "close")
		r.page(w, http.StatusRequestTimeout, "Too slow", fmt.Sprintf("The request body arrived slower than %d bytes/s.", r.cfg.MinBodyRate))
		return
	case err != nil:
		r.page(w, http.StatusBadRequest, "Bad request", "The request body could not be read.")
		return
	case int64(len(body)) > limit:
		w.Header().Set("Connection", "close")
		r.page(w, http.StatusRequestEntityTooLarge, "Too large", fmt.Sprintf("Request bodies here are limited to %d bytes.", limit))
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.TransferEncoding = nil
	serve(w, req)
}

func (r *Relay) apexBusy(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	r.page(w, http.StatusServiceUnavailable, "Busy", "The relay's sign-in and authorization pages are serving as many requests as they take; retry in a moment.")
}
