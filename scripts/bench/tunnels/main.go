// Command tunnels measures the relay side of a benchmark:
//
//	tunnels -mode idle -ssh ADDR -pid PID -n 1000   RSS per idle tunnel
//	tunnels -mode sse -url URL -http ADDR -origin URL  SSE delay, direct vs relay
//	tunnels -mode firstline -n 10 -- CMD ARGS...      time to "Remote URL:"
//	tunnels -mode load -n 1000 -busy 100 -workers 200 -duration 60s   soak test
//
// idle opens n SSH connections with x/crypto, each with one dynamic remote
// forward, and reads the relay's VmRSS from /proc before and after. Without
// -ssh it starts its own relay in a child process (-mode serve) that
// collects garbage and returns free memory to the OS before each reading,
// as a long-running relay's periodic GC would.
package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pomdev/pomdev/internal/relay"
	"golang.org/x/crypto/ssh"
)

func main() {
	mode := flag.String("mode", "idle", "idle or sse")
	sshAddr := flag.String("ssh", "", "relay SSH address")
	pid := flag.Int("pid", 0, "relay process id (for RSS)")
	n := flag.Int("n", 1000, "idle tunnels to open")
	url := flag.String("url", "", "tunnel URL (sse mode)")
	httpAddr := flag.String("http", "", "relay HTTP address (sse mode)")
	origin := flag.String("origin", "", "origin URL for the direct SSE baseline")
	events := flag.Int("events", 500, "SSE events to measure")
	target := flag.String("target", "", "serve mode: the relay's default target")
	prefix := flag.String("prefix", "Remote URL:", "firstline mode: the line to wait for")
	pprofAddr := flag.String("pprof", "", "serve mode: address for net/http/pprof")
	flag.StringVar(&bindFormat, "bind", "", "idle mode: forward to ask for, with %d for the client's number (default localhost:0, a dynamic route)")
	flag.StringVar(&cipher, "cipher", "", "idle mode: the clients' only cipher (default: x/crypto's preference, AES-GCM; OpenSSH's is chacha20-poly1305@openssh.com)")
	busy := flag.Int("busy", 100, "load mode: tunnels that serve requests")
	workers := flag.Int("workers", 200, "load mode: concurrent HTTP clients")
	loadDur := flag.Duration("duration", 60*time.Second, "load mode: how long the requests run")
	settle := flag.String("settle", "10s", "idle mode: when to read RSS after opening the tunnels (comma-separated durations)")
	flag.Parse()
	switch *mode {
	case "idle":
		if *sshAddr == "" {
			idleSelf(*n)
			return
		}
		var at []time.Duration
		for _, f := range strings.Split(*settle, ",") {
			d, err := time.ParseDuration(f)
			if err != nil {
				log.Fatalf("-settle: %v", err)
			}
			at = append(at, d)
		}
		idle(*sshAddr, *pid, *n, at)
	case "load":
		load(*n, *busy, *workers, *loadDur)
	case "serve":
		serve(*target, *pprofAddr)
	case "client":
		client(*sshAddr, *target, *pprofAddr)
	case "firstline":
		firstLine(flag.Args(), *prefix, *n)
	case "sse":
		direct := sse(*origin+"/sse", "", *events)
		relayed := sse(*url+"/sse", *httpAddr, *events)
		fmt.Printf("sse delay median: direct %v, through relay %v, added %v\n", direct, relayed, relayed-direct)
	default:
		log.Fatalf("unknown mode %q", *mode)
	}
}

// cipher restricts the idle clients to one cipher when set.
var cipher string

// bindFormat, when set, is the forward each idle client asks for, with
// the client's number (for another relay: "idle-%d:80" is an HTTP route
// on sish).
var bindFormat string

func rss(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb
		}
	}
	return 0
}

// idle reads the relay's RSS before connecting and at each of the given
// times after (the Go runtime collects at least every 2 minutes and
// returns free memory to the OS gradually, so a long-running relay's
// figure is the later one).
func idle(addr string, pid, n int, at []time.Duration) {
	before := rss(pid)
	clients := connect(addr, n)
	start := time.Now()
	for _, d := range at {
		time.Sleep(time.Until(start.Add(d)))
		after := rss(pid)
		fmt.Printf("idle tunnels: %d, relay RSS %d KiB -> %d KiB after %v, %.1f KiB per tunnel\n", n, before, after, d, float64(after-before)/float64(n))
	}
	runtime.KeepAlive(clients)
}

// serve runs a relay for idleSelf: it prints its SSH address, then on each
// line read from stdin collects garbage, frees memory and prints VmRSS.
func serve(target, pprofAddr string) {
	if pprofAddr != "" {
		// Every allocation in the heap profile, for figures per tunnel.
		runtime.MemProfileRate = 1
		go func() { log.Println(http.ListenAndServe(pprofAddr, nil)) }()
	}
	sl, _ := net.Listen("tcp", "127.0.0.1:0")
	hl, _ := net.Listen("tcp", "127.0.0.1:0")
	dir, _ := os.MkdirTemp("", "relay-bench")
	defer os.RemoveAll(dir)
	fmt.Fprintln(os.Stderr, "relay http", hl.Addr())
	r, _, err := relay.New(relay.Config{SSHListener: sl, HTTPListener: hl, StateDir: dir, DefaultTarget: target})
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = r.Serve(context.Background()) }()
	fmt.Println(sl.Addr().String())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(os.Stderr, "relay: heap in use %d KiB, stacks %d KiB\n", ms.HeapInuse>>10, ms.StackInuse>>10)
		fmt.Println(rss(os.Getpid()), runtime.NumGoroutine(), len(r.Routes()))
	}
}

func idleSelf(n int) {
	cmd := exec.Command(os.Args[0], "-mode", "serve")
	in, _ := cmd.StdinPipe()
	outPipe, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer cmd.Process.Kill()
	out := bufio.NewScanner(outPipe)
	out.Scan()
	addr := out.Text()
	read := func() (int64, int, int) {
		fmt.Fprintln(in, "measure")
		out.Scan()
		var kb int64
		var g, routes int
		fmt.Sscan(out.Text(), &kb, &g, &routes)
		return kb, g, routes
	}
	before, g0, _ := read()
	clients := connect(addr, n)
	after, g1, routes := read()
	fmt.Printf("idle tunnels: %d (routes %d), relay RSS %d KiB -> %d KiB: %.1f KiB and %.1f goroutines per tunnel\n",
		n, routes, before, after, float64(after-before)/float64(n), float64(g1-g0)/float64(n))
	runtime.KeepAlive(clients)
}

func connect(addr string, n int) []*ssh.Client {
	return connectWith(addr, n, func(i int, c *ssh.Client) error {
		bind := "localhost:0"
		if bindFormat != "" {
			bind = fmt.Sprintf(bindFormat, i)
		}
		_, err := c.Listen("tcp", bind)
		return err
	})
}

// connectWith opens n SSH connections to addr, a fresh Ed25519 key each,
// and calls setup for each; any failure ends the program.
func connectWith(addr string, n int, setup func(i int, c *ssh.Client) error) []*ssh.Client {
	var mu sync.Mutex
	var clients []*ssh.Client
	// Below the relay's 16 handshakes in flight per source address.
	sem := make(chan struct{}, 12)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			signer, _ := ssh.NewSignerFromKey(priv)
			cc := &ssh.ClientConfig{User: "bench", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
				HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 30 * time.Second}
			if cipher != "" {
				cc.Ciphers = []string{cipher}
			}
			c, err := ssh.Dial("tcp", addr, cc)
			if err != nil {
				log.Fatalf("client %d: %v", i, err)
			}
			if err := setup(i, c); err != nil {
				log.Fatalf("client %d: %v", i, err)
			}
			mu.Lock()
			clients = append(clients, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return clients
}

// firstLine runs argv n times and reports the time from start to the first
// stdout line starting with prefix (the command is then killed).
func firstLine(argv []string, prefix string, n int) {
	var times []time.Duration
	for i := 0; i < n; i++ {
		cmd := exec.Command(argv[0], argv[1:]...)
		out, _ := cmd.StdoutPipe()
		start := time.Now()
		if err := cmd.Start(); err != nil {
			log.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		found := false
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), prefix) {
				times = append(times, time.Since(start))
				found = true
				break
			}
		}
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if !found {
			log.Fatalf("%v never printed %q", argv, prefix)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	fmt.Printf("time to %q over %d runs: median %v, min %v, max %v\n", prefix, n,
		times[len(times)/2].Round(time.Millisecond), times[0].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond))
}

// sse reads events and returns the median of receive time minus the send
// time stamped by the origin.
func sse(url, via string, count int) time.Duration {
	tr := &http.Transport{DisableCompression: true}
	if via != "" {
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, via)
		}
	}
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	var delays []time.Duration
	for len(delays) < count {
		line, err := br.ReadString('\n')
		if err != nil {
			log.Fatal(err)
		}
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		ns, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "data: ")), 10, 64)
		delays = append(delays, time.Since(time.Unix(0, ns)))
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	return delays[len(delays)/2]
}
