package tunnel

import (
	"errors"
	"github.com/pomdev/pomdev/internal/event"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/pomdev/pomdev/internal/socks5"
	"golang.org/x/crypto/ssh"
)

// A relay asking for anything but the targets (another port, another
// host, a metadata address) gets SOCKS "not allowed", and the refusal is
// an event. The relay side is the socks5 client the relay itself uses.
func TestForwarderRefusesOtherDestinations(t *testing.T) {
	var mu sync.Mutex
	var events []event.Tunnel
	_, priv, _ := generateKey()
	c, err := New(Config{Addr: "relay:22", Signers: []ssh.Signer{priv}, Targets: []string{"localhost:8080"},
		OnEvent: func(e event.Tunnel) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	f := newForwarder(c)
	defer f.close()
	tests := []struct {
		host    string
		port    int
		allowed bool
	}{
		{"169.254.169.254", 80, false},
		{"localhost", 22, false},
		{"example.com", 8080, false},
		{"127.0.0.1", 8080, true},
		{"::1", 8080, true},
		{"localhost", 8080, true},
	}
	for _, tt := range tests {
		relaySide, tunnelSide := tcpPair(t)
		go f.handle(tunnelSide)
		err := socks5.Connect(relaySide, tt.host, tt.port)
		relaySide.Close()
		var re *socks5.ReplyError
		switch {
		case tt.allowed && err != nil:
			t.Errorf("%s:%d refused: %v", tt.host, tt.port, err)
		case !tt.allowed && (!errors.As(err, &re) || re.Code != socks5.ReplyNotAllowed):
			t.Errorf("%s:%d: got %v, want not allowed", tt.host, tt.port, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	refused := 0
	for _, e := range events {
		if e.Kind == event.TunnelRefused {
			refused++
			if !strings.Contains(e.Message, "not one of the tunnel's targets") {
				t.Errorf("message %q", e.Message)
			}
		}
	}
	if refused != 3 {
		t.Fatalf("%d refusal events, want 3", refused)
	}
}

func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}
