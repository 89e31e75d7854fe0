package relay

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// extFingerprint carries the authenticated key's fingerprint from the auth
// callbacks to the connection.
const extFingerprint = "pomdev-fingerprint"

func permsFor(key ssh.PublicKey) *ssh.Permissions {
	return &ssh.Permissions{Extensions: map[string]string{extFingerprint: ssh.FingerprintSHA256(key)}}
}

func (r *Relay) newSSHConfig() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		ServerVersion: "SSH-2.0-pomdev-relay",
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			fp := ssh.FingerprintSHA256(key)
			switch r.cfg.Auth {
			case AuthKeys:
				if !r.keys.allowed(key) {
					r.log.Info("key refused", "fingerprint", fp, "user", meta.User(), "remote", meta.RemoteAddr().String())
					return nil, fmt.Errorf("key %s is not in %s", fp, r.cfg.AuthorizedKeys)
				}
			case AuthSignin:
				if !r.signin.signedIn(fp) {
					return nil, &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{
						KeyboardInteractiveCallback: func(meta ssh.ConnMetadata, ch ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
							if err := r.signin.run(r, fp, ch); err != nil {
								return nil, err
							}
							return permsFor(key), nil
						},
					}}
				}
			}
			return permsFor(key), nil
		},
		// Sign-in waits for a person; the per-connection handshake
		// deadline is lifted while it does.
		MaxAuthTries: 6,
	}
	cfg.AddHostKey(r.hostKey)
	return cfg
}

// authorizedKeys is an OpenSSH authorized_keys file, reloaded when its
// modification time or size changes.
type authorizedKeys struct {
	path string

	mu    sync.Mutex
	mtime time.Time
	size  int64
	keys  map[string]bool // marshalled key -> allowed
}

func (a *authorizedKeys) reload() error {
	st, err := os.Stat(a.path)
	if err != nil {
		return fmt.Errorf("authorized keys: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.keys != nil && st.ModTime().Equal(a.mtime) && st.Size() == a.size {
		return nil
	}
	data, err := os.ReadFile(a.path)
	if err != nil {
		return fmt.Errorf("authorized keys: %w", err)
	}
	keys := map[string]bool{}
	rest := data
	for len(bytes.TrimSpace(rest)) > 0 {
		var key ssh.PublicKey
		key, _, _, rest, err = ssh.ParseAuthorizedKey(rest)
		if err != nil {
			// ParseAuthorizedKey skips comments and blank lines; an error
			// means no further valid key.
			break
		}
		keys[string(key.Marshal())] = true
	}
	a.keys, a.mtime, a.size = keys, st.ModTime(), st.Size()
	return nil
}

func (a *authorizedKeys) allowed(key ssh.PublicKey) bool {
	_ = a.reload() // keep the last good set when the file is briefly missing
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.keys[string(key.Marshal())]
}
