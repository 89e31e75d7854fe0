package relay

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/pomdev/pomdev/internal/sshserver"
	"golang.org/x/crypto/ssh"
)

func (r *Relay) newSSHConfig() *sshserver.Config {
	return &sshserver.Config{
		HostKey: r.hostKey,
		Version: "SSH-2.0-pomdev-relay",
		PublicKey: func(remote net.Addr, user string, key ssh.PublicKey) error {
			fp := ssh.FingerprintSHA256(key)
			switch r.cfg.Auth {
			case AuthKeys:
				if !r.keys.allowed(key) {
					r.log.Info("key refused", "fingerprint", fp, "user", user, "remote", remote.String())
					return fmt.Errorf("key %s is not in %s", fp, r.cfg.AuthorizedKeys)
				}
			case AuthSignin:
				if !r.signin.signedIn(fp) {
					// Sign-in waits for a person; the per-connection
					// handshake deadline allows for it.
					return &sshserver.Partial{KeyboardInteractive: func(ch ssh.KeyboardInteractiveChallenge) error {
						return r.signin.run(r, fp, ch)
					}}
				}
			}
			return nil
		},
		MaxAuthTries: 6,
	}
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
