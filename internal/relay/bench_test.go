package relay

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// BenchmarkIdleTunnels reports the relay's memory per idle tunnel (heap in
// use plus goroutine stacks, after GC) with b.N SSH connections, each
// holding one dynamic forward. The x/crypto clients run in the same
// process, so the figures cover both ends; scripts/bench/tunnels -mode
// idle measures the relay alone.
//
//	go test -run XXX -bench IdleTunnels -benchtime 1000x ./internal/relay
func BenchmarkIdleTunnels(b *testing.B) {
	sl, _ := net.Listen("tcp", "127.0.0.1:0")
	hl, _ := net.Listen("tcp", "127.0.0.1:0")
	r, _, err := New(Config{SSHListener: sl, HTTPListener: hl, StateDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	signers := make([]ssh.Signer, b.N)
	for i := range signers {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		signers[i], _ = ssh.NewSignerFromKey(priv)
	}
	measure := func() (uint64, int) {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse + ms.StackInuse, runtime.NumGoroutine()
	}
	before, g0 := measure()
	b.ResetTimer()
	clients := make([]*ssh.Client, b.N)
	for i := 0; i < b.N; i++ {
		c, err := ssh.Dial("tcp", sl.Addr().String(), &ssh.ClientConfig{User: "bench",
			Auth: []ssh.AuthMethod{ssh.PublicKeys(signers[i])}, HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Listen("tcp", "localhost:0"); err != nil {
			b.Fatal(err)
		}
		clients[i] = c
	}
	b.StopTimer()
	for len(r.Routes()) < b.N {
		time.Sleep(time.Millisecond)
	}
	after, g1 := measure()
	b.ReportMetric(float64(after-before)/float64(b.N)/1024, "KiB/tunnel(both)")
	b.ReportMetric(float64(g1-g0)/float64(b.N), "goroutines/tunnel(both)")
	for _, c := range clients {
		c.Close()
	}
}
