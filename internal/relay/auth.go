package relay

import (
	"bytes"
	"fmt"
	"net"
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

// Algorithms the relay offers: golang.org/x/crypto/ssh's implementations,
// limited to those ssh-audit reports no weakness in. Post-quantum hybrid
// key exchange first (OpenSSH 10 prefers it and warns without it); no
// NIST curves, no SHA-1 anywhere, MACs only in encrypt-then-MAC mode, and
// client signatures only with SHA-2 (no ssh-rsa, no ssh-dss).
var (
	// x/crypto adds curve25519-sha256@libssh.org after curve25519-sha256.
	kexAlgorithms    = []string{ssh.KeyExchangeMLKEM768X25519, ssh.KeyExchangeCurve25519}
	cipherAlgorithms = []string{ssh.CipherChaCha20Poly1305, ssh.CipherAES256GCM, ssh.CipherAES128GCM,
		ssh.CipherAES256CTR, ssh.CipherAES192CTR, ssh.CipherAES128CTR}
	macAlgorithms       = []string{ssh.HMACSHA256ETM, ssh.HMACSHA512ETM}
	publicKeyAlgorithms = []string{ssh.KeyAlgoED25519, ssh.KeyAlgoSKED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoSKECDSA256,
		ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
)

// newSSHConfig is the server configuration every connection starts from;
// serverConfig copies it per connection.
func (r *Relay) newSSHConfig() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		Config: ssh.Config{
			KeyExchanges:   kexAlgorithms,
			RekeyThreshold: r.cfg.RekeyThreshold,
			Ciphers:        cipherAlgorithms,
			MACs:           macAlgorithms,
		},
		PublicKeyAuthAlgorithms: publicKeyAlgorithms,
		ServerVersion:           "SSH-2.0-pomdev-relay",
		MaxAuthTries:            6,
	}
	cfg.AddHostKey(r.hostKey)
	return cfg
}

// serverConfig is the configuration for one connection: its callbacks
// know the connection, so sign-in can lift the handshake deadline once
// the client has proved it holds its key (and not before: a client that
// never signs waits out the short handshake deadline).
func (r *Relay) serverConfig(nc net.Conn) *ssh.ServerConfig {
	cfg := *r.sshConfig
	cfg.PublicKeyCallback = func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		fp := ssh.FingerprintSHA256(key)
		switch r.cfg.Auth {
		case AuthKeys:
			if !r.keys.allowed(key) {
				r.log.Info("key refused", "fingerprint", fp, "user", meta.User(), "remote", meta.RemoteAddr().String())
				return nil, fmt.Errorf("key %s is not in %s", fp, r.cfg.AuthorizedKeys)
			}
		case AuthSignin:
			if !r.signin.signedIn(fp) {
				// x/crypto offers keyboard-interactive only after the
				// client signed with this key.
				return nil, &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{
					KeyboardInteractiveCallback: func(meta ssh.ConnMetadata, ch ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
						// Sign-in waits for a person.
						_ = nc.SetDeadline(time.Now().Add(r.cfg.HandshakeTimeout + r.cfg.CodeTTL))
						if err := r.signin.run(r, fp, meta.RemoteAddr().String(), ch); err != nil {
							return nil, err
						}
						return permsFor(key), nil
					},
				}}
			}
		}
		return permsFor(key), nil
	}
	return &cfg
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
