package tunnelcmd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
	"golang.org/x/crypto/ssh"
)

func keygen(t *testing.T, passphrase string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", path).CombinedOutput(); err != nil {
		t.Skipf("ssh-keygen: %v %s", err, out)
	}
	return path
}

// --identity held by ssh-agent: the agent signs, the private key file is
// not needed (it is removed before the test asks).
func TestIdentityFromAgent(t *testing.T) {
	agentBin, err := exec.LookPath("ssh-agent")
	if err != nil {
		t.Skip("ssh-agent not installed")
	}
	key := keygen(t, "")
	pubData, _ := os.ReadFile(key + ".pub")
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubData)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agent := exec.Command(agentBin, "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ssh-agent did not create its socket")
		}
		time.Sleep(10 * time.Millisecond)
	}
	add := exec.Command("ssh-add", key)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v %s", err, out)
	}
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	ios, _, _, _ := iostreams.Test()
	keys, err := signers(&Options{IO: ios, Identity: key, Getenv: func(k string) string {
		if k == "SSH_AUTH_SOCK" {
			return sock
		}
		return ""
	}})
	if err != nil || len(keys) != 1 || string(keys[0].PublicKey().Marshal()) != string(pub.Marshal()) {
		t.Fatalf("signers: %v %v", keys, err)
	}
}

// An encrypted key without a terminal: a clear usage error, not a prompt.
func TestEncryptedIdentityWithoutTTY(t *testing.T) {
	key := keygen(t, "secret passphrase")
	ios, _, _, _ := iostreams.Test()
	_, err := signers(&Options{IO: ios, Identity: key, Getenv: func(string) string { return "" }})
	if exitcode.Code(err) != exitcode.Usage || !strings.Contains(err.Error(), "encrypted") || !strings.Contains(err.Error(), "ssh-agent") {
		t.Fatalf("got %v", err)
	}
}
