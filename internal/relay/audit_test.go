package relay_test

import (
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"golang.org/x/crypto/ssh"
)

// auditFinding is one [warn] or [fail] line of ssh-audit's batch output.
type auditFinding struct{ section, name, level, reason string }

var auditLine = regexp.MustCompile(`^\((\w+)\) (\S+)\s+-- \[(warn|fail)\] (.*)$`)

// sshAudit runs ssh-audit against 127.0.0.1:port and returns its warnings
// and failures. It fails the test when ssh-audit saw no key exchange.
func sshAudit(t *testing.T, bin, port string) []auditFinding {
	t.Helper()
	out, _ := exec.Command(bin, "-b", "-n", "-p", port, "127.0.0.1").CombinedOutput()
	if !strings.Contains(string(out), "(kex) ") {
		t.Fatalf("ssh-audit read no key exchange:\n%s", out)
	}
	var found []auditFinding
	for _, l := range strings.Split(string(out), "\n") {
		if m := auditLine.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			found = append(found, auditFinding{m[1], m[2], m[3], m[4]})
		}
	}
	return found
}

// Debian 12's ssh-audit (2.5.0) predates these two names and calls them
// unknown; later versions rate both good (the post-quantum hybrid exchange
// of OpenSSH 9.9, and OpenSSH's strict key exchange marker against
// Terrapin).
var auditUnknownButGood = map[string]bool{
	"mlkem768x25519-sha256":        true,
	"kex-strict-s-v00@openssh.com": true,
}

// ssh-audit reports no weak algorithm on the relay's SSH server. As a
// control, the same ssh-audit run against golang.org/x/crypto/ssh's
// default server configuration does report weak ones (SHA-1 key exchange
// and MACs), which is why the relay narrows the lists.
func TestSSHAudit(t *testing.T) {
	bin := requireTool(t, "ssh-audit")
	h := rt.StartRelay(t, nil)
	for _, f := range sshAudit(t, bin, h.SSHPort()) {
		if f.reason == "unknown algorithm" && auditUnknownButGood[f.name] {
			continue
		}
		t.Errorf("ssh-audit: (%s) %s [%s] %s", f.section, f.name, f.level, f.reason)
	}

	t.Run("control: x/crypto defaults", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, hostKey := rt.WriteKey(t)
		cfg := &ssh.ServerConfig{NoClientAuth: true}
		cfg.AddHostKey(hostKey)
		go func() {
			for {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer nc.Close()
					if sc, chans, reqs, err := ssh.NewServerConn(nc, cfg); err == nil {
						go ssh.DiscardRequests(reqs)
						for nch := range chans {
							_ = nch.Reject(ssh.Prohibited, "no")
						}
						_ = sc.Close()
					}
				}()
			}
		}()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		weak := map[string]bool{}
		for _, f := range sshAudit(t, bin, port) {
			if f.reason != "unknown algorithm" {
				weak[f.name] = true
			}
		}
		for _, name := range []string{"diffie-hellman-group14-sha1", "hmac-sha1", "hmac-sha2-256"} {
			if !weak[name] {
				t.Errorf("ssh-audit did not flag %s in x/crypto's defaults (flagged: %v)", name, weak)
			}
		}
	})
}
