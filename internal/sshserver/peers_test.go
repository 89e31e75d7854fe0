package sshserver_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"github.com/pomdev/pomdev/internal/sshserver"
	"golang.org/x/crypto/ssh"
)

// forwardServer answers tcpip-forward with port 4242 and reports the
// requested address; its connections arrive on s.conn.
func forwardServer(t testing.TB, cfg *sshserver.Config) (*server, <-chan string) {
	addrs := make(chan string, 4)
	s := startServer(t, cfg, sshserver.Handlers{Global: func(r *sshserver.Request) {
		var fr struct {
			Addr string
			Port uint32
		}
		if r.Type != "tcpip-forward" || ssh.Unmarshal(r.Payload, &fr) != nil {
			_ = r.Reply(false, nil)
			return
		}
		_ = r.Reply(true, ssh.Marshal(struct{ Port uint32 }{4242}))
		addrs <- fr.Addr
	}})
	return s, addrs
}

// echoServer is a loopback TCP echo server.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = io.Copy(c, c)
				_ = c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// Rekeying in both directions of initiative: the x/crypto client asks for
// new keys every 64 KiB, and with the server's threshold lowered the server
// asks too; 3 MiB each way arrive intact.
func TestRekey(t *testing.T) {
	for _, who := range []string{"client", "server"} {
		t.Run(who, func(t *testing.T) {
			cc := &ssh.ClientConfig{}
			if who == "client" {
				cc.RekeyThreshold = 64 << 10
			} else {
				t.Cleanup(sshserver.SetRekeyBytes(64 << 10))
			}
			conn, addr := xcryptoEcho(t, cc)
			echoThrough(t, conn, addr, 4242, 3<<20)
			// How often the x/crypto client asks varies from run to run (3
			// to 6 exchanges seen, the server asks 49 to 52 times): one
			// rekey in mid-stream is what this shows.
			if n := sshserver.KexCount(conn); n < 2 {
				t.Fatalf("%d key exchanges for 6 MiB at 64 KiB each", n)
			} else {
				t.Logf("%d key exchanges", n)
			}
		})
	}
}

// The stock OpenSSH client with each cipher, rekeying every 64 KiB
// (RekeyLimit) in one run and with the server asking in another: a remote
// forward to a local echo server carries 2 MiB each way.
func TestOpenSSHClient(t *testing.T) {
	bin := rt.RequireOpenSSH(t)
	for _, tc := range []struct{ cipher, rekey string }{
		{"chacha20-poly1305@openssh.com", "client"},
		{"aes128-gcm@openssh.com", "client"},
		{"aes256-gcm@openssh.com", "server"},
		{"chacha20-poly1305@openssh.com", "server"},
	} {
		t.Run(tc.cipher+"/"+tc.rekey, func(t *testing.T) {
			limit := "default"
			if tc.rekey == "client" {
				limit = "64K"
			} else {
				t.Cleanup(sshserver.SetRekeyBytes(64 << 10))
			}
			s, addrs := forwardServer(t, &sshserver.Config{})
			key, _ := rt.WriteKey(t)
			echo := echoServer(t)
			conn := s.runClient(t, openSSH(bin, key, s, "-o", "ExitOnForwardFailure=yes", "-o", "RekeyLimit="+limit,
				"-c", tc.cipher, "-N", "-R", "0:"+echo))
			addr := <-addrs
			echoThrough(t, conn, addr, 4242, 2<<20)
			if n := sshserver.KexCount(conn); n < 10 {
				t.Fatalf("%d key exchanges for 4 MiB at 64 KiB each", n)
			} else {
				t.Logf("%d key exchanges", n)
			}
			if !strings.HasPrefix(string(conn.ClientVersion()), "SSH-2.0-OpenSSH") {
				t.Errorf("client version %q", conn.ClientVersion())
			}
		})
	}
}

// Authentication: a refused key fails to connect; a partial answer leads
// to keyboard-interactive, whose failure counts as a try and whose success
// lets the client in with the key it signed with.
func TestAuthentication(t *testing.T) {
	signer := newSigner(t)
	t.Run("refused", func(t *testing.T) {
		s := startServer(t, &sshserver.Config{PublicKey: func(net.Addr, string, ssh.PublicKey) error {
			return errors.New("not on the list")
		}}, sshserver.Handlers{})
		_, err := s.dial(t, &ssh.ClientConfig{Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}})
		if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("keyboard-interactive", func(t *testing.T) {
		// Two rounds within one attempt, as the relay's sign-in does: the
		// second question follows a wrong first answer.
		s := startServer(t, &sshserver.Config{PublicKey: func(_ net.Addr, _ string, key ssh.PublicKey) error {
			return &sshserver.Partial{KeyboardInteractive: func(ch ssh.KeyboardInteractiveChallenge) error {
				for _, q := range []string{"code? ", "again? "} {
					answers, err := ch("Please sign in", "https://example.test/sign_in", []string{q}, []bool{true})
					if err != nil {
						return err
					}
					if answers[0] == "42" {
						return nil
					}
				}
				return errors.New("wrong code")
			}}
		}}, sshserver.Handlers{})
		for _, tc := range []struct {
			answers []string
			ok      bool
		}{{[]string{"41", "42"}, true}, {[]string{"41", "40"}, false}} {
			var asked []string
			ki := ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
				asked = append(asked, name+" | "+instruction+" | "+strings.Join(questions, ","))
				return []string{tc.answers[len(asked)-1]}, nil
			})
			client, err := s.dial(t, &ssh.ClientConfig{User: "dev", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer), ki}})
			if want := []string{"Please sign in | https://example.test/sign_in | code? ", "Please sign in | https://example.test/sign_in | again? "}; !slices.Equal(asked, want) {
				t.Fatalf("asked %q", asked)
			}
			if !tc.ok {
				if err == nil {
					t.Fatal("wrong answers let the client in")
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			conn := <-s.conn
			if got := ssh.FingerprintSHA256(conn.PublicKey()); got != ssh.FingerprintSHA256(signer.PublicKey()) || conn.User() != "dev" {
				t.Fatalf("authenticated as %s %q", got, conn.User())
			}
		}
	})
	t.Run("too many tries", func(t *testing.T) {
		s := startServer(t, &sshserver.Config{MaxAuthTries: 2, PublicKey: func(net.Addr, string, ssh.PublicKey) error {
			return errors.New("no")
		}}, sshserver.Handlers{})
		signers := []ssh.Signer{newSigner(t), newSigner(t), newSigner(t)}
		_, err := s.dial(t, &ssh.ClientConfig{Auth: []ssh.AuthMethod{ssh.PublicKeys(signers...)}})
		if err == nil {
			t.Fatal("connected")
		}
		rt.WaitFor(t, func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.errs) == 1 && errors.Is(s.errs[0], sshserver.ErrNoAuth)
		}, "the server to give up with ErrNoAuth")
	})
}

// Garbage instead of an SSH client gets an error, not a hang or a panic.
func TestGarbageClient(t *testing.T) {
	s := startServer(t, &sshserver.Config{}, sshserver.Handlers{})
	c, err := net.Dial("tcp", s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SSH-2.0-") {
		t.Fatalf("greeting %q %v", line, err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	rt.WaitFor(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.errs) == 1
	}, "the handshake to fail")
}

// OpenSSH signs in with RSA (rsa-sha2-512, announced in server-sig-algs)
// and ECDSA keys as well as Ed25519.
func TestOpenSSHKeyTypes(t *testing.T) {
	bin := rt.RequireOpenSSH(t)
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("ssh-keygen not installed")
	}
	for _, kt := range []struct{ flag, want string }{{"rsa", ssh.KeyAlgoRSA}, {"ecdsa", ssh.KeyAlgoECDSA256}} {
		t.Run(kt.flag, func(t *testing.T) {
			key := t.TempDir() + "/id"
			if out, err := exec.Command(keygen, "-q", "-t", kt.flag, "-N", "", "-f", key).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen: %v %s", err, out)
			}
			s, _ := forwardServer(t, &sshserver.Config{})
			conn := s.runClient(t, openSSH(bin, key, s, "-N"))
			if got := conn.PublicKey().Type(); got != kt.want {
				t.Fatalf("authenticated with a %s key", got)
			}
		})
	}
}

// requireTool returns a peer's binary; CI installs it (.ci/run), so a
// missing one fails there and skips only on a developer machine.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// PuTTY's plink: strict key exchange, its cipher choice, an Ed25519 key
// converted by puttygen, the host key pinned by fingerprint, and a static
// remote forward carrying 256 KiB each way.
func TestPuTTYClient(t *testing.T) {
	plink := requireTool(t, "plink")
	puttygen := requireTool(t, "puttygen")
	key, _ := rt.WriteKey(t)
	ppk := key + ".ppk"
	if out, err := exec.Command(puttygen, key, "-O", "private", "-o", ppk).CombinedOutput(); err != nil {
		t.Fatalf("puttygen: %v %s", err, out)
	}
	s, addrs := forwardServer(t, &sshserver.Config{})
	echo := echoServer(t)
	_, port, _ := net.SplitHostPort(s.ln.Addr().String())
	conn := s.runClient(t, exec.Command(plink, "-batch", "-ssh", "-P", port, "-i", ppk,
		"-hostkey", ssh.FingerprintSHA256(s.cfg.HostKey.PublicKey()), "-N", "-R", "myapp:80:"+echo, "dev@127.0.0.1"))
	if !strings.HasPrefix(string(conn.ClientVersion()), "SSH-2.0-PuTTY") {
		t.Errorf("client version %q", conn.ClientVersion())
	}
	var addr string
	select {
	case addr = <-addrs:
	case <-time.After(20 * time.Second):
		t.Fatal("plink asked for no forward")
	}
	if addr != "myapp" {
		t.Fatalf("forward for %q", addr)
	}
	echoThrough(t, conn, addr, 80, 256<<10)
}

// openSSH is the stock OpenSSH client against s with key, no config, agent
// or known hosts, and args before the host.
func openSSH(bin, key string, s *server, args ...string) *exec.Cmd {
	_, port, _ := net.SplitHostPort(s.ln.Addr().String())
	base := []string{"-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-p", port}
	return exec.Command(bin, append(append(base, args...), "127.0.0.1")...)
}

// runClient starts a client process (stopped when the test ends) and
// returns the connection it makes to s.
func (s *server) runClient(t *testing.T, cmd *exec.Cmd) *sshserver.Conn {
	t.Helper()
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	select {
	case conn := <-s.conn:
		return conn
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not connect: %s", cmd.Path, stderr)
		return nil
	}
}

// xcryptoEcho connects an x/crypto client with cc to a forwardServer and
// has it echo the first forwarded connection; it returns the server side
// and the address the client asked to forward.
func xcryptoEcho(t testing.TB, cc *ssh.ClientConfig) (*sshserver.Conn, string) {
	t.Helper()
	s, addrs := forwardServer(t, &sshserver.Config{})
	client, err := s.dial(t, cc)
	if err != nil {
		t.Fatal(err)
	}
	conn := <-s.conn
	ln, err := client.Listen("tcp", "localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.Copy(c, c)
			_ = c.Close()
		}
	}()
	return conn, <-addrs
}
