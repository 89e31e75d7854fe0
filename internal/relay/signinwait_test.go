package relay_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/relay"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"golang.org/x/crypto/ssh"
)

// startSignin dials the relay with signer and waits for the sign-in
// link; the connection is left waiting for a person. It returns the
// client's TCP connection and the handshake's result.
func startSignin(t *testing.T, addr string, signer ssh.Signer) (net.Conn, <-chan error) {
	nc, _, done := startSigninLink(t, addr, signer)
	return nc, done
}

// startSigninLink is startSignin that also returns the link ("" when the
// handshake ended first).
func startSigninLink(t *testing.T, addr string, signer ssh.Signer) (net.Conn, string, <-chan error) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	links := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		c, _, _, err := ssh.NewClientConn(nc, addr, &ssh.ClientConfig{User: "u", HostKeyCallback: ssh.InsecureIgnoreHostKey(),
			Auth: []ssh.AuthMethod{ssh.PublicKeys(signer), ssh.KeyboardInteractive(func(name, instr string, qs []string, e []bool) ([]string, error) {
				if strings.Contains(instr, "user_code=") {
					links <- instr
				}
				return []string{}, nil
			})}})
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	select {
	case link := <-links:
		return nc, link, done
	case err := <-done:
		return nc, "", doneWith(err)
	case <-time.After(15 * time.Second):
		t.Fatal("no sign-in link")
	}
	return nc, "", done
}

func doneWith(err error) <-chan error {
	c := make(chan error, 1)
	c <- err
	return c
}

// TestSigninWaitBounds: a sign-in waiting for a person holds no handshake
// slot (a signed-in owner gets in while MaxStartups sign-ins wait), one
// key has at most a few waiting, a client that leaves ends its wait, and
// the relay's shutdown does not wait for a person.
func TestSigninWaitBounds(t *testing.T) {
	h := rt.StartRelay(t, func(c *relay.Config) {
		c.Auth = relay.AuthSignin
		c.MaxStartups = 4
		c.MaxStartupsPerSource = 4
	})
	// Four keys wait: every handshake slot would be taken if they held one.
	var conns []net.Conn
	for range 4 {
		_, signer := rt.WriteKey(t)
		nc, _ := startSignin(t, h.SSHAddr, signer)
		conns = append(conns, nc)
	}
	rt.WaitFor(t, func() bool { return relay.SigninsWaiting(h.R) == 4 && relay.Handshakes(h.R) == 0 }, "4 sign-ins waiting, no handshake slot held")
	// A fifth key still reaches its sign-in (a signed-in owner would get
	// in the same way).
	_, signer := rt.WriteKey(t)
	if _, done := startSignin(t, h.SSHAddr, signer); len(done) != 0 {
		t.Fatalf("a fifth key was refused while 4 sign-ins wait: %v", <-done)
	}
	// One key: at most 4 waiting; the fifth is refused at once.
	_, one := rt.WriteKey(t)
	for range 4 {
		startSignin(t, h.SSHAddr, one)
	}
	if _, done := startSignin(t, h.SSHAddr, one); len(done) == 0 {
		t.Fatal("a fifth sign-in of one key was left waiting")
	}
	// A client that leaves ends its wait.
	before := relay.SigninsWaiting(h.R)
	conns[0].Close()
	rt.WaitFor(t, func() bool { return relay.SigninsWaiting(h.R) == before-1 }, "the wait of a client that left to end")
	// Shutdown ends the rest (sign-in codes last 15 minutes).
	stopped := make(chan struct{})
	go func() { h.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatalf("the relay's shutdown waits for %d sign-ins", relay.SigninsWaiting(h.R))
	}
}
