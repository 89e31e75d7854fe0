package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/peertest"
	"github.com/pomdev/pomdev/internal/pgtest"
)

// fleetStore is a new database for a fleet: on the server .ci/run
// started, or on a cluster of the test's own.
func fleetStore(t *testing.T) string {
	t.Helper()
	if os.Getenv("POMDEV_TEST_POSTGRES") != "" {
		return pgtest.DB(t)
	}
	return pgtest.New(t).CreateDB(t)
}

// haproxyConfig is the TCP load balancer in front of a fleet, as
// docs/RELAY.md shows it: SSH to the first live relay (a tunnel's client
// reconnects to the next when it dies), HTTP(S) to any ready one.
const haproxyConfig = `global
  maxconn 4096

defaults
  mode tcp
  timeout connect 2s
  timeout client 1h
  timeout server 1h
  retries 3
  option redispatch

frontend ssh
  bind {{SSH}}
  default_backend relays_ssh

backend relays_ssh
  balance first
{{SSH_SERVERS}}
frontend front
  bind {{HTTP}}
  default_backend relays_front

backend relays_front
  balance roundrobin
  option httpchk
  http-check send meth GET uri /readyz hdr Host {{DOMAIN}}
{{HTTP_SERVERS}}`

// Three pomdev relay binaries on one PostgreSQL store behind HAProxy. The
// node holding a pomdev tunnel and a stock ssh -R (run again by a user's
// loop, trusting the host key it saw first) is killed with SIGKILL under
// a request loop: both reconnect through the balancer to another node and
// keep their names, and the loop fails only between the kill and those
// reconnections. Every node's /readyz says ready with its node id.
func TestFleetSurvivesSIGKILL(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		peertest.Missing(t, "haproxy (apt-get install haproxy)")
	}
	store := fleetStore(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "pomdev")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env := append(os.Environ(), "HOME="+filepath.Join(dir, "home"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "POMDEV_CONFIG=")
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "origin ok") }))
	defer origin.Close()

	lbSSH, lbHTTP := peertest.FreeAddr(t), peertest.FreeAddr(t)
	_, lbPort, _ := net.SplitHostPort(lbHTTP)
	type node struct {
		ssh, http string
		cmd       *exec.Cmd
		out       *peertest.SyncBuffer
		exited    <-chan struct{}
	}
	var nodes []*node
	var sshServers, httpServers strings.Builder
	for i := range 3 {
		n := &node{ssh: peertest.FreeAddr(t), http: peertest.FreeAddr(t)}
		n.cmd = exec.Command(bin, "relay", "--store", store, "--ssh-addr", n.ssh, "--http-addr", n.http,
			"--state-dir", filepath.Join(dir, fmt.Sprintf("state%d", i+1)), "--public-port", lbPort, "--http-auth", "none")
		n.cmd.Env = env
		n.out, n.exited = peertest.Start(t, n.cmd)
		waitOutput(t, n.out, `Fleet +node [0-9a-f]{16}`)
		nodes = append(nodes, n)
		fmt.Fprintf(&sshServers, "  server relay%d %s check inter 300ms fall 1 rise 2\n", i+1, n.ssh)
		fmt.Fprintf(&httpServers, "  server relay%d %s check inter 300ms fall 1 rise 2\n", i+1, n.http)
	}
	cfg := strings.NewReplacer("{{SSH}}", lbSSH, "{{HTTP}}", lbHTTP, "{{DOMAIN}}", "localhost",
		"{{SSH_SERVERS}}", sshServers.String(), "{{HTTP_SERVERS}}", httpServers.String()).Replace(haproxyConfig)
	cfgFile := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(haproxy, "-c", "-f", cfgFile).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	lbOut, lbExited := peertest.Start(t, exec.Command(haproxy, "-db", "-f", cfgFile))
	peertest.WaitDial(t, lbSSH, 30*time.Second)

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", lbHTTP)
		},
		DisableKeepAlives: true, // each request is balanced afresh
	}}
	get := func(u string) (int, string) {
		resp, err := client.Get(u)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for i, n := range nodes {
		peertest.WaitDial(t, n.http, 30*time.Second)
		req, _ := http.NewRequest(http.MethodGet, "http://"+n.http+"/readyz", nil)
		req.Host = "localhost" // the relay's own pages are on its domain
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"status":"ready"`) || !strings.Contains(string(b), `"node":"`) {
			t.Fatalf("node %d /readyz: %d %s", i+1, resp.StatusCode, b)
		}
	}

	tunnel := exec.Command(bin, "tunnel", "--relay", lbSSH, "--target", strings.TrimPrefix(origin.URL, "http://"), "--no-browser")
	tunnel.Env = env
	tunnelOut, _ := peertest.Start(t, tunnel)
	url := waitOutput(t, tunnelOut, `Remote URL: (\S+)`)
	if !strings.HasSuffix(url, ":"+lbPort) {
		t.Fatalf("the tunnel's URL %s is not the balancer's", url)
	}

	// Stock OpenSSH in a user's loop (while true; do ssh -R 0 …; done),
	// trusting the host key it saw first: another node must show it too.
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		peertest.Missing(t, "ssh (openssh-client)")
	}
	key := filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	_, lbSSHPort, _ := net.SplitHostPort(lbSSH)
	sshArgs := []string{"-F", "/dev/null", "-i", key, "-o", "StrictHostKeyChecking=accept-new", "-o", "UserKnownHostsFile=" + filepath.Join(dir, "known_hosts"),
		"-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2", "-o", "ExitOnForwardFailure=yes", "-o", "BatchMode=yes",
		"-o", "SetEnv=POMDEV_TARGET=" + strings.TrimPrefix(origin.URL, "http://"), "-p", lbSSHPort, "-T", "-R", "0", "127.0.0.1"}
	userLoop := make(chan struct{})
	loopExited := make(chan struct{})
	sshURL := make(chan string, 1)
	var sshRuns sync.Map // run number -> output
	go func() {
		defer close(loopExited)
		for run := 1; ; run++ {
			select {
			case <-userLoop:
				return
			default:
			}
			cmd := exec.Command(sshBin, sshArgs...)
			out := &peertest.SyncBuffer{}
			cmd.Stdout, cmd.Stderr = out, out
			sshRuns.Store(run, out)
			if err := cmd.Start(); err != nil {
				return
			}
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			if run == 1 {
				go func() {
					for {
						if m := regexp.MustCompile(`Remote: (\S+)`).FindStringSubmatch(out.String()); m != nil {
							sshURL <- m[1]
							return
						}
						select {
						case <-done:
							return
						case <-time.After(20 * time.Millisecond): // polling the output
						}
					}
				}()
			}
			select {
			case <-done:
			case <-userLoop:
				_ = cmd.Process.Kill()
				<-done
				return
			}
			select {
			case <-userLoop:
				return
			case <-time.After(200 * time.Millisecond): // the user's loop's pause
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-userLoop:
		default:
			close(userLoop)
		}
		<-loopExited
	})
	var stockURL string
	select {
	case stockURL = <-sshURL:
	case <-time.After(30 * time.Second):
		out, _ := sshRuns.Load(1)
		t.Fatalf("stock ssh printed no URL: %v", out)
	}

	// The loop: a request every 20 ms through the balancer, to any node.
	type result struct {
		at   time.Time
		url  string
		code int
		body string
	}
	var mu sync.Mutex
	var results []result
	stop := make(chan struct{})
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond): // the loop's pace
			}
			for _, u := range []string{url, stockURL} {
				code, body := get(u + "/")
				mu.Lock()
				results = append(results, result{time.Now(), u, code, body})
				mu.Unlock()
			}
		}
	}()
	// okSince: both tunnels' last n requests since from reached the origin.
	okSince := func(from time.Time, n int) bool {
		mu.Lock()
		defer mu.Unlock()
		run := map[string]int{}
		for _, r := range results {
			if r.at.Before(from) {
				continue
			}
			if r.code == 200 && r.body == "origin ok" {
				run[r.url]++
			} else {
				run[r.url] = 0
			}
		}
		return run[url] >= n && run[stockURL] >= n
	}
	deadline := time.Now().Add(60 * time.Second)
	for start := time.Now(); !okSince(start, 25); {
		if time.Now().After(deadline) {
			t.Fatalf("the loop never ran clean before the kill:\n%v", results)
		}
		time.Sleep(20 * time.Millisecond) // polling, bounded by the deadline
	}
	killed := time.Now()
	if err := nodes[0].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-nodes[0].exited
	// Back: the tunnel announces the same URL again and the loop runs
	// clean for 50 requests.
	for !okSince(killed, 50) {
		if time.Now().After(deadline) {
			t.Fatalf("no recovery %v after the kill; tunnel:\n%s\nbalancer:\n%s", time.Since(killed), tunnelOut, lbOut)
		}
		time.Sleep(20 * time.Millisecond) // polling, bounded by the deadline
	}
	close(stop)
	<-loopDone
	runs := 0
	sshRuns.Range(func(_, _ any) bool { runs++; return true })
	if runs < 2 {
		t.Fatalf("stock ssh was not run again by its loop (%d runs)", runs)
	}
	t.Logf("stock ssh ran %d times in its loop", runs)
	// Its requests reached the origin again at the same URL: the name
	// stayed the key's.
	if !strings.Contains(tunnelOut.String(), "reconnected") {
		t.Fatalf("the tunnel did not say it reconnected:\n%s", tunnelOut)
	}
	lastFails := map[string]time.Time{}
	var firstFail, lastFail time.Time
	failures := 0
	for _, r := range results {
		if r.code == 200 && r.body == "origin ok" {
			continue
		}
		if r.at.Before(killed) {
			t.Fatalf("a request failed before the kill: %d %s", r.code, r.body)
		}
		if firstFail.IsZero() {
			firstFail = r.at
		}
		lastFail = r.at
		lastFails[r.url] = r.at
		failures++
	}
	t.Logf("%d requests, %d failed, all between the kill and %v after it (first failure after %v); back after %v (pomdev tunnel), %v (stock ssh in a loop)",
		len(results), failures, lastFail.Sub(killed).Round(time.Millisecond), firstFail.Sub(killed).Round(time.Millisecond),
		lastFails[url].Sub(killed).Round(time.Millisecond), lastFails[stockURL].Sub(killed).Round(time.Millisecond))
	for i, n := range nodes[1:] {
		select {
		case <-n.exited:
			t.Fatalf("node %d stopped:\n%s", i+2, n.out)
		default:
		}
	}
	// pomdev relay fleet status: node 1 dead once its last beat is old,
	// the tunnel on one of the two others.
	var status string
	for {
		st := exec.Command(bin, "relay", "fleet", "status", "--store", store)
		st.Env = env
		out, _ := st.CombinedOutput()
		status = string(out)
		if strings.Count(status, " live ") == 2 && strings.Count(status, " dead ") == 1 && regexp.MustCompile(`(?m) dead +0$`).MatchString(status) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleet status after the kill:\n%s", status)
		}
		time.Sleep(100 * time.Millisecond) // polling, bounded by the deadline
	}
	if !regexp.MustCompile(`(?m) live +[12]$`).MatchString(status) || !regexp.MustCompile(`(?m) dead +0$`).MatchString(status) {
		t.Fatalf("fleet status: the tunnel is not on a live node:\n%s", status)
	}
	t.Logf("fleet status:\n%s", status)
	select {
	case <-lbExited:
		t.Fatalf("haproxy stopped:\n%s", lbOut)
	default:
	}
}
