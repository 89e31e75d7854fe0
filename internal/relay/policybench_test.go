package relay

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// benchTunnel is a relay (--http-auth none, with or without a policy
// denying delete_*) and an x/crypto client holding the static route
// "bench", its listener served by h.
func benchTunnel(b *testing.B, policed bool, h http.Handler) (url string, hc *http.Client) {
	b.Helper()
	sl, _ := net.Listen("tcp", "127.0.0.1:0")
	hl, _ := net.Listen("tcp", "127.0.0.1:0")
	cfg := Config{SSHListener: sl, HTTPListener: hl, StateDir: b.TempDir(), HTTPAuth: HTTPAuthNone}
	if policed {
		cfg.PolicyFile = filepath.Join(b.TempDir(), "policy.yaml")
		if err := os.WriteFile(cfg.PolicyFile, []byte("tools:\n  deny: [\"delete_*\"]\n"), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	r, _, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	c, err := ssh.Dial("tcp", sl.Addr().String(), &ssh.ClientConfig{User: "bench",
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	ln, err := c.Listen("tcp", "bench:80")
	if err != nil {
		b.Fatal(err)
	}
	go http.Serve(ln, h)
	hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", hl.Addr().String())
	}}}
	return r.urlFor("bench"), hc
}

func reportMedian(b *testing.B, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Nanoseconds())/1e3, name)
}

// BenchmarkToolPolicyCall is one tools/call after another through the
// relay and a tunnel, on a route without tool rules and on one with a
// policy (the call is allowed, so it reaches the app), in one run; p50-µs
// is the median request time.
//
//	go test -run XXX -bench ToolPolicy -benchtime 3000x ./internal/relay
func BenchmarkToolPolicyCall(b *testing.B) {
	args := strings.Repeat("x", 600)
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","arguments":{"q":"` + args + `"}}}`
	answer := `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"` + strings.Repeat("r", 1200) + `"}]}}`
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	})
	for _, mode := range []string{"open", "policy"} {
		b.Run(mode, func(b *testing.B) {
			url, hc := benchTunnel(b, mode == "policy", app)
			ds := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				req, _ := http.NewRequest(http.MethodPost, url+"/mcp", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				resp, err := hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
				ds = append(ds, time.Since(start))
			}
			reportMedian(b, "p50-µs", ds)
		})
	}
}

// BenchmarkToolPolicySSE is a GET stream of events through the relay, on
// a route without tool rules and on one with a policy (where every event of
// a GET stream is read for tools/list results); delay-µs is the median
// time from the app's write of an event to its arrival at the client.
func BenchmarkToolPolicySSE(b *testing.B) {
	pad := strings.Repeat("p", 300)
	for _, mode := range []string{"open", "policy"} {
		b.Run(mode, func(b *testing.B) {
			n := b.N
			app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(200)
				fl := w.(http.Flusher)
				fl.Flush()
				for i := range n {
					fmt.Fprintf(w, "id: %d\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"t\":%d,\"pad\":%q}}\n\n", i, time.Now().UnixNano(), pad)
					fl.Flush()
					// Paced, so that each event is measured alone rather
					// than queued behind the previous one.
					time.Sleep(200 * time.Microsecond)
				}
			})
			url, hc := benchTunnel(b, mode == "policy", app)
			req, _ := http.NewRequest(http.MethodGet, url+"/mcp", nil)
			req.Header.Set("Accept", "text/event-stream")
			b.ResetTimer()
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			defer resp.Body.Close()
			ds := make([]time.Duration, 0, n)
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				line := sc.Text()
				i := strings.Index(line, `"t":`)
				if !strings.HasPrefix(line, "data: ") || i < 0 {
					continue
				}
				end := strings.IndexByte(line[i+4:], ',')
				t, err := strconv.ParseInt(line[i+4:i+4+end], 10, 64)
				if err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(time.Unix(0, t)))
			}
			if len(ds) != n {
				b.Fatalf("%d events of %d", len(ds), n)
			}
			reportMedian(b, "delay-µs", ds)
		})
	}
}
