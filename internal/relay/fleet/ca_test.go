package fleet

import (
	"crypto/tls"
	"io"
	"testing"
)

// One fleet's nodes handshake; a node of another fleet (another CA), as
// client or as server, does not.
func TestFleetTLS(t *testing.T) {
	auth := func() *authority {
		t.Helper()
		pem, err := newAuthority()
		if err != nil {
			t.Fatal(err)
		}
		a, err := parseAuthority(pem)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	mine, theirs := auth(), auth()
	leaf := func(a *authority) tls.Certificate {
		c, err := a.issue()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	server := func(a *authority) string {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", a.serverTLS(leaf(a)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
			}
		}()
		return ln.Addr().String()
	}
	// echo dials addr with the certificate of a node of a, trusting the
	// servers of trust, and checks one byte comes back.
	echo := func(addr string, a, trust *authority) error {
		cfg := a.clientTLS(leaf(a))
		cfg.RootCAs = trust.pool
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte("x")); err != nil {
			return err
		}
		_, err = io.ReadFull(c, make([]byte, 1))
		return err
	}
	mineAddr, theirsAddr := server(mine), server(theirs)
	if err := echo(mineAddr, mine, mine); err != nil {
		t.Fatalf("a node of the same fleet: %v", err)
	}
	// Their node, even trusting this fleet's server: refused by the
	// server for its certificate.
	if err := echo(mineAddr, theirs, mine); err == nil {
		t.Fatal("another fleet's node was served")
	}
	// The other way round: this fleet's node does not trust their server.
	c, err := tls.Dial("tcp", theirsAddr, mine.clientTLS(leaf(mine)))
	if err == nil {
		c.Close()
		t.Fatal("a node trusted another fleet's server")
	}
}
