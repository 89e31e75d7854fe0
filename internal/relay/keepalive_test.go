package relay_test

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/relay"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"golang.org/x/crypto/ssh"
)

// freezer forwards TCP between a client and the relay until frozen, then
// swallows everything: a client whose network went away without a FIN.
type freezer struct {
	mu     sync.Mutex
	frozen bool
}

func (f *freezer) copy(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		f.mu.Lock()
		frozen := f.frozen
		f.mu.Unlock()
		if n > 0 && !frozen {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func TestKeepaliveDropsDeadClient(t *testing.T) {
	h := rt.StartRelay(t, func(c *relay.Config) { c.KeepaliveInterval = 100 * time.Millisecond })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f := &freezer{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", h.SSHAddr)
			if err != nil {
				c.Close()
				return
			}
			t.Cleanup(func() { c.Close(); up.Close() })
			go f.copy(up, c)
			go f.copy(c, up)
		}
	}()
	_, signer := rt.WriteKey(t)
	client, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{User: "k", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.Listen("tcp", "localhost:0"); err != nil {
		t.Fatal(err)
	}
	h.WaitRoute(1)
	// Alive and answering: several intervals pass and the tunnel stays.
	deadline := time.Now().Add(600 * time.Millisecond)
	for time.Now().Before(deadline) {
		if len(h.R.Routes()) != 1 {
			t.Fatal("a live client was dropped")
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.mu.Lock()
	f.frozen = true
	f.mu.Unlock()
	rt.WaitFor(t, func() bool { return len(h.R.Routes()) == 0 }, "the dead client to be dropped")
}
