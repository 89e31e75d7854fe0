package sshserver

import (
	"crypto/ecdh"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

const (
	kexCurve25519       = "curve25519-sha256"
	kexCurve25519LibSSH = "curve25519-sha256@libssh.org"
	kexStrictClient     = "kex-strict-c-v00@openssh.com"
	kexStrictServer     = "kex-strict-s-v00@openssh.com"
	extInfoClient       = "ext-info-c"
)

var supportedKex = []string{kexCurve25519, kexCurve25519LibSSH}

// serverSigAlgs is sent in EXT_INFO (RFC 8308) so clients sign with
// rsa-sha2-* rather than the SHA-1 ssh-rsa they no longer offer.
var serverSigAlgs = strings.Join([]string{
	ssh.KeyAlgoED25519, ssh.KeyAlgoSKED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoSKECDSA256,
	ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
}, ",")

// kexInit is the part of a KEXINIT message the negotiation needs.
type kexInit struct {
	kex, hostKey, cipherCS, cipherSC, compCS, compSC []string
	firstFollows                                     bool
}

func parseKexInit(p []byte) (kexInit, error) {
	r := parser{b: p}
	var k kexInit
	r.byte() // message number
	if len(r.b) < 16 {
		return k, errors.New("ssh: short KEXINIT")
	}
	r.b = r.b[16:] // cookie
	k.kex = r.nameList()
	k.hostKey = r.nameList()
	k.cipherCS = r.nameList()
	k.cipherSC = r.nameList()
	r.nameList() // MACs: not used with AEAD ciphers
	r.nameList()
	k.compCS = r.nameList()
	k.compSC = r.nameList()
	r.nameList() // languages
	r.nameList()
	k.firstFollows = r.bool()
	r.uint32()
	if !r.ok() {
		return k, errors.New("ssh: malformed KEXINIT")
	}
	return k, nil
}

// startKexLocked sends the server's KEXINIT and holds other packets back
// until the exchange is done. c.wmu is held.
func (c *Conn) startKexLocked() error {
	kex := supportedKex
	if c.sessionID == nil {
		kex = append(slices.Clip(kex), kexStrictServer)
	}
	p := []byte{msgKexInit}
	cookie := make([]byte, 16)
	if _, err := c.rand.Read(cookie); err != nil {
		return err
	}
	p = append(p, cookie...)
	ciphers := strings.Join(supportedCiphers, ",")
	for _, list := range []string{
		strings.Join(kex, ","), c.hostKeyAlgo,
		ciphers, ciphers,
		"hmac-sha2-256-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", // never used: AEAD only
		"none", "none", "", "",
	} {
		p = appendString(p, list)
	}
	p = appendBool(p, false)
	p = appendUint32(p, 0)
	// Set first: writing the KEXINIT must not start another exchange.
	c.kexing = true
	c.ourKexInit = p
	return c.writeLocked(p)
}

// firstCommon is the client's first choice that the server supports.
func firstCommon(client, server []string) (string, bool) {
	for _, a := range client {
		if slices.Contains(server, a) {
			return a, true
		}
	}
	return "", false
}

// kex runs a key exchange the client's KEXINIT (theirs) started or
// answered. It runs on the loop goroutine, which reads the exchange's
// packets itself.
func (c *Conn) kex(theirs []byte) error {
	initial := c.sessionID == nil
	theirs = slices.Clone(theirs) // the read buffer is reused
	c.wmu.Lock()
	var err error
	if !c.kexing {
		err = c.startKexLocked()
	}
	ours := c.ourKexInit
	c.wmu.Unlock()
	if err != nil {
		return err
	}

	ki, err := parseKexInit(theirs)
	if err != nil {
		return err
	}
	if initial {
		c.strict = slices.Contains(ki.kex, kexStrictClient)
		if c.strict && c.rseq != 1 {
			return errors.New("ssh: strict key exchange: KEXINIT was not the first packet")
		}
		c.extInfo = slices.Contains(ki.kex, extInfoClient)
	}
	kexAlgo, ok := firstCommon(ki.kex, supportedKex)
	if !ok {
		return fmt.Errorf("ssh: no common key exchange algorithm; client offered %v, server %v", ki.kex, supportedKex)
	}
	if !slices.Contains(ki.hostKey, c.hostKeyAlgo) {
		return fmt.Errorf("ssh: no common host key algorithm; client offered %v, server %v", ki.hostKey, c.hostKeyAlgo)
	}
	cipherCS, ok1 := firstCommon(ki.cipherCS, supportedCiphers)
	cipherSC, ok2 := firstCommon(ki.cipherSC, supportedCiphers)
	if !ok1 || !ok2 {
		return fmt.Errorf("ssh: no common cipher; client offered %v, server %v", ki.cipherCS, supportedCiphers)
	}
	if !slices.Contains(ki.compCS, "none") || !slices.Contains(ki.compSC, "none") {
		return errors.New("ssh: client requires compression")
	}
	// A guessed first exchange packet is dropped when the guess was wrong.
	skipGuess := ki.firstFollows && (ki.kex[0] != kexAlgo || ki.hostKey[0] != c.hostKeyAlgo)

	next := func(want byte) ([]byte, error) {
		for {
			p, err := c.readPacket()
			if err != nil {
				return nil, err
			}
			if !(initial && c.strict) && (p[0] == msgIgnore || p[0] == msgDebug) {
				continue
			}
			if skipGuess {
				skipGuess = false
				continue
			}
			if p[0] != want {
				return nil, fmt.Errorf("ssh: key exchange: got message %d, want %d", p[0], want)
			}
			return p, nil
		}
	}

	p, err := next(msgKexECDHInit)
	if err != nil {
		return err
	}
	r := parser{b: p[1:]}
	qc := r.bytes()
	if !r.done() {
		return errors.New("ssh: malformed KEX_ECDH_INIT")
	}
	peer, err := ecdh.X25519().NewPublicKey(qc)
	if err != nil {
		return fmt.Errorf("ssh: client key exchange value: %w", err)
	}
	priv, err := ecdh.X25519().GenerateKey(c.rand)
	if err != nil {
		return err
	}
	secret, err := priv.ECDH(peer)
	if err != nil {
		return fmt.Errorf("ssh: key exchange: %w", err)
	}
	qs := priv.PublicKey().Bytes()
	hostKey := c.cfg.HostKey.PublicKey().Marshal()

	K := appendMpint(nil, secret)
	h := sha256.New()
	for _, s := range [][]byte{c.clientVersion, c.serverVersion, theirs, ours, hostKey, qc, qs} {
		_, _ = h.Write(appendString(nil, s))
	}
	_, _ = h.Write(K)
	H := h.Sum(nil)
	sid := c.sessionID
	if initial {
		sid = H
	}
	sig, err := c.cfg.HostKey.Sign(c.rand, H)
	if err != nil {
		return err
	}
	reply := []byte{msgKexECDHReply}
	reply = appendString(reply, hostKey)
	reply = appendString(reply, qs)
	reply = appendString(reply, ssh.Marshal(sig))

	derive := func(letter byte, n int) []byte {
		h := sha256.New()
		_, _ = h.Write(K)
		_, _ = h.Write(H)
		_, _ = h.Write([]byte{letter})
		_, _ = h.Write(sid)
		out := h.Sum(nil)
		for len(out) < n {
			h := sha256.New()
			_, _ = h.Write(K)
			_, _ = h.Write(H)
			_, _ = h.Write(out)
			out = h.Sum(out)
		}
		return out[:n]
	}
	kl, il := keyLen(cipherSC)
	wc, err := newCipher(cipherSC, derive('D', kl), derive('B', il))
	if err != nil {
		return err
	}
	kl, il = keyLen(cipherCS)
	rc, err := newCipher(cipherCS, derive('C', kl), derive('A', il))
	if err != nil {
		return err
	}

	c.wmu.Lock()
	c.sessionID = sid
	err = c.writeLocked(reply)
	if err == nil {
		err = c.writeLocked([]byte{msgNewKeys})
	}
	if err == nil {
		c.wcipher, c.wbytes = wc, 0
		c.kexCount++
		if c.strict {
			c.wseq = 0
		}
		if initial && c.extInfo {
			ext := []byte{msgExtInfo}
			ext = appendUint32(ext, 1)
			ext = appendString(ext, "server-sig-algs")
			ext = appendString(ext, serverSigAlgs)
			err = c.writeLocked(ext)
		}
	}
	c.kexing, c.ourKexInit = false, nil
	for _, q := range c.pending {
		if err == nil {
			err = c.writeLocked(q)
		}
	}
	c.pending = nil
	c.wcond.Broadcast()
	c.wmu.Unlock()
	if err != nil {
		return err
	}

	if _, err := next(msgNewKeys); err != nil {
		return err
	}
	c.rcipher, c.rbytes = rc, 0
	if c.strict {
		c.rseq = 0
	}
	return nil
}
