package relay

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// BenchmarkGatedRequest is a request through the relay and a tunnel (an
// x/crypto client holding a static route, an HTTP server on its listener),
// on a relay with --http-auth none and on one with --http-auth owner and a
// valid token, in one run: the OAuth gate's cost in the whole path.
//
//	go test -run XXX -bench GatedRequest -benchmem ./internal/relay
func BenchmarkGatedRequest(b *testing.B) {
	for _, mode := range []string{HTTPAuthNone, HTTPAuthOwner} {
		b.Run(mode, func(b *testing.B) {
			sl, _ := net.Listen("tcp", "127.0.0.1:0")
			hl, _ := net.Listen("tcp", "127.0.0.1:0")
			r, _, err := New(Config{SSHListener: sl, HTTPListener: hl, StateDir: b.TempDir(), HTTPAuth: mode})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Serve(ctx) }()
			defer func() { cancel(); <-done }()
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			signer, _ := ssh.NewSignerFromKey(priv)
			c, err := ssh.Dial("tcp", sl.Addr().String(), &ssh.ClientConfig{User: "bench",
				Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ln, err := c.Listen("tcp", "bench:80")
			if err != nil {
				b.Fatal(err)
			}
			body := strings.Repeat("x", 1300)
			go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) }))
			url := r.urlFor("bench") + "/"
			hdr := ""
			if mode == HTTPAuthOwner {
				tok, _, err := r.access.MintOwner(ctx, "bench", ssh.FingerprintSHA256(signer.PublicKey()))
				if err != nil {
					b.Fatal(err)
				}
				hdr = "Bearer " + tok
			}
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", hl.Addr().String())
			}}}
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, url, nil)
					if hdr != "" {
						req.Header.Set("Authorization", hdr)
					}
					resp, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}
