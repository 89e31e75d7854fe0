package event

import "net/http"

// Recorder wraps a ResponseWriter to learn a response's status and size for
// its Request event, passing Flush, Hijack and full-duplex control through
// (http.ResponseController reaches them via Unwrap).
type Recorder struct {
	http.ResponseWriter
	Status int
	Bytes  int64
}

// WriteHeader records the first status (and a later 101).
func (r *Recorder) WriteHeader(code int) {
	if r.Status == 0 || code == http.StatusSwitchingProtocols {
		r.Status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write counts bytes; a write before WriteHeader means 200.
func (r *Recorder) Write(p []byte) (int, error) {
	if r.Status == 0 {
		r.Status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.Bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush is needed by httputil.ReverseProxy, which asserts http.Flusher.
func (r *Recorder) Flush() { _ = http.NewResponseController(r.ResponseWriter).Flush() }
