package store

import (
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SecretFiles are the relay's secrets (its SSH host key, admin token and
// OAuth keys): files in the state directory beside relay.db; rows of
// table secrets, by the same names, on a PostgreSQL store, so that every
// relay of the store has the same host key and signs and seals with the
// same keys (a token one issues passes another's gate).
var SecretFiles = []string{"ssh_host_ed25519_key", "admin_token", "oauth_signing_key.pem", "oauth_id_token_key.pem", "oauth_token_key"}

// maxSecret bounds a secret read from a file or the store.
const maxSecret = 64 << 10

// Secret is the relay secret name, created with gen the first time. On
// relay.db (db nil or SQLite) it is the file dir/name, written 0600. On a
// PostgreSQL store it is the store's row: the first relay to need it puts
// in its own file's bytes when it has the file (a relay moving onto the
// store keeps its keys; pomdev relay store import does this for all of
// them), else gen's; relays racing to do so all get the row that won.
// created reports that gen's value is the one kept. The caller checks
// that the bytes are what it expects.
func Secret(db *sql.DB, dir, name string, gen func() ([]byte, error)) (data []byte, created bool, err error) {
	path := filepath.Join(dir, name)
	if db == nil || EngineOf(db) == SQLite {
		return fileSecret(path, gen)
	}
	if data, ok, err := storedSecret(db, name); err != nil || ok {
		return data, false, err
	}
	own, err := readSecretFile(path)
	generated := false
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if own, err = gen(); err != nil {
			return nil, false, err
		}
		generated = true
	case err != nil:
		return nil, false, err
	}
	if _, err := db.Exec(`INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		name, base64.StdEncoding.EncodeToString(own)); err != nil {
		return nil, false, fmt.Errorf("secret %s: %w", name, err)
	}
	data, ok, err := storedSecret(db, name)
	if err == nil && !ok {
		err = fmt.Errorf("secret %s: not in the store after it was put there", name)
	}
	return data, generated && err == nil && string(data) == string(own), err
}

func storedSecret(db *sql.DB, name string) ([]byte, bool, error) {
	var v string
	err := db.QueryRow(`SELECT value FROM secrets WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("secret %s: %w", name, err)
	}
	data, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(data) > maxSecret {
		return nil, false, fmt.Errorf("secret %s in the store is not one this pomdev wrote (delete its row to make a new one)", name)
	}
	return data, true, nil
}

func readSecretFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxSecret {
		return nil, fmt.Errorf("%s: larger than a secret (%d bytes)", path, st.Size())
	}
	return os.ReadFile(path)
}

// fileSecret reads path, creating it with gen when missing; a relay
// creating it at the same moment wins and its bytes are read.
func fileSecret(path string, gen func() ([]byte, error)) ([]byte, bool, error) {
	data, err := readSecretFile(path)
	if err == nil {
		return data, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if data, err = gen(); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		data, err := readSecretFile(path)
		return data, false, err
	}
	if err != nil {
		return nil, false, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return nil, false, err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, false, err
	}
	return data, true, nil
}

// copySecrets puts dir's secret files into the store's table, within tx
// (pomdev relay store import).
func copySecrets(tx *sql.Tx, dir string) (int, error) {
	n := 0
	for _, name := range SecretFiles {
		data, err := readSecretFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return n, err
		}
		if _, err := tx.Exec(`INSERT INTO secrets (name, value) VALUES ($1, $2)`, name, base64.StdEncoding.EncodeToString(data)); err != nil {
			return n, fmt.Errorf("secret %s: %w", name, err)
		}
		n++
	}
	return n, nil
}
