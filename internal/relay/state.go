package relay

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// State directory layout.
const (
	hostKeyFile      = "ssh_host_ed25519_key"
	adminTokenFile   = "admin_token"
	sessionsFile     = "sessions.json" // before relay.db; migrated
	legacyRoutesFile = "routes.json"   // before routes.jsonl; migrated
)

func ensureStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state dir %s: %w", dir, err)
	}
	return nil
}

// loadOrCreateHostKey reads the relay's ed25519 host key, creating it (0600)
// on first start. created reports whether it was new.
func loadOrCreateHostKey(dir string) (signer ssh.Signer, created bool, err error) {
	path := filepath.Join(dir, hostKeyFile)
	data, err := os.ReadFile(path)
	if err == nil {
		s, err := ssh.ParsePrivateKey(data)
		if err != nil {
			return nil, false, fmt.Errorf("host key %s: %w (move it away to generate a new one; clients will see a changed host key)", path, err)
		}
		return s, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("host key %s: %w", path, err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "pomdev relay host key")
	if err != nil {
		return nil, false, err
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, false, fmt.Errorf("host key %s: %w", path, err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	return s, true, err
}

// loadOrCreateToken reads the admin token that protects the sign-in page.
func loadOrCreateToken(dir string) (token string, created bool, err error) {
	path := filepath.Join(dir, adminTokenFile)
	data, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(data))) >= 16 {
		return strings.TrimSpace(string(data)), false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", false, err
	}
	token = hex.EncodeToString(b)
	return token, true, writeFileAtomic(path, []byte(token+"\n"), 0o600)
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w (delete it to start afresh)", path, err)
	}
	return nil
}

// writeFileAtomic writes through a temporary file and a rename, so a crash
// never leaves a half-written state file.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
