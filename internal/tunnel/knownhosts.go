package tunnel

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// KnownHostsFile is pomdev's own known_hosts (OpenSSH format) in its config
// directory.
const KnownHostsFile = "known_hosts"

// HostKeyChangedError is a relay presenting a key other than the one
// remembered for it.
type HostKeyChangedError struct {
	Host     string
	Old, New string // SHA256 fingerprints
	File     string
}

func (e *HostKeyChangedError) Error() string {
	return fmt.Sprintf("relay %s: host key changed (was %s, now %s); this may be an attack, or the relay was reinstalled",
		e.Host, e.Old, e.New)
}

// trustOnFirstUse returns a HostKeyCallback that accepts and records an
// unknown host's key (calling onNew with its fingerprint), accepts a known
// one, and refuses a changed one with *HostKeyChangedError.
func trustOnFirstUse(file string, onNew func(host, fingerprint string)) (ssh.HostKeyCallback, error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, err
	}
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			return nil, err
		}
	}
	var mu sync.Mutex
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		mu.Lock()
		defer mu.Unlock()
		check, err := knownhosts.New(file)
		if err != nil {
			return fmt.Errorf("known hosts %s: %w", file, err)
		}
		err = check(hostname, remote, key)
		var ke *knownhosts.KeyError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ke) && len(ke.Want) > 0:
			return &HostKeyChangedError{Host: hostname, Old: ssh.FingerprintSHA256(ke.Want[0].Key), New: ssh.FingerprintSHA256(key), File: file}
		case errors.As(err, &ke):
			line := knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key)
			f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := f.WriteString(line + "\n"); err != nil {
				return err
			}
			if onNew != nil {
				onNew(hostname, ssh.FingerprintSHA256(key))
			}
			return nil
		default:
			return err
		}
	}, nil
}

// ForgetHost removes every line for host (any port) from a known_hosts
// file and reports how many went.
func ForgetHost(file, host string) (int, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var out bytes.Buffer
	removed := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 2 && !strings.HasPrefix(fields[0], "#") && matchesHost(fields[0], host) {
			removed++
			continue
		}
		out.WriteString(line + "\n")
	}
	if removed == 0 {
		return 0, nil
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, out.Bytes(), 0o600); err != nil {
		return 0, err
	}
	return removed, os.Rename(tmp, file)
}

func matchesHost(patterns, host string) bool {
	for _, p := range strings.Split(patterns, ",") {
		h := p
		if strings.HasPrefix(p, "[") {
			if i := strings.Index(p, "]"); i > 0 {
				h = p[1:i]
			}
		}
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}
