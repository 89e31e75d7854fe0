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
