package sshserver_test

import (
	"io"
	"testing"

	"golang.org/x/crypto/ssh"
)

// BenchmarkRoundTrip sends 1.3 KB through a channel the server opened to
// an x/crypto client that echoes it, and reads it back: the relay's share
// of a small HTTP exchange, for regressions.
//
//	go test -run XXX -bench RoundTrip -benchmem ./internal/sshserver
func BenchmarkRoundTrip(b *testing.B) {
	for _, cipher := range []string{"chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com"} {
		b.Run(cipher, func(b *testing.B) {
			conn, addr := xcryptoEcho(b, &ssh.ClientConfig{Config: ssh.Config{Ciphers: []string{cipher}}})
			ch, err := conn.OpenChannel("forwarded-tcpip", forwardedPayload(addr, 4242))
			if err != nil {
				b.Fatal(err)
			}
			defer ch.Close()
			msg := make([]byte, 1300)
			back := make([]byte, len(msg))
			b.SetBytes(int64(2 * len(msg)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := ch.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(ch, back); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
