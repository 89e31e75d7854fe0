package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"

	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/tunnel"
	"golang.org/x/crypto/ssh"
)

// client runs the tunnel client in this process (with net/http/pprof on
// pprofAddr when set), printing "Remote URL: <url>".
func client(relayAddr, target, pprofAddr string) {
	if pprofAddr != "" {
		go func() { log.Println(http.ListenAndServe(pprofAddr, nil)) }()
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	dir, _ := os.MkdirTemp("", "tunnel-bench")
	defer os.RemoveAll(dir)
	c, err := tunnel.New(tunnel.Config{Addr: relayAddr, Signers: []ssh.Signer{signer}, Targets: []string{target},
		KnownHosts: filepath.Join(dir, "known_hosts"),
		OnEvent: func(e event.Tunnel) {
			if e.Kind == event.TunnelReady {
				fmt.Println("Remote URL:", e.URL)
			}
		}})
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(c.Run(context.Background()))
}
