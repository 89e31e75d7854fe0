package relay

import (
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	relaystore "github.com/pomdev/pomdev/internal/relay/store"
	"golang.org/x/crypto/ssh"
)

// State directory layout.
const (
	hostKeyFile      = "ssh_host_ed25519_key" // secrets: relaystore.SecretFiles
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

// loadOrCreateHostKey reads the relay's ed25519 host key, creating it
// (0600) the first time: a file of the state directory, or the store's
// secret that every relay of a PostgreSQL store shares (relaystore.Secret).
func loadOrCreateHostKey(dir string, db *sql.DB) (signer ssh.Signer, created bool, err error) {
	data, created, err := relaystore.Secret(db, dir, hostKeyFile, func() ([]byte, error) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		block, err := ssh.MarshalPrivateKey(priv, "pomdev relay host key")
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(block), nil
	})
	path := filepath.Join(dir, hostKeyFile)
	if err != nil {
		return nil, false, fmt.Errorf("host key %s: %w", path, err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, false, fmt.Errorf("host key %s: %w (move it away to generate a new one; clients will see a changed host key)", path, err)
	}
	return s, created, nil
}

// loadOrCreateToken reads the admin token that protects the sign-in page
// (a file, or the store's shared secret).
func loadOrCreateToken(dir string, db *sql.DB) (token string, created bool, err error) {
	data, created, err := relaystore.Secret(db, dir, adminTokenFile, func() ([]byte, error) {
		b := make([]byte, 20)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		return []byte(hex.EncodeToString(b) + "\n"), nil
	})
	if err != nil {
		return "", false, err
	}
	token = strings.TrimSpace(string(data))
	if len(token) < 16 {
		return "", false, fmt.Errorf("admin token %s: shorter than 16 characters (delete it to make a new one)", filepath.Join(dir, adminTokenFile))
	}
	return token, created, nil
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
