package tunnel_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/event"

	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"github.com/pomdev/pomdev/internal/tunnel"
	"golang.org/x/crypto/ssh"
)

// startSSHD runs the stock OpenSSH server (Debian openssh-server) on a free
// loopback port with its own config, host key and authorized_keys, as a
// child process of the test.
func startSSHD(t *testing.T, client ssh.PublicKey) string {
	t.Helper()
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		sshd = "/usr/sbin/sshd"
	}
	if _, err := os.Stat(sshd); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("sshd (openssh-server) is required in CI")
		}
		t.Skip("sshd not installed")
	}
	if os.Geteuid() == 0 {
		_ = os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	}
	dir := t.TempDir()
	hostKey := filepath.Join(dir, "host_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	ak := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(ak, ssh.MarshalAuthorizedKey(client), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	conf := filepath.Join(dir, "sshd_config")
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`Port %s
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile none
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AllowTcpForwarding yes
GatewayPorts no
LogLevel ERROR
`, port, hostKey, ak)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sshd, "-D", "-e", "-f", conf)
	// sshd writes its log while the test waits: a file, read after it.
	logPath := filepath.Join(dir, "sshd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("sshd does not listen on %s: %s", addr, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return addr
}

// Against a plain OpenSSH server: a remote forward on the server's
// loopback, channels without SOCKS going straight to the target, the URL
// being the allocated port.
func TestPlainOpenSSHServer(t *testing.T) {
	o := rt.NewOrigin(t, "sshd")
	_, signer := rt.WriteKey(t)
	addr := startSSHD(t, signer.PublicKey())
	u, err := user()
	if err != nil {
		t.Fatal(err)
	}
	h := &rt.Harness{SSHAddr: addr}
	r := start(t, h, signer, filepath.Join(t.TempDir(), "kh"), func(c *tunnel.Config) {
		c.Targets = []string{o.HostPort()}
		c.User = u
	})
	url := r.wait(t, event.TunnelReady).URL
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("url %q", url)
	}
	resp, err := httpGet(url + "/through-sshd")
	if err != nil {
		t.Fatal(err)
	}
	m := rt.Decode(t, resp)
	if m["origin"] != "sshd" || m["path"] != "/through-sshd" || m["host"] != o.HostPort() {
		t.Fatalf("origin saw %v", m)
	}
	// sshd says nothing of where the request came to: the tunnel tells the
	// app its URL (widget documents point at it).
	if m["xfh"] != strings.TrimPrefix(url, "http://") || m["xfp"] != "http" {
		t.Fatalf("the app was not told the tunnel's URL: %v", m)
	}
}
