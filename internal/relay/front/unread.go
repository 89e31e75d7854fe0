package front

import (
	"io"
	"net/http"
	"sync/atomic"
)

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
