// Command strangers is the relay soak of scripts/bench/soak.sh: for a
// while it attacks a pomdev relay's front from many loopback addresses
// (127.0.0.2-127.0.0.254) in every way the relay must shrug off, all at
// once, while a request loop from 127.0.0.1 goes through a tunnel with its
// owner's token:
//
//   - resets: 40 pipelined GETs on a connection closed with a reset
//     (SO_LINGER 0) as the answers start;
//   - slow bodies: POSTs to /oauth/token that declare 1000 bytes and send
//     one;
//   - form floods: 10 MB bodies to /oauth/token, /oauth/register and the
//     sign-in page;
//   - pending floods: registrations and authorization requests for the
//     tunnel's route, which wait for its owner;
//   - DCR floods: registrations as fast as the relay answers.
//
// It samples the relay's VmRSS every 250 ms and prints one line per
// attack with its count and the answers' statuses, then the loop's
// results and the peak RSS. It exits 1 when the loop saw an error, the
// peak RSS passed -rss-limit MiB, or the relay is not up at the end.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	front := flag.String("front", "", "the relay's front (http://127.0.0.1:PORT)")
	tunnel := flag.String("url", "", "the tunnel's URL (http://NAME.localhost:PORT)")
	token := flag.String("token", "", "the tunnel owner's access token (the loop's Authorization)")
	pid := flag.Int("pid", 0, "the relay's process id (for VmRSS)")
	dur := flag.Duration("duration", 60*time.Second, "how long the attacks run")
	rssLimit := flag.Int("rss-limit", 256, "the relay's peak VmRSS allowed, MiB")
	flag.Parse()
	if *front == "" || *tunnel == "" || *pid == 0 {
		fmt.Fprintln(os.Stderr, "usage: strangers -front URL -url TUNNEL_URL -token TOKEN -pid PID [-duration 60s] [-rss-limit MiB]")
		os.Exit(2)
	}
	fu, err := url.Parse(*front)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	frontAddr := fu.Host
	tu, err := url.Parse(*tunnel)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	tunnelHost := tu.Host
	// The relay's own endpoints answer on its domain (localhost here);
	// every connection dials the front's address whatever the URL says.
	apex := "http://localhost:" + fu.Port()
	dialFront = frontAddr
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()

	var wg sync.WaitGroup
	var attacks []*tally
	run := func(name string, workers int, f func(ctx context.Context, t *tally)) {
		t := &tally{name: name, statuses: map[string]int{}}
		attacks = append(attacks, t)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					f(ctx, t)
				}
			}()
		}
	}
	big := bytes.Repeat([]byte("a"), 10<<20)
	run("resets (40 pipelined GETs, SO_LINGER 0)", 4, func(ctx context.Context, t *tally) { reset(ctx, t, frontAddr, "localhost", "/") })
	// The tunnel's public asset path (no token): every request reaches the
	// app, and the connection is reset mid-answer.
	run("public asset resets (40 pipelined GETs through the tunnel)", 4, func(ctx context.Context, t *tally) {
		reset(ctx, t, frontAddr, tunnelHost, "/widgets/app.js")
	})
	run("client assertions (garbage and alg none)", 4, func(ctx context.Context, t *tally) {
		post(ctx, t, apex+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(
			"grant_type=authorization_code&code=x&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"+
				"&client_assertion=eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2NoYXRncHQuY29tL2MifQ."))
	})
	run("slow bodies (1 of 1000 bytes)", 64, func(ctx context.Context, t *tally) { slowBody(ctx, t, frontAddr) })
	run("10 MB forms", 4, func(ctx context.Context, t *tally) {
		path := []string{"/oauth/token", "/oauth/register", "/.pomdev/sign_in", "/oauth/authorize"}[t.n.Load()%4]
		post(ctx, t, apex+path, "application/x-www-form-urlencoded", bytes.NewReader(big))
	})
	run("pending requests (register, authorize)", 8, func(ctx context.Context, t *tally) { pending(ctx, t, apex, *tunnel+"/mcp") })
	run("registrations", 4, func(ctx context.Context, t *tally) {
		post(ctx, t, apex+"/oauth/register", "application/json",
			strings.NewReader(`{"client_name":"ChatGPT","redirect_uris":["https://chatgpt.com/connector_platform_oauth_redirect"],"token_endpoint_auth_method":"none"}`))
	})

	// The request loop: one client, keep-alive, from 127.0.0.1.
	loop := &tally{name: "request loop", statuses: map[string]int{}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := &http.Client{Timeout: 10 * time.Second}
		for ctx.Err() == nil {
			// To the front, with the tunnel's Host: *.localhost is this
			// machine whatever the resolver says.
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+frontAddr+"/", nil)
			req.Host = tunnelHost
			req.Header.Set("Authorization", "Bearer "+*token)
			resp, err := c.Do(req)
			if err != nil {
				if ctx.Err() == nil {
					loop.add("error: " + short(err))
				}
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			loop.add(strconv.Itoa(resp.StatusCode))
		}
	}()

	var peak, last int
	sample := time.NewTicker(250 * time.Millisecond)
	func() {
		defer sample.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-sample.C:
				if kb := vmRSS(*pid); kb > 0 {
					last = kb
					peak = max(peak, kb)
				}
			}
		}
	}()
	wg.Wait()

	for _, t := range attacks {
		fmt.Printf("%-42s %7d  %s\n", t.name, t.n.Load(), t.summary())
	}
	fmt.Printf("%-42s %7d  %s\n", loop.name, loop.n.Load(), loop.summary())
	fmt.Printf("relay VmRSS: peak %d MiB, last %d MiB (limit %d MiB)\n", peak>>10, last>>10, *rssLimit)
	failed := false
	for s, n := range loop.statuses {
		if s != "200" {
			fmt.Printf("FAIL: the request loop saw %s %d times\n", s, n)
			failed = true
		}
	}
	if loop.statuses["200"] == 0 {
		fmt.Println("FAIL: the request loop got no answer")
		failed = true
	}
	if peak>>10 > *rssLimit {
		fmt.Printf("FAIL: the relay's RSS passed %d MiB\n", *rssLimit)
		failed = true
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+frontAddr+"/healthz", nil)
	req.Host = "localhost:" + fu.Port()
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		fmt.Printf("FAIL: the relay is not up at the end: %v %v\n", resp, err)
		failed = true
	} else {
		resp.Body.Close()
		fmt.Println("relay up at the end: /healthz 200")
	}
	if failed {
		os.Exit(1)
	}
}

// tally counts an attack's attempts and the answers it got.
type tally struct {
	name     string
	n        atomic.Int64
	mu       sync.Mutex
	statuses map[string]int
}

func (t *tally) add(status string) {
	t.n.Add(1)
	t.mu.Lock()
	t.statuses[status]++
	t.mu.Unlock()
}

func (t *tally) summary() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keys []string
	for k := range t.statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, t.statuses[k]))
	}
	return strings.Join(parts, " ")
}

// short is an error without the addresses that make every one unique.
func short(err error) string {
	s := err.Error()
	for _, k := range []string{"connection reset", "broken pipe", "timeout", "EOF", "refused"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// stranger dials from a random loopback address other than 127.0.0.1.
func stranger(ctx context.Context, addr string) (net.Conn, error) {
	n, _ := rand.Int(rand.Reader, big.NewInt(253))
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+n.Int64()))}}
	return d.DialContext(ctx, "tcp", addr)
}

// dialFront is the relay front's address.
var dialFront string

var strangers = &http.Client{
	Timeout: 30 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return stranger(ctx, dialFront) }},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func post(ctx context.Context, t *tally, u, ctype string, body io.Reader) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	req.Header.Set("Content-Type", ctype)
	answer(ctx, t, req)
}

func answer(ctx context.Context, t *tally, req *http.Request) []byte {
	resp, err := strangers.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			t.add("error: " + short(err))
		}
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	t.add(strconv.Itoa(resp.StatusCode))
	return b
}

func reset(ctx context.Context, t *tally, addr, host, path string) {
	c, err := stranger(ctx, addr)
	if err != nil {
		t.add("error: " + short(err))
		return
	}
	_, _ = io.WriteString(c, strings.Repeat("GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n", 40))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	one := make([]byte, 1)
	_, err = c.Read(one)
	_ = c.(*net.TCPConn).SetLinger(0)
	c.Close()
	if err != nil {
		t.add("error: " + short(err))
		return
	}
	t.add("reset")
}

func slowBody(ctx context.Context, t *tally, addr string) {
	c, err := stranger(ctx, addr)
	if err != nil {
		t.add("error: " + short(err))
		return
	}
	defer c.Close()
	go func() { <-ctx.Done(); c.Close() }()
	_, _ = io.WriteString(c, "POST /oauth/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\na")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		if ctx.Err() == nil {
			t.add("error: " + short(err))
		}
		return
	}
	resp.Body.Close()
	t.add(strconv.Itoa(resp.StatusCode))
}

// pending registers a public client and asks for the route on its
// behalf: a request that waits for the owner, until the relay's bounds
// refuse more.
func pending(ctx context.Context, t *tally, front, resource string) {
	const redirect = "https://chatgpt.com/connector_platform_oauth_redirect"
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, front+"/oauth/register",
		strings.NewReader(`{"client_name":"ChatGPT`+strings.Repeat(" ", 200)+`","redirect_uris":["`+redirect+`"],"token_endpoint_auth_method":"none"}`))
	req.Header.Set("Content-Type", "application/json")
	b := answer(ctx, t, req)
	var reg struct {
		ClientID string `json:"client_id"`
	}
	if json.Unmarshal(b, &reg) != nil || reg.ClientID == "" {
		select { // registrations are rate limited: wait a little
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		return
	}
	v := make([]byte, 32)
	_, _ = rand.Read(v)
	sum := sha256.Sum256([]byte(base64.RawURLEncoding.EncodeToString(v)))
	q := url.Values{"response_type": {"code"}, "client_id": {reg.ClientID}, "redirect_uri": {redirect}, "state": {"s"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}, "resource": {resource}, "scope": {"mcp"}}
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, front+"/oauth/authorize?"+q.Encode(), nil)
	answer(ctx, t, req)
}

// vmRSS is pid's resident set in KiB (0 when it cannot be read).
func vmRSS(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}
