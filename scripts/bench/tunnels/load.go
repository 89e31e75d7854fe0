package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// load is the relay's soak test (scripts/bench/load.sh): a relay in a
// child process (serve mode), idle tunnels from x/crypto clients, of which
// `busy` hold a static route served by a small handler, and `workers`
// HTTP clients sending requests through the front to those routes for dur.
// It reports errors, the relay's RSS every 5 s with the slope over the
// last half, and the relay's goroutines before, during and after the
// clients leave; it exits 1 if any request failed, the RSS grew by more
// than 5% over the last half, or the goroutines did not return to the
// baseline.
func load(n, busy, workers int, dur time.Duration) {
	cmd := exec.Command(os.Args[0], "-mode", "serve")
	in, _ := cmd.StdinPipe()
	outPipe, _ := cmd.StdoutPipe()
	errPipe, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer cmd.Process.Kill()
	httpAddr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "relay http "); ok {
				httpAddr <- a
			}
		}
	}()
	out := bufio.NewScanner(outPipe)
	out.Scan()
	sshAddr := out.Text()
	front := <-httpAddr
	read := func() (kb int64, g, routes int) {
		fmt.Fprintln(in, "measure")
		out.Scan()
		fmt.Sscan(out.Text(), &kb, &g, &routes)
		return
	}
	rss0, g0, _ := read()

	// Busy tunnels: static routes load-N, answered by this process.
	body := []byte(strings.Repeat("x", 1300))
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	clients := connectWith(sshAddr, n, func(i int, c *ssh.Client) error {
		if i >= busy {
			_, err := c.Listen("tcp", "localhost:0")
			return err
		}
		ln, err := c.Listen("tcp", fmt.Sprintf("load-%d:80", i))
		if err != nil {
			return err
		}
		go func() { _ = http.Serve(ln, handler) }()
		return nil
	})
	rss1, g1, routes := read()
	fmt.Printf("relay: %d tunnels (%d routes): RSS %d -> %d KiB, goroutines %d -> %d\n", n, routes, rss0, rss1, g0, g1)

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, front)
		}}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var ww sync.WaitGroup
	for w := range workers {
		ww.Add(1)
		go func() {
			defer ww.Done()
			for i := 0; ctx.Err() == nil; i++ {
				route := (w + i*workers) % busy
				req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://load-%d.localhost/mcp", route),
					strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil && ctx.Err() == nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else if err == nil {
					ok.Add(1)
				}
			}
		}()
	}
	start := time.Now()
	var samples []float64
	tick := time.NewTicker(5 * time.Second)
	for range tick.C {
		kb, g, _ := read()
		samples = append(samples, float64(kb))
		fmt.Printf("  %3.0fs: RSS %d KiB, goroutines %d, requests %d ok, %d failed\n", time.Since(start).Seconds(), kb, g, ok.Load(), failed.Load())
		if time.Since(start) >= dur {
			break
		}
	}
	tick.Stop()
	ww.Wait()
	tr.CloseIdleConnections()
	half := samples[len(samples)/2:]
	growth := (half[len(half)-1] - half[0]) / half[0]
	fmt.Printf("requests: %d ok, %d failed (%.0f/s); RSS over the last half: %.0f -> %.0f KiB (%+.1f%%), slope %.1f KiB/s\n",
		ok.Load(), failed.Load(), float64(ok.Load())/dur.Seconds(), half[0], half[len(half)-1], 100*growth, slope(half, 5))
	if e := firstErr.Load(); e != nil {
		fmt.Println("first error:", e)
	}

	for _, c := range clients {
		_ = c.Close()
	}
	var g2 int
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, g2, routes = read()
		if g2 <= g0 && routes == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Printf("after the clients left: goroutines %d (baseline %d), routes %d\n", g2, g0, routes)
	pass := failed.Load() == 0 && math.Abs(growth) <= 0.05 && g2 <= g0 && routes == 0
	if !pass {
		fmt.Println("FAIL")
		os.Exit(1)
	}
	fmt.Println("PASS")
}

// slope is the least-squares slope of samples taken every step seconds.
func slope(ys []float64, step float64) float64 {
	if len(ys) < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i, y := range ys {
		x := float64(i) * step
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	n := float64(len(ys))
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}
