package sshserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// plainWriter writes unencrypted packets, as a client does before the
// first NEWKEYS.
func plainWriter(nc net.Conn) *Conn {
	c := &Conn{nc: nc}
	c.wcond = sync.NewCond(&c.wmu)
	return c
}

func (c *Conn) writePlain(payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(payload)
}

func testHostKey(t testing.TB) ssh.Signer {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clientKexInit is a KEXINIT a client could send.
func clientKexInit(kex string) []byte {
	p := append([]byte{msgKexInit}, make([]byte, 16)...)
	for _, l := range []string{kex, "ssh-ed25519", cipherChaCha, cipherChaCha, "hmac-sha2-256", "hmac-sha2-256", "none", "none", "", ""} {
		p = appendString(p, l)
	}
	p = appendBool(p, false)
	return appendUint32(p, 0)
}

// handshakeWith runs Handshake against a client that sends its version
// line and then the given bytes, reading and dropping what the server
// sends.
func handshakeWith(t testing.TB, write func(client net.Conn)) error {
	server, client := net.Pipe()
	defer client.Close()
	_ = server.SetDeadline(time.Now().Add(5 * time.Second))
	go func() { _, _ = io.Copy(io.Discard, client) }()
	go func() {
		_, _ = client.Write([]byte("SSH-2.0-fuzz\r\n"))
		write(client)
		_ = client.Close()
	}()
	c, err := Handshake(server, &Config{HostKey: testHostKey(t), PublicKey: func(net.Addr, string, ssh.PublicKey) error { return nil }})
	if err == nil {
		_ = c.Close()
	}
	_ = server.Close()
	return err
}

// Strict key exchange (the Terrapin fix): with kex-strict-c-v00 offered, a
// packet before the client's KEXINIT ends the handshake.
func TestStrictKexFirstPacket(t *testing.T) {
	err := handshakeWith(t, func(nc net.Conn) {
		w := plainWriter(nc)
		_ = w.writePlain(appendString([]byte{msgIgnore}, "x"))
		_ = w.writePlain(clientKexInit(kexCurve25519 + "," + kexStrictClient))
	})
	if err == nil || !strings.Contains(err.Error(), "strict key exchange") {
		t.Fatalf("got %v", err)
	}
	// Without strict mode the IGNORE is skipped and the exchange goes on
	// (to fail later for want of the client's key share).
	err = handshakeWith(t, func(nc net.Conn) {
		w := plainWriter(nc)
		_ = w.writePlain(appendString([]byte{msgIgnore}, "x"))
		_ = w.writePlain(clientKexInit(kexCurve25519))
	})
	if err == nil || strings.Contains(err.Error(), "strict") {
		t.Fatalf("got %v", err)
	}
}

// A client with nothing in common is told what the server offers.
func TestNoCommonAlgorithm(t *testing.T) {
	err := handshakeWith(t, func(nc net.Conn) {
		_ = plainWriter(nc).writePlain(clientKexInit("diffie-hellman-group14-sha1"))
	})
	if err == nil || !strings.Contains(err.Error(), "no common key exchange algorithm") || !strings.Contains(err.Error(), kexCurve25519) {
		t.Fatalf("got %v", err)
	}
}

// FuzzHandshake feeds arbitrary bytes after the version line: the
// handshake fails or succeeds, never panics or hangs.
func FuzzHandshake(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x00\x00\x00\x0c\x0a\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add(clientKexInit(kexCurve25519 + "," + kexStrictClient))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = handshakeWith(t, func(nc net.Conn) { _, _ = nc.Write(data) })
	})
}

// FuzzDispatch feeds arbitrary messages to an authenticated connection
// (no encryption, so the fuzzer reaches the connection protocol): each
// input is a series of length-prefixed payloads. Serve must return once
// the client is gone, with every handler goroutine done.
func FuzzDispatch(f *testing.F) {
	open := appendString([]byte{msgChannelOpen}, "session")
	open = appendUint32(appendUint32(appendUint32(open, 7), 1<<20), 32<<10)
	req := appendString(appendUint32([]byte{msgChannelRequest}, 0), "exec")
	req = appendString(appendBool(req, true), "ls")
	data := appendString(appendUint32([]byte{msgChannelData}, 0), "hello")
	global := appendBool(appendString([]byte{msgGlobalRequest}, "tcpip-forward"), true)
	global = appendUint32(appendString(global, "localhost"), 0)
	seed := func(msgs ...[]byte) []byte {
		var b []byte
		for _, m := range msgs {
			b = append(b, byte(len(m)))
			b = append(b, m...)
		}
		return b
	}
	f.Add(seed(open, req, data, appendUint32([]byte{msgChannelEOF}, 0), appendUint32([]byte{msgChannelClose}, 0)))
	f.Add(seed(global, appendUint32(appendUint32([]byte{msgChannelWindowAdjust}, 0), 5)))
	f.Add(seed(open, appendUint32(appendUint32([]byte{msgChannelWindowAdjust}, 0), 0xffffffff), appendUint32(appendUint32([]byte{msgChannelWindowAdjust}, 0), 0xffffffff)))
	f.Add(seed([]byte{msgRequestSuccess}, []byte{200}, []byte{msgKexInit}))
	f.Fuzz(func(t *testing.T, in []byte) {
		server, client := net.Pipe()
		c := &Conn{nc: server, rd: reader{nc: server}, chans: map[uint32]*Channel{}, sessionID: []byte{1}, rand: rand.Reader}
		c.wcond = sync.NewCond(&c.wmu)
		c.hostKeyAlgo = ssh.KeyAlgoED25519
		c.cfg = &Config{HostKey: testHostKey(t)}
		go func() { _, _ = io.Copy(io.Discard, client) }()
		go func() {
			w := plainWriter(client)
			for len(in) > 0 {
				n := min(int(in[0]), len(in)-1)
				if n > 0 {
					_ = w.writePlain(in[1 : 1+n])
				}
				in = in[1+n:]
			}
			_ = client.Close()
		}()
		var wg sync.WaitGroup
		served := make(chan struct{})
		go func() {
			defer close(served)
			_ = c.Serve(Handlers{
				Global: func(r *Request) { _ = r.Reply(true, nil) },
				Channel: func(nc *NewChannel) {
					wg.Add(1)
					go func() {
						defer wg.Done()
						ch, reqs, err := nc.Accept()
						if err != nil {
							return
						}
						go func() { _, _ = io.Copy(ch, ch) }()
						for r := range reqs {
							_ = r.Reply(r.Type == "exec", nil)
						}
					}()
				},
			})
		}()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after the client left")
		}
		wg.Wait()
	})
}
