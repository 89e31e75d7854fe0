// Package sshserver is the SSH server side of pomdev's relay: the
// transport (curve25519-sha256 key exchange with strict-kex, Ed25519 host
// keys, chacha20-poly1305 and AES-GCM), public-key and keyboard-interactive
// authentication, and the connection protocol a tunnel relay needs
// (global requests, sessions, server-opened channels).
//
// It exists for memory: golang.org/x/crypto/ssh runs three goroutines and
// keeps 8 KiB of bufio buffers per connection, so an idle tunnel cost the
// relay about 40 KiB. Here one goroutine per connection reads and
// dispatches every packet, read buffers are pooled and held only while
// bytes are waiting, and write buffers are pooled too. Keys, signatures
// and the wire format of keys come from golang.org/x/crypto/ssh; the peers
// it is tested against are the OpenSSH client and x/crypto's client.
package sshserver

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"golang.org/x/crypto/ssh"
)

// Config configures the server side of connections.
type Config struct {
	// HostKey signs key exchanges; Ed25519 or ECDSA (RSA host keys are not
	// supported).
	HostKey ssh.Signer
	// Version is the identification string, "SSH-2.0-..." (default
	// "SSH-2.0-pomdev").
	Version string
	// PublicKey decides about a client key whose signature checked out (and,
	// to answer a query, about one offered without a signature). It returns
	// nil to accept, a *Partial to ask for keyboard-interactive next, or an
	// error to refuse. It is called once per key and connection.
	PublicKey func(remote net.Addr, user string, key ssh.PublicKey) error
	// MaxAuthTries ends the connection after this many failed attempts
	// (default 6).
	MaxAuthTries int
	// Rand is the source of randomness (default crypto/rand).
	Rand io.Reader
}

// Partial is the answer of Config.PublicKey that accepts the key for now
// and continues with keyboard-interactive: KeyboardInteractive runs the
// challenge and returns nil to let the client in.
type Partial struct {
	KeyboardInteractive func(challenge ssh.KeyboardInteractiveChallenge) error
}

func (*Partial) Error() string { return "ssh: partial success" }

// ErrNoAuth is returned by Handshake when the client gave up or failed too
// often.
var ErrNoAuth = errors.New("ssh: no authentication method succeeded")

// Conn is an authenticated SSH connection. Serve runs its packet loop.
type Conn struct {
	nc            net.Conn
	cfg           *Config
	rand          io.Reader
	hostKeyAlgo   string
	clientVersion []byte
	serverVersion []byte
	user          string
	key           ssh.PublicKey

	// Read side: the loop goroutine only.
	rd      reader
	rseq    uint32
	rcipher packetCipher
	rbytes  uint64
	strict  bool
	extInfo bool

	// Write side.
	wmu        sync.Mutex
	wcond      *sync.Cond // on wmu: a key exchange ended
	kexing     bool       // our KEXINIT is out, NEWKEYS not yet
	ourKexInit []byte
	pending    [][]byte // control messages held during a key exchange
	wseq       uint32
	wcipher    packetCipher
	wbytes     uint64
	werr       error
	sessionID  []byte
	kexCount   int // key exchanges completed on the write side

	// Connection protocol.
	mu      sync.Mutex
	chans   map[uint32]*Channel
	nextID  uint32
	closed  bool
	gmu     sync.Mutex   // held while a global request is queued and sent, for order
	rmu     sync.Mutex   // guards replies and ended (the loop takes only this one)
	replies []chan reply // waiting for global request replies, in order
	ended   bool         // Serve returned
}

type reply struct {
	ok      bool
	payload []byte
}

// Handshake runs the version exchange, the key exchange and
// authentication on nc. The caller sets any deadline on nc and calls Serve
// on the result.
func Handshake(nc net.Conn, cfg *Config) (*Conn, error) {
	if cfg.HostKey == nil {
		return nil, errors.New("ssh: no host key")
	}
	algo := cfg.HostKey.PublicKey().Type()
	if algo == ssh.KeyAlgoRSA {
		return nil, errors.New("ssh: RSA host keys are not supported; use Ed25519")
	}
	c := &Conn{
		nc:          nc,
		cfg:         cfg,
		rand:        cfg.Rand,
		hostKeyAlgo: algo,
		rd:          reader{nc: nc},
		chans:       map[uint32]*Channel{},
	}
	c.wcond = sync.NewCond(&c.wmu)
	if c.rand == nil {
		c.rand = rand.Reader
	}
	version := cfg.Version
	if version == "" {
		version = "SSH-2.0-pomdev"
	}
	c.serverVersion = []byte(version)
	if _, err := nc.Write([]byte(version + "\r\n")); err != nil {
		return nil, err
	}
	line, err := c.rd.line()
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(line, []byte("SSH-2.0-")) && !bytes.HasPrefix(line, []byte("SSH-1.99-")) {
		return nil, fmt.Errorf("ssh: unsupported protocol version %q", line)
	}
	c.clientVersion = bytes.Clone(line)

	c.wmu.Lock()
	err = c.startKexLocked()
	c.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	for {
		p, err := c.readPacket()
		if err != nil {
			return nil, err
		}
		if p[0] == msgIgnore || p[0] == msgDebug {
			continue
		}
		if p[0] != msgKexInit {
			return nil, c.fail(disconnectProtocolError, fmt.Sprintf("expected KEXINIT, got message %d", p[0]))
		}
		if err := c.kex(p); err != nil {
			return nil, c.fail(disconnectKeyExchangeFailed, err.Error())
		}
		break
	}
	if err := c.authenticate(); err != nil {
		return nil, err
	}
	return c, nil
}

// fail sends a DISCONNECT with reason and message, closes the connection
// and returns an error saying the same.
func (c *Conn) fail(reason uint32, msg string) error {
	p := appendUint32([]byte{msgDisconnect}, reason)
	p = appendString(p, msg)
	p = appendString(p, "")
	c.wmu.Lock()
	_ = c.writeLocked(p)
	c.wmu.Unlock()
	_ = c.nc.Close()
	return errors.New(msg)
}

// readMsg returns the next message that is not transport housekeeping:
// IGNORE, DEBUG and UNIMPLEMENTED are dropped, a KEXINIT runs a key
// exchange, DISCONNECT ends the connection.
func (c *Conn) readMsg() ([]byte, error) {
	for {
		p, err := c.readPacket()
		if err != nil {
			return nil, err
		}
		switch p[0] {
		case msgIgnore, msgDebug, msgUnimplemented:
			continue
		case msgDisconnect:
			r := parser{b: p[1:]}
			r.uint32()
			return nil, fmt.Errorf("ssh: client disconnected: %s", r.string())
		case msgKexInit:
			if err := c.kex(p); err != nil {
				return nil, c.fail(disconnectKeyExchangeFailed, err.Error())
			}
			continue
		case msgNewKeys, msgKexECDHInit, msgKexECDHReply:
			return nil, c.fail(disconnectProtocolError, fmt.Sprintf("unexpected key exchange message %d", p[0]))
		}
		if c.rbytes > rekeyBytes {
			c.wmu.Lock()
			if !c.kexing {
				err = c.startKexLocked()
			}
			c.wmu.Unlock()
			if err != nil {
				return nil, err
			}
		}
		return p, nil
	}
}

// User is the user name the client authenticated with.
func (c *Conn) User() string { return c.user }

// PublicKey is the key the client authenticated with.
func (c *Conn) PublicKey() ssh.PublicKey { return c.key }

// ClientVersion is the client's identification string.
func (c *Conn) ClientVersion() []byte { return c.clientVersion }

// RemoteAddr is the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr is the server's address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }
