package httpwire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// One HTTP/1.1 exchange, written the same way by both forwarders: the
// request line (WriteRequestLine), the end-to-end fields (WriteHeader),
// whatever fields the forwarder adds itself, then the framing
// (WriteFraming) and the body (WriteBody); the answer's head is read by
// ReadResponse.

// WriteRequestLine writes req's request line and host as its Host field.
// An HTTP/2 request's absolute or empty target becomes its origin form.
func WriteRequestLine(bw *bufio.Writer, req *http.Request, host string) {
	uri := req.RequestURI
	if uri == "" || req.ProtoMajor == 2 && !strings.HasPrefix(uri, "/") {
		uri = req.URL.RequestURI()
	}
	_, _ = bw.WriteString(req.Method)
	_, _ = bw.WriteString(" ")
	_, _ = bw.WriteString(uri)
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = bw.WriteString(host)
	_, _ = bw.WriteString("\r\n")
}

// WriteFraming ends req's head: TE: trailers when the client accepts
// trailers, the upgrade fields when upgrade is set, and the body's framing
// from the parsed request (Content-Length for a known length, also 0 for
// POST, PUT and PATCH; chunked for a body of unknown length). It reports
// whether a body follows.
func WriteFraming(bw *bufio.Writer, req *http.Request, upgrade bool) (body bool) {
	if httpguts.HeaderValuesContainsToken(req.Header["Te"], "trailers") {
		_, _ = bw.WriteString("Te: trailers\r\n")
	}
	if upgrade {
		_, _ = bw.WriteString("Connection: Upgrade\r\nUpgrade: ")
		_, _ = bw.WriteString(req.Header.Get("Upgrade"))
		_, _ = bw.WriteString("\r\n")
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	switch {
	case req.ContentLength > 0 || req.ContentLength == 0 && BodyMethod(req.Method):
		_, _ = bw.WriteString("Content-Length: ")
		_, _ = bw.WriteString(strconv.FormatInt(req.ContentLength, 10))
		_, _ = bw.WriteString("\r\n\r\n")
		return req.ContentLength > 0 && hasBody
	case req.ContentLength < 0 && hasBody:
		_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		return true
	default:
		_, _ = bw.WriteString("\r\n")
		return false
	}
}

// ErrBody marks a failure reading the request's body (the client's side),
// not writing it.
var ErrBody = errors.New("reading the request body")

// WriteBody copies req's body to bw in the framing WriteFraming chose,
// using buf; a body of unknown length goes chunk by chunk, each flushed
// as it arrives (a streamed upload is not held back).
func WriteBody(bw *bufio.Writer, req *http.Request, buf []byte) error {
	if req.ContentLength >= 0 {
		n, err := io.CopyBuffer(bw, io.LimitReader(req.Body, req.ContentLength), buf)
		if err == nil && n < req.ContentLength {
			// Fewer bytes than the head announced: the peer would wait
			// for the rest.
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBody, err)
		}
		return bw.Flush()
	}
	cw := httputil.NewChunkedWriter(bw)
	for {
		n, err := req.Body.Read(buf)
		if n > 0 {
			_, _ = cw.Write(buf[:n])
			if ferr := bw.Flush(); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			_ = cw.Close()
			_, _ = bw.WriteString("\r\n")
			return bw.Flush()
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBody, err)
		}
	}
}

// ReadResponse reads the head of the answer to req, skipping interim 1xx
// answers other than 101. With lim, a head may take at most max bytes
// (lim stops the read with its error past them).
func ReadResponse(br *bufio.Reader, lim *HeadLimit, max int64, req *http.Request) (*http.Response, error) {
	for {
		if lim != nil {
			lim.N = max
		}
		resp, err := http.ReadResponse(br, req)
		if lim != nil {
			lim.N = -1
		}
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
	}
}
