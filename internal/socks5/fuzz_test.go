package socks5

import (
	"bytes"
	"github.com/pomdev/pomdev/internal/fuzzwatch"
	"testing"
)

// FuzzReadRequest: the tunnel's server side must never panic or accept a
// request it did not fully read, whatever the relay sends.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte{5, 1, 0, 5, 1, 0, 3, 9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 0x1f, 0x90})
	f.Add([]byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80})
	f.Add([]byte{5, 2, 2, 0, 5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 187})
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzwatch.Run(t, fuzzwatch.Limits{}, func() {
			c := &rw{Reader: bytes.NewReader(in)}
			req, err := ReadRequest(c)
			if err != nil {
				return
			}
			if req.Host == "" || req.Port < 0 || req.Port > 65535 {
				t.Fatalf("accepted %+v from %v", req, in)
			}
			if !bytes.Equal(c.Bytes(), []byte{Version, MethodNoAuth}) {
				t.Fatalf("accepted without selecting no-auth: wrote %v", c.Bytes())
			}
		})
	})
}

// FuzzConnect: the relay's client side against arbitrary server answers.
func FuzzConnect(f *testing.F) {
	f.Add([]byte{5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{5, 0, 5, 5, 0, 3, 1, 'a', 0, 0})
	f.Add([]byte{5, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzwatch.Run(t, fuzzwatch.Limits{}, func() {
			err := Connect(&rw{Reader: bytes.NewReader(in)}, "localhost", 8080)
			if err == nil && (len(in) < 10 || in[1] != 0 || in[3] != 0) {
				t.Fatalf("accepted %v", in)
			}
		})
	})
}
