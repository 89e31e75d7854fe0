package httpwire

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Hop-by-hop fields, those Connection names and the framing ones are not
// forwarded; the rest are, in both directions.
func TestHeaders(t *testing.T) {
	h := http.Header{
		"Connection": {"X-Drop, keep-alive"}, "X-Drop": {"1"}, "Keep-Alive": {"5"}, "Transfer-Encoding": {"chunked"},
		"Content-Length": {"3"}, "Upgrade": {"echo"}, "Mcp-Session-Id": {"s1"}, "Authorization": {"Bearer x"},
	}
	var b strings.Builder
	bw := bufio.NewWriter(&b)
	WriteHeader(bw, h)
	_ = bw.Flush()
	for _, gone := range []string{"X-Drop", "Keep-Alive", "Transfer-Encoding", "Content-Length", "Upgrade", "Connection"} {
		if strings.Contains(b.String(), gone+":") {
			t.Errorf("%s forwarded: %q", gone, b.String())
		}
	}
	if !strings.Contains(b.String(), "Mcp-Session-Id: s1\r\n") || !strings.Contains(b.String(), "Authorization: Bearer x\r\n") {
		t.Errorf("end-to-end fields lost: %q", b.String())
	}
	dst := http.Header{"Mcp-Session-Id": {"s0"}}
	CopyHeader(dst, h)
	if len(dst) != 2 || len(dst["Mcp-Session-Id"]) != 2 || dst.Get("Authorization") != "Bearer x" {
		t.Errorf("copied %v", dst)
	}
	if !IsUpgrade(http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}) || IsUpgrade(http.Header{"Upgrade": {"websocket"}}) {
		t.Error("IsUpgrade")
	}
}

// HeadLimit stops at N bytes while set and passes everything once cleared.
func TestHeadLimit(t *testing.T) {
	errBig := errors.New("too big")
	l := &HeadLimit{R: strings.NewReader(strings.Repeat("a", 100)), N: 10, Err: errBig}
	got, err := io.ReadAll(l)
	if len(got) != 10 || !errors.Is(err, errBig) {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
	l.N = -1
	rest, err := io.ReadAll(l)
	if len(rest) != 90 || err != nil {
		t.Fatalf("%d bytes, %v", len(rest), err)
	}
}

// writeRequest runs the exchange's writers on req as a forwarder does.
func writeRequest(t *testing.T, req *http.Request, host string, upgrade bool) (string, error) {
	t.Helper()
	var b strings.Builder
	bw := bufio.NewWriter(&b)
	WriteRequestLine(bw, req, host)
	WriteHeader(bw, req.Header)
	var err error
	if WriteFraming(bw, req, upgrade) {
		err = WriteBody(bw, req, make([]byte, 7))
	}
	_ = bw.Flush()
	return b.String(), err
}

// What the forwarders write parses back, with net/http's reader, as the
// request that was read: method, target, Host, fields, body, framing.
func TestExchangeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  func() *http.Request
		want string
	}{
		{"known length", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, "http://app/mcp?x=1", strings.NewReader(`{"jsonrpc":"2.0"}`))
			return r
		}, `{"jsonrpc":"2.0"}`},
		{"chunked", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPut, "http://app/upload", io.NopCloser(strings.NewReader(strings.Repeat("abc", 20))))
			r.ContentLength = -1
			return r
		}, strings.Repeat("abc", 20)},
		{"empty POST", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, "http://app/", nil)
			return r
		}, ""},
		{"GET", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, "http://app/a%2Fb", nil)
			return r
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req()
			req.Header.Set("Mcp-Session-Id", "s1")
			req.Header.Set("Te", "gzip, trailers")
			raw, err := writeRequest(t, req, "127.0.0.1:3000", false)
			if err != nil {
				t.Fatal(err)
			}
			got, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
			if err != nil {
				t.Fatalf("%v in %q", err, raw)
			}
			body, err := io.ReadAll(got.Body)
			if err != nil || string(body) != tc.want {
				t.Fatalf("body %q, %v", body, err)
			}
			if got.Method != req.Method || got.RequestURI != req.URL.RequestURI() || got.Host != "127.0.0.1:3000" ||
				got.Header.Get("Mcp-Session-Id") != "s1" || got.Header.Get("Te") != "trailers" {
				t.Fatalf("read back %s %s host %s %v from %q", got.Method, got.RequestURI, got.Host, got.Header, raw)
			}
			if req.Method == http.MethodPost && got.ContentLength != int64(len(tc.want)) {
				t.Fatalf("Content-Length %d: %q", got.ContentLength, raw)
			}
		})
	}
}

// A body shorter than its Content-Length is the client's failure, not a
// request the peer waits on for ever.
func TestExchangeShortBody(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPost, "http://app/", io.NopCloser(strings.NewReader("abc")))
	req.ContentLength = 10
	if _, err := writeRequest(t, req, "app", false); !errors.Is(err, ErrBody) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v", err)
	}
}

// ReadResponse skips interim answers other than 101 and bounds the head.
func TestReadResponse(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "http://app/", nil)
	br := bufio.NewReader(strings.NewReader("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	resp, err := ReadResponse(br, nil, 0, req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	errBig := errors.New("head too large")
	lim := &HeadLimit{R: strings.NewReader("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 5000) + "\r\n\r\n"), N: -1, Err: errBig}
	if _, err := ReadResponse(bufio.NewReaderSize(lim, 4096), lim, 1024, req); !errors.Is(err, errBig) || lim.N != -1 {
		t.Fatalf("a 5 KB head under a 1 KiB limit: %v (N %d)", err, lim.N)
	}
	up := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"
	if resp, err := ReadResponse(bufio.NewReader(strings.NewReader(up)), nil, 0, req); err != nil || resp.StatusCode != 101 {
		t.Fatalf("101: %v %v", resp, err)
	}
}
