package access

import (
	"context"
	"net/http"
)

// storeDownMessage is the answer to a request that needed the store while
// it did not answer.
const storeDownMessage = `{"error":"temporarily_unavailable","error_description":"the relay cannot reach its store; retry shortly"}` + "\n"

// storeDownWriter turns a 500 of the authorization server into a 503 that
// says so when the store does not answer (whatever statement failed): the
// client retries, and no database error reaches it.
type storeDownWriter struct {
	http.ResponseWriter
	s        *Server
	wrote    bool
	replaced bool
}

func (w *storeDownWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	if code == http.StatusInternalServerError && w.s.storeDown() {
		w.replaced = true
		h := w.Header()
		h.Del("Content-Length")
		h.Set("Content-Type", "application/json")
		h.Set("Retry-After", "2")
		w.ResponseWriter.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.ResponseWriter.Write([]byte(storeDownMessage))
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *storeDownWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.replaced {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *storeDownWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// storeDown reports whether the store does not answer a ping now (at
// most one ping a second).
func (s *Server) storeDown() bool { return s.check.Check(context.Background()) != nil }
