package tunnel_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/event"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"github.com/pomdev/pomdev/internal/tunnel"
	"golang.org/x/crypto/ssh"
)

// hostileRelay is an SSH server (x/crypto) that answers every key with
// partial success and sends instruction in a zero-prompt
// keyboard-interactive request, then refuses.
func hostileRelay(t *testing.T, instruction string) string {
	t.Helper()
	_, hostKey := rt.WriteKey(t)
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
		return nil, &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{
			KeyboardInteractiveCallback: func(_ ssh.ConnMetadata, ch ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
				_, _ = ch("Please sign in to continue", instruction, nil, nil)
				return nil, errors.New("no")
			},
		}}
	}}
	cfg.AddHostKey(hostKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
				_, _, _, _ = ssh.NewServerConn(nc, cfg)
				nc.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// A relay's keyboard-interactive instruction is opened in the browser only
// if it is one https URL (or http to this machine); anything else is shown
// as a log line and never reaches the opener.
func TestSignInLinkMustBeSafe(t *testing.T) {
	_, signer := rt.WriteKey(t)
	for _, tc := range []struct {
		instruction string
		open        bool
	}{
		{"file:///etc/passwd://x", false},
		{"javascript://x/%0aalert(1)", false},
		{"see http://relay.example.com/sign_in", false},
		{"http://relay.example.com/sign_in", false},
		{"https://relay.example.com/.pomdev/sign_in?user_code=AB-CD", true},
	} {
		t.Run(tc.instruction, func(t *testing.T) {
			addr := hostileRelay(t, tc.instruction)
			var mu sync.Mutex
			var opened []string
			var kinds []string
			c, err := tunnel.New(tunnel.Config{
				Addr: addr, Signers: []ssh.Signer{signer}, KnownHosts: filepath.Join(t.TempDir(), "known_hosts"),
				Targets: []string{"localhost:1"},
				SignIn:  func(_, link string) { mu.Lock(); opened = append(opened, link); mu.Unlock() },
				OnEvent: func(e event.Tunnel) { mu.Lock(); kinds = append(kinds, e.Kind); mu.Unlock() },
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = c.Run(ctx)
			mu.Lock()
			defer mu.Unlock()
			if got := len(opened) > 0; got != tc.open {
				t.Fatalf("opened %q (events %v)", opened, kinds)
			}
		})
	}
}
