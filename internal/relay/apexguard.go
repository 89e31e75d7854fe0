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
	"sync/atomic"

	"github.com/pomdev/pomdev/internal/relay/access"
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
	// MaxApexInFlight bounds the requests the relay's own endpoints serve
	// at once, and MaxApexInFlightPerSource those of one address.
	MaxApexInFlight          = 64
	MaxApexInFlightPerSource = 8
)

// apexGate bounds the relay's own endpoints: requests in flight, relay-wide
// and per source address.
type apexGate struct {
	slots chan struct{}

	mu  sync.Mutex
	per map[string]int // requests in flight per source; at most MaxApexInFlight keys
}

func newApexGate() *apexGate {
	return &apexGate{slots: make(chan struct{}, MaxApexInFlight), per: map[string]int{}}
}

func (g *apexGate) enter(src string) bool {
	g.mu.Lock()
	if g.per[src] >= MaxApexInFlightPerSource {
		g.mu.Unlock()
		return false
	}
	select {
	case g.slots <- struct{}{}:
	default:
		g.mu.Unlock()
		return false
	}
	g.per[src]++
	g.mu.Unlock()
	return true
}

func (g *apexGate) leave(src string) {
	g.mu.Lock()
	if g.per[src]--; g.per[src] <= 0 {
		delete(g.per, src)
	}
	<-g.slots
	g.mu.Unlock()
}

// guardApex serves req with next only within the apex limits: a slot
// (503 when none), a body only on POST (400), never multipart (415), at
// most MaxApexBody (MaxRegisterBody for registration) bytes (413),
// arriving at the tunnel routes' minimum rate (408). The body is read
// whole before next sees it, so no handler below can be made to hold more.
func (r *Relay) guardApex(w http.ResponseWriter, req *http.Request, next func(http.ResponseWriter, *http.Request)) {
	src := hostOf(req.RemoteAddr)
	if !r.apex.enter(src) {
		w.Header().Set("Retry-After", "1")
		r.page(w, http.StatusServiceUnavailable, "Busy", "The relay's sign-in and authorization pages are serving as many requests as they take; retry in a moment.")
		return
	}
	defer r.apex.leave(src)
	hasBody := req.ContentLength != 0 || len(req.TransferEncoding) > 0
	if !hasBody {
		next(w, req)
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
	rb := &rateBody{rc: http.NewResponseController(w), body: req.Body, grace: r.cfg.BodyGrace, rate: r.cfg.MinBodyRate, cancel: cancel}
	body, err := io.ReadAll(io.LimitReader(rb, limit+1))
	switch {
	case rb.tripped.Load():
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
	next(w, req)
}

// eofBody is a request body that knows whether it was read to its end.
type eofBody struct {
	io.ReadCloser
	eof atomic.Bool
}

func (b *eofBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

// closeUnread answers with Connection: close when the request's body was
// not read to its end by the time the answer starts. Otherwise net/http
// reads the rest of the body (up to 256 KiB) before it writes the answer,
// to keep the connection: a peer that declares a body and stalls would
// hold the connection, and the answer, for as long as it likes.
type closeUnread struct {
	http.ResponseWriter
	body  *eofBody
	wrote bool
}

func (c *closeUnread) WriteHeader(code int) {
	if !c.wrote && code >= 200 {
		c.wrote = true
		if !c.body.eof.Load() {
			c.Header().Set("Connection", "close")
		}
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *closeUnread) Write(p []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	return c.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (flush,
// hijack, deadlines, full duplex).
func (c *closeUnread) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// Flush passes through for handlers that assert http.Flusher.
func (c *closeUnread) Flush() {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(c.ResponseWriter).Flush()
}

// watchUnread wraps w and req so that an answer that starts before the
// body was read whole closes the connection (closeUnread); requests
// without a body are left as they are.
func watchUnread(w http.ResponseWriter, req *http.Request) http.ResponseWriter {
	if req.ContentLength == 0 && len(req.TransferEncoding) == 0 || req.Body == nil || req.Body == http.NoBody {
		return w
	}
	b := &eofBody{ReadCloser: req.Body}
	req.Body = b
	return &closeUnread{ResponseWriter: w, body: b}
}
