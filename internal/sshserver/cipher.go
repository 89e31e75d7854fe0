package sshserver

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"

	"golang.org/x/crypto/chacha20"
	//lint:ignore SA1019 chacha20-poly1305@openssh.com is not the AEAD of RFC 8439: it keys Poly1305 per packet itself.
	"golang.org/x/crypto/poly1305"
)

// The ciphers offered, best first. Only AEAD ciphers: no MAC is negotiated
// with them, and every client worth supporting (OpenSSH since 6.5,
// golang.org/x/crypto/ssh, PuTTY) has at least one.
const (
	cipherChaCha    = "chacha20-poly1305@openssh.com"
	cipherAES128GCM = "aes128-gcm@openssh.com"
	cipherAES256GCM = "aes256-gcm@openssh.com"
)

var supportedCiphers = []string{cipherChaCha, cipherAES128GCM, cipherAES256GCM}

// maxPacket bounds the packet_length field of an incoming packet. RFC 4253
// asks for at least 35000; OpenSSH sends up to 256 KiB.
const maxPacket = 256 << 10

// tagSize is the authentication tag of both AEAD ciphers.
const tagSize = 16

var errMAC = errors.New("ssh: message authentication failed")

// packetCipher encrypts and authenticates packets in one direction.
type packetCipher interface {
	// blockSize is what padding rounds the encrypted part to.
	blockSize() int
	// length returns packet_length from the 4 bytes that carry it.
	length(seq uint32, hdr []byte) uint32
	// open authenticates and decrypts body (packet_length bytes and the
	// tag) in place, given the 4 length bytes as received.
	open(seq uint32, hdr, body []byte) ([]byte, error)
	// seal encrypts and authenticates pkt (the 4 length bytes, then
	// packet_length bytes) in place and appends the tag.
	seal(seq uint32, pkt []byte) []byte
}

// keyLen and ivLen are the key material a cipher takes from the exchange.
func keyLen(name string) (key, iv int) {
	switch name {
	case cipherChaCha:
		return 64, 0
	case cipherAES128GCM:
		return 16, 12
	case cipherAES256GCM:
		return 32, 12
	}
	return 0, 0
}

func newCipher(name string, key, iv []byte) (packetCipher, error) {
	switch name {
	case cipherChaCha:
		c := &chachaCipher{}
		// The first half keys the payload, the second the length field
		// (OpenSSH PROTOCOL.chacha20poly1305).
		copy(c.contentKey[:], key[:32])
		copy(c.lengthKey[:], key[32:64])
		return c, nil
	case cipherAES128GCM, cipherAES256GCM:
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		c := &gcmCipher{aead: aead}
		copy(c.iv[:], iv)
		return c, nil
	}
	return nil, errors.New("ssh: unsupported cipher " + name)
}

// gcmCipher is aes*-gcm@openssh.com (RFC 5647 with OpenSSH's names): the
// length is in clear as additional data, the nonce a fixed part and a
// 64-bit counter bumped per packet.
type gcmCipher struct {
	aead cipher.AEAD
	iv   [12]byte
}

func (c *gcmCipher) blockSize() int { return 16 }

func (c *gcmCipher) length(_ uint32, hdr []byte) uint32 { return binary.BigEndian.Uint32(hdr) }

func (c *gcmCipher) next() {
	binary.BigEndian.PutUint64(c.iv[4:], binary.BigEndian.Uint64(c.iv[4:])+1)
}

func (c *gcmCipher) open(_ uint32, hdr, body []byte) ([]byte, error) {
	plain, err := c.aead.Open(body[:0], c.iv[:], body, hdr)
	if err != nil {
		return nil, errMAC
	}
	c.next()
	return plain, nil
}

func (c *gcmCipher) seal(_ uint32, pkt []byte) []byte {
	out := c.aead.Seal(pkt[4:4], c.iv[:], pkt[4:], pkt[:4])
	c.next()
	return pkt[:4+len(out)]
}

// chachaCipher is chacha20-poly1305@openssh.com: one ChaCha20 key for the
// length field, one for the payload and the Poly1305 key, the sequence
// number as nonce, the tag over the encrypted length and payload.
type chachaCipher struct {
	lengthKey, contentKey [32]byte
}

func (c *chachaCipher) blockSize() int { return 8 }

func chachaNonce(seq uint32) []byte {
	var nonce [12]byte
	binary.BigEndian.PutUint32(nonce[8:], seq)
	return nonce[:]
}

func (c *chachaCipher) length(seq uint32, hdr []byte) uint32 {
	var l [4]byte
	s, _ := chacha20.NewUnauthenticatedCipher(c.lengthKey[:], chachaNonce(seq))
	s.XORKeyStream(l[:], hdr[:4])
	return binary.BigEndian.Uint32(l[:])
}

// payloadStream returns the payload cipher at block 1 and the Poly1305 key
// (block 0).
func (c *chachaCipher) payloadStream(seq uint32) (*chacha20.Cipher, [32]byte) {
	var polyKey [32]byte
	s, _ := chacha20.NewUnauthenticatedCipher(c.contentKey[:], chachaNonce(seq))
	s.XORKeyStream(polyKey[:], polyKey[:])
	s.SetCounter(1)
	return s, polyKey
}

func (c *chachaCipher) open(seq uint32, hdr, body []byte) ([]byte, error) {
	if len(body) < tagSize {
		return nil, errMAC
	}
	s, polyKey := c.payloadStream(seq)
	n := len(body) - tagSize
	h := poly1305.New(&polyKey)
	_, _ = h.Write(hdr[:4])
	_, _ = h.Write(body[:n])
	var tag [tagSize]byte
	if subtle.ConstantTimeCompare(h.Sum(tag[:0]), body[n:]) != 1 {
		return nil, errMAC
	}
	s.XORKeyStream(body[:n], body[:n])
	return body[:n], nil
}

func (c *chachaCipher) seal(seq uint32, pkt []byte) []byte {
	s, polyKey := c.payloadStream(seq)
	s.XORKeyStream(pkt[4:], pkt[4:])
	ls, _ := chacha20.NewUnauthenticatedCipher(c.lengthKey[:], chachaNonce(seq))
	ls.XORKeyStream(pkt[:4], pkt[:4])
	var tag [tagSize]byte
	poly1305.Sum(&tag, pkt, &polyKey)
	return append(pkt, tag[:]...)
}
