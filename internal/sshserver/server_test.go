package sshserver_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/pomdev/pomdev/internal/sshserver"
	"golang.org/x/crypto/ssh"
)

// server accepts connections on 127.0.0.1:0 and serves each with the
// handlers a test gives; it stops when the test ends.
type server struct {
	t    testing.TB
	ln   net.Listener
	cfg  *sshserver.Config
	mu   sync.Mutex
	errs []error
	conn chan *sshserver.Conn
	wg   sync.WaitGroup
}

func newSigner(t testing.TB) ssh.Signer {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startServer(t testing.TB, cfg *sshserver.Config, h sshserver.Handlers) *server {
	t.Helper()
	if cfg.HostKey == nil {
		cfg.HostKey = newSigner(t)
	}
	if cfg.PublicKey == nil {
		cfg.PublicKey = func(net.Addr, string, ssh.PublicKey) error { return nil }
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, ln: ln, cfg: cfg, conn: make(chan *sshserver.Conn, 16)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				c, err := sshserver.Handshake(nc, cfg)
				if err != nil {
					s.mu.Lock()
					s.errs = append(s.errs, err)
					s.mu.Unlock()
					_ = nc.Close()
					return
				}
				s.conn <- c
				if err := c.Serve(h); err != nil {
					t.Logf("serve: %v", err)
				}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		for {
			select {
			case c := <-s.conn:
				_ = c.Close()
				continue
			default:
			}
			break
		}
		s.wg.Wait()
	})
	return s
}

func (s *server) dial(t testing.TB, cc *ssh.ClientConfig) (*ssh.Client, error) {
	if cc.User == "" {
		cc.User = "test"
	}
	if cc.Auth == nil {
		cc.Auth = []ssh.AuthMethod{ssh.PublicKeys(newSigner(t))}
	}
	hostKey := s.cfg.HostKey.PublicKey()
	cc.HostKeyCallback = ssh.FixedHostKey(hostKey)
	c, err := ssh.Dial("tcp", s.ln.Addr().String(), cc)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

// The x/crypto client with each cipher: a remote forward, a channel the
// server opens to it, 3 MiB each way through it (several window adjusts),
// then a session with requests, output and exit status.
func TestXCryptoClient(t *testing.T) {
	for _, cipher := range []string{"chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"} {
		t.Run(cipher, func(t *testing.T) {
			var s *server
			forwarded := make(chan struct{}, 1)
			sessionDone := make(chan error, 1)
			h := sshserver.Handlers{
				Global: func(r *sshserver.Request) {
					if r.Type == "tcpip-forward" {
						_ = r.Reply(true, ssh.Marshal(struct{ Port uint32 }{4242}))
						forwarded <- struct{}{}
						return
					}
					_ = r.Reply(false, nil)
				},
				Channel: func(nc *sshserver.NewChannel) {
					if nc.ChannelType() != "session" {
						_ = nc.Reject(ssh.UnknownChannelType, "sessions only")
						return
					}
					go func() { sessionDone <- serveSession(nc) }()
				},
			}
			s = startServer(t, &sshserver.Config{}, h)
			var conn *sshserver.Conn
			client, err := s.dial(t, &ssh.ClientConfig{Config: ssh.Config{Ciphers: []string{cipher}}})
			if err != nil {
				t.Fatal(err)
			}
			conn = <-s.conn
			if conn.User() != "test" {
				t.Errorf("user %q", conn.User())
			}

			ln, err := client.Listen("tcp", "localhost:0")
			if err != nil {
				t.Fatal(err)
			}
			<-forwarded
			echoed := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					echoed <- err
					return
				}
				_, err = io.Copy(c, c)
				_ = c.Close()
				echoed <- err
			}()
			echoThrough(t, conn, "localhost", 4242, 3<<20)
			if err := <-echoed; err != nil {
				t.Fatal(err)
			}

			sess, err := client.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			if err := sess.Setenv("GREETING", "hi"); err != nil {
				t.Fatal(err)
			}
			if err := sess.Setenv("REFUSED", "x"); err == nil {
				t.Error("a refused env request succeeded")
			}
			out, err := sess.Output("say")
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != "GREETING=hi say\n" {
				t.Fatalf("session output %q", out)
			}
			if err := <-sessionDone; err != nil {
				t.Fatal(err)
			}
			ok, reply, err := conn.SendRequest("keepalive@openssh.com", true, nil)
			if err != nil || ok || reply != nil {
				// x/crypto answers unknown global requests with failure.
				t.Fatalf("keepalive: %v %q %v", ok, reply, err)
			}
		})
	}
}

// serveSession accepts env GREETING, refuses others, and answers exec with
// "NAME=VALUE COMMAND" and exit status 0.
func serveSession(nc *sshserver.NewChannel) error {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return err
	}
	env := ""
	for req := range reqs {
		var p struct{ Name, Value string }
		switch req.Type {
		case "env":
			if ssh.Unmarshal(req.Payload, &p) != nil || p.Name != "GREETING" {
				_ = req.Reply(false, nil)
				continue
			}
			env = p.Name + "=" + p.Value
			_ = req.Reply(true, nil)
		case "exec":
			var e struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &e); err != nil {
				return err
			}
			_ = req.Reply(true, nil)
			if _, err := fmt.Fprintf(ch, "%s %s\n", env, e.Command); err != nil {
				return err
			}
			if _, err := ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0})); err != nil {
				return err
			}
			return ch.Close()
		default:
			_ = req.Reply(false, nil)
		}
	}
	return errors.New("session ended before exec")
}

// echoThrough opens a forwarded-tcpip channel for addr:port, writes n
// random bytes into it and checks that the same bytes come back.
func echoThrough(t *testing.T, conn *sshserver.Conn, addr string, port uint32, n int) {
	t.Helper()
	ch, err := conn.OpenChannel("forwarded-tcpip", forwardedPayload(addr, port))
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	data := make([]byte, n)
	_, _ = rand.Read(data)
	go func() {
		_, _ = ch.Write(data)
		_ = ch.CloseWrite()
	}()
	back, err := io.ReadAll(ch)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, data) {
		t.Fatalf("echoed %d bytes, differ from the %d sent", len(back), len(data))
	}
}

// forwardedPayload is a forwarded-tcpip open for the remote forward
// addr:port, from 127.0.0.1:1.
func forwardedPayload(addr string, port uint32) []byte {
	return ssh.Marshal(struct {
		Addr       string
		Port       uint32
		OriginAddr string
		OriginPort uint32
	}{addr, port, "127.0.0.1", 1})
}
