package relay

import (
	"bytes"
	"fmt"
	"github.com/pomdev/pomdev/internal/relay/front"
	"log/slog"
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
			ko, ok := r.keys.allowed(key)
			if !ok {
				r.log.Info("key refused", "fingerprint", fp, "user", meta.User(), "remote", meta.RemoteAddr().String())
				return nil, fmt.Errorf("key %s is not in %s", fp, r.cfg.AuthorizedKeys)
			}
			if ko != nil {
				var ip net.IP
				if ta, ok := meta.RemoteAddr().(*net.TCPAddr); ok {
					ip = ta.IP
				}
				if !ko.allowsFrom(ip) {
					r.log.Info("key refused: from= does not match", "fingerprint", fp, "remote", meta.RemoteAddr().String())
					return nil, fmt.Errorf("key %s may not connect from %s", fp, meta.RemoteAddr())
				}
				if !ko.expires.IsZero() && !r.cfg.Now().Before(ko.expires) {
					r.log.Info("key refused: expired (expiry-time)", "fingerprint", fp)
					return nil, fmt.Errorf("key %s expired", fp)
				}
				perms := permsFor(key)
				perms.ExtraData = map[any]any{keyOptionsKey{}: ko}
				if ko.noTouch {
					perms.Extensions["no-touch-required"] = ""
				}
				return perms, nil
			}
		case AuthSignin:
			if !r.signin.signedIn(fp) {
				// x/crypto offers keyboard-interactive only after the
				// client signed with this key.
				return nil, &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{
					KeyboardInteractiveCallback: func(meta ssh.ConnMetadata, ch ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
						// Sign-in waits for a person: the connection
						// gives back its handshake slot and is counted
						// among the sign-ins waiting instead.
						src := front.HostOf(meta.RemoteAddr().String())
						hc, _ := nc.(*handshakeConn)
						if hc != nil {
							hc.release()
						}
						if !r.signin.slots.enter(src, fp) {
							r.log.Info("sign-in refused: too many waiting", "fingerprint", fp, "remote", meta.RemoteAddr().String())
							return nil, errSigninsFull
						}
						defer r.signin.slots.leave(src, fp)
						_ = nc.SetDeadline(time.Now().Add(r.cfg.HandshakeTimeout + r.cfg.CodeTTL))
						if err := r.signin.run(r, fp, meta.RemoteAddr().String(), ch, goneOf(hc)); err != nil {
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

// goneOf is closed when the client of hc leaves (never when nc is not a
// handshakeConn).
func goneOf(hc *handshakeConn) <-chan struct{} {
	if hc == nil {
		return nil
	}
	return hc.gone
}

// authorizedKeys is an OpenSSH authorized_keys file, reloaded when its
// modification time or size changes. Each line's options are honoured or,
// if the relay cannot honour one, the line is refused with a message that
// names the file and line (logged at each load).
type authorizedKeys struct {
	path string
	log  *slog.Logger

	mu       sync.Mutex
	mtime    time.Time
	size     int64
	keys     map[string]*keyOptions // marshalled key -> its options (nil: none)
	problems []string
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
	keys := map[string]*keyOptions{}
	var problems []string
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		key, _, opts, _, err := ssh.ParseAuthorizedKey(line)
		if err == nil {
			var ko *keyOptions
			if ko, err = parseKeyOptions(opts); err == nil {
				if _, dup := keys[string(key.Marshal())]; !dup {
					keys[string(key.Marshal())] = ko
				}
				continue
			}
		}
		problems = append(problems, fmt.Sprintf("%s:%d: %v; this line's key is refused", a.path, i+1, err))
	}
	a.keys, a.mtime, a.size, a.problems = keys, st.ModTime(), st.Size(), problems
	for _, p := range problems {
		a.log.Warn(p)
	}
	return nil
}

// allowed reports whether key is listed, with its options.
func (a *authorizedKeys) allowed(key ssh.PublicKey) (*keyOptions, bool) {
	_ = a.reload() // keep the last good set when the file is briefly missing
	a.mu.Lock()
	defer a.mu.Unlock()
	ko, ok := a.keys[string(key.Marshal())]
	return ko, ok
}
