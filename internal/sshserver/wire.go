package sshserver

import (
	"encoding/binary"
	"strings"
)

// Message numbers (RFC 4250 §4.1, RFC 8308, RFC 4256).
const (
	msgDisconnect     = 1
	msgIgnore         = 2
	msgUnimplemented  = 3
	msgDebug          = 4
	msgServiceRequest = 5
	msgServiceAccept  = 6
	msgExtInfo        = 7
	msgKexInit        = 20
	msgNewKeys        = 21
	msgKexECDHInit    = 30
	msgKexECDHReply   = 31

	msgUserAuthRequest  = 50
	msgUserAuthFailure  = 51
	msgUserAuthSuccess  = 52
	msgUserAuthPKOK     = 60 // publickey method
	msgUserAuthInfoReq  = 60 // keyboard-interactive method
	msgUserAuthInfoResp = 61

	msgGlobalRequest  = 80
	msgRequestSuccess = 81
	msgRequestFailure = 82

	msgChannelOpen         = 90
	msgChannelOpenConfirm  = 91
	msgChannelOpenFailure  = 92
	msgChannelWindowAdjust = 93
	msgChannelData         = 94
	msgChannelExtendedData = 95
	msgChannelEOF          = 96
	msgChannelClose        = 97
	msgChannelRequest      = 98
	msgChannelSuccess      = 99
	msgChannelFailure      = 100
)

// Disconnect reason codes (RFC 4250 §4.2.2).
const (
	disconnectProtocolError       = 2
	disconnectKeyExchangeFailed   = 3
	disconnectServiceNotAvailable = 7
	disconnectNoMoreAuthMethods   = 14
)

// parser reads SSH wire types from a message. The first malformed read
// marks it bad; later reads return zero values, so a caller checks ok()
// once at the end.
type parser struct {
	b   []byte
	bad bool
}

func (p *parser) byte() byte {
	if len(p.b) < 1 {
		p.bad = true
		return 0
	}
	v := p.b[0]
	p.b = p.b[1:]
	return v
}

func (p *parser) bool() bool { return p.byte() != 0 }

func (p *parser) uint32() uint32 {
	if len(p.b) < 4 {
		p.bad = true
		p.b = nil
		return 0
	}
	v := binary.BigEndian.Uint32(p.b)
	p.b = p.b[4:]
	return v
}

// bytes reads a string field. The result aliases the message.
func (p *parser) bytes() []byte {
	n := p.uint32()
	if p.bad || uint64(n) > uint64(len(p.b)) {
		p.bad = true
		p.b = nil
		return nil
	}
	v := p.b[:n:n]
	p.b = p.b[n:]
	return v
}

func (p *parser) string() string { return string(p.bytes()) }

func (p *parser) nameList() []string {
	s := p.string()
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// rest returns what is left unread.
func (p *parser) rest() []byte {
	v := p.b
	p.b = nil
	return v
}

func (p *parser) ok() bool { return !p.bad }

// done reports whether the message was well formed and fully read.
func (p *parser) done() bool { return !p.bad && len(p.b) == 0 }

func appendUint32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendString[S ~string | ~[]byte](b []byte, s S) []byte {
	b = appendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// appendMpint appends an unsigned big-endian integer as an mpint.
func appendMpint(b []byte, v []byte) []byte {
	for len(v) > 0 && v[0] == 0 {
		v = v[1:]
	}
	if len(v) > 0 && v[0]&0x80 != 0 {
		b = appendUint32(b, uint32(len(v)+1))
		b = append(b, 0)
		return append(b, v...)
	}
	return appendString(b, v)
}
