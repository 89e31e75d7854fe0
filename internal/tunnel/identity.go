package tunnel

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// IdentityFile is pomdev's own key, in its config directory.
const IdentityFile = "id_ed25519"

// LoadOrCreateIdentity returns pomdev's own ed25519 key from dir (created
// 0700), generating it (0600) on first use. A stable key per user is what
// relays bind sign-ins and URLs to.
func LoadOrCreateIdentity(dir string) (signer ssh.Signer, path string, created bool, err error) {
	path = filepath.Join(dir, IdentityFile)
	data, err := os.ReadFile(path)
	if err == nil {
		s, err := ssh.ParsePrivateKey(data)
		if err != nil {
			return nil, path, false, fmt.Errorf("identity %s: %w (move it away to create a new key; relays will see a new key and URL)", path, err)
		}
		return s, path, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, path, false, fmt.Errorf("identity %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, path, false, fmt.Errorf("identity dir %s: %w", dir, err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, path, false, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "pomdev")
	if err != nil {
		return nil, path, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, path, false, fmt.Errorf("identity %s: %w", path, err)
	}
	if _, err := f.Write(pem.EncodeToMemory(block)); err != nil {
		f.Close()
		os.Remove(path)
		return nil, path, false, err
	}
	if err := f.Close(); err != nil {
		return nil, path, false, err
	}
	sshPub, _ := ssh.NewPublicKey(pub)
	_ = os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sshPub), 0o644)
	s, err := ssh.NewSignerFromKey(priv)
	return s, path, true, err
}

// LoadIdentity reads a private key file, asking passphrase() when it is
// encrypted (nil passphrase: an encrypted key is an error that says so).
func LoadIdentity(path string, passphrase func() ([]byte, error)) (ssh.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	s, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if passphrase == nil {
			return nil, fmt.Errorf("identity %s is encrypted and there is no terminal to ask for its passphrase; add it to ssh-agent or use an unencrypted key", path)
		}
		pw, perr := passphrase()
		if perr != nil {
			return nil, perr
		}
		s, err = ssh.ParsePrivateKeyWithPassphrase(data, pw)
	}
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	return s, nil
}
