// Package socks5 implements the small part of SOCKS version 5 (RFC 1928)
// that pomdev's two ends of a tunnel speak inside SSH channels: no
// authentication and the CONNECT command only. The relay is the client
// (Connect); the tunnel is the server (ReadRequest, then WriteReply).
package socks5

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
)

// Protocol constants.
const (
	Version       = 0x05
	MethodNoAuth  = 0x00
	MethodNone    = 0xff
	CmdConnect    = 0x01
	AtypIPv4      = 0x01
	AtypDomain    = 0x03
	AtypIPv6      = 0x04
	maxDomainSize = 255
)

// Reply codes (RFC 1928 §6).
const (
	ReplySucceeded          = 0x00
	ReplyGeneralFailure     = 0x01
	ReplyNotAllowed         = 0x02
	ReplyNetworkUnreachable = 0x03
	ReplyHostUnreachable    = 0x04
	ReplyConnectionRefused  = 0x05
	ReplyTTLExpired         = 0x06
	ReplyCmdNotSupported    = 0x07
	ReplyAtypNotSupported   = 0x08
)

// ReplyError is a non-success reply from the server.
type ReplyError struct{ Code byte }

func (e *ReplyError) Error() string { return "socks5: " + ReplyText(e.Code) }

// ReplyText names a reply code.
func ReplyText(code byte) string {
	switch code {
	case ReplySucceeded:
		return "succeeded"
	case ReplyGeneralFailure:
		return "general failure"
	case ReplyNotAllowed:
		return "connection not allowed by ruleset"
	case ReplyNetworkUnreachable:
		return "network unreachable"
	case ReplyHostUnreachable:
		return "host unreachable"
	case ReplyConnectionRefused:
		return "connection refused"
	case ReplyTTLExpired:
		return "TTL expired"
	case ReplyCmdNotSupported:
		return "command not supported"
	case ReplyAtypNotSupported:
		return "address type not supported"
	default:
		return "unknown reply " + strconv.Itoa(int(code))
	}
}

// ErrProtocol wraps malformed input from the peer.
var ErrProtocol = errors.New("socks5: protocol error")

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}

// Connect runs the client side: greeting with no-auth, CONNECT host:port,
// and the reply. It returns nil once the server reports success; the
// stream then carries the connection's bytes. The greeting and request are
// sent in one write so the handshake costs a single round trip on servers
// that read them in order.
func Connect(rw io.ReadWriter, host string, port int) error {
	req, err := appendConnect([]byte{Version, 1, MethodNoAuth}, host, port)
	if err != nil {
		return err
	}
	if _, err := rw.Write(req); err != nil {
		return err
	}
	var sel [2]byte
	if _, err := io.ReadFull(rw, sel[:]); err != nil {
		return fmt.Errorf("socks5: reading method selection: %w", err)
	}
	if sel[0] != Version {
		return protoErr("server answered version %d, not 5", sel[0])
	}
	if sel[1] != MethodNoAuth {
		return protoErr("server refused no-auth (method %#x)", sel[1])
	}
	var hdr [4]byte
	if _, err := io.ReadFull(rw, hdr[:]); err != nil {
		return fmt.Errorf("socks5: reading reply: %w", err)
	}
	if hdr[0] != Version {
		return protoErr("reply version %d, not 5", hdr[0])
	}
	if _, _, err := readAddr(rw, hdr[3]); err != nil {
		return err
	}
	if hdr[1] != ReplySucceeded {
		return &ReplyError{Code: hdr[1]}
	}
	return nil
}

func appendConnect(b []byte, host string, port int) ([]byte, error) {
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("socks5: port %d out of range", port)
	}
	b = append(b, Version, CmdConnect, 0)
	b = appendAddr(b, host)
	if b == nil {
		return nil, fmt.Errorf("socks5: host name %q too long", host)
	}
	return binary.BigEndian.AppendUint16(b, uint16(port)), nil
}

func appendAddr(b []byte, host string) []byte {
	if ip := net.ParseIP(host); ip != nil {
		if ip4 := ip.To4(); ip4 != nil {
			return append(append(b, AtypIPv4), ip4...)
		}
		return append(append(b, AtypIPv6), ip.To16()...)
	}
	if len(host) == 0 || len(host) > maxDomainSize {
		return nil
	}
	return append(append(b, AtypDomain, byte(len(host))), host...)
}

func readAddr(r io.Reader, atyp byte) (string, int, error) {
	var host string
	switch atyp {
	case AtypIPv4:
		var a [4]byte
		if _, err := io.ReadFull(r, a[:]); err != nil {
			return "", 0, err
		}
		host = net.IP(a[:]).String()
	case AtypIPv6:
		var a [16]byte
		if _, err := io.ReadFull(r, a[:]); err != nil {
			return "", 0, err
		}
		host = net.IP(a[:]).String()
	case AtypDomain:
		var n [1]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return "", 0, err
		}
		if n[0] == 0 {
			return "", 0, protoErr("empty domain name")
		}
		d := make([]byte, n[0])
		if _, err := io.ReadFull(r, d); err != nil {
			return "", 0, err
		}
		host = string(d)
	default:
		return "", 0, protoErr("address type %#x", atyp)
	}
	var p [2]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return "", 0, err
	}
	return host, int(binary.BigEndian.Uint16(p[:])), nil
}

// Request is a CONNECT request read by the server side.
type Request struct {
	Host string
	Port int
}

// Addr is host:port.
func (r Request) Addr() string { return net.JoinHostPort(r.Host, strconv.Itoa(r.Port)) }

// ReadRequest runs the server side up to the request: it reads the
// greeting, selects no-auth (or refuses when the client does not offer
// it), and reads the CONNECT request. The caller answers with WriteReply.
// Commands other than CONNECT and unknown address types are answered
// here and reported as errors.
func ReadRequest(rw io.ReadWriter) (Request, error) {
	var g [2]byte
	if _, err := io.ReadFull(rw, g[:]); err != nil {
		return Request{}, err
	}
	if g[0] != Version {
		return Request{}, protoErr("greeting version %d, not 5", g[0])
	}
	if g[1] == 0 {
		return Request{}, protoErr("no authentication methods offered")
	}
	methods := make([]byte, g[1])
	if _, err := io.ReadFull(rw, methods); err != nil {
		return Request{}, err
	}
	offered := false
	for _, m := range methods {
		offered = offered || m == MethodNoAuth
	}
	if !offered {
		_, _ = rw.Write([]byte{Version, MethodNone})
		return Request{}, protoErr("client does not offer no-auth")
	}
	if _, err := rw.Write([]byte{Version, MethodNoAuth}); err != nil {
		return Request{}, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(rw, hdr[:]); err != nil {
		return Request{}, err
	}
	if hdr[0] != Version {
		return Request{}, protoErr("request version %d, not 5", hdr[0])
	}
	if hdr[3] != AtypIPv4 && hdr[3] != AtypIPv6 && hdr[3] != AtypDomain {
		_ = WriteReply(rw, ReplyAtypNotSupported)
		return Request{}, protoErr("address type %#x", hdr[3])
	}
	host, port, err := readAddr(rw, hdr[3])
	if err != nil {
		return Request{}, err
	}
	if hdr[1] != CmdConnect {
		_ = WriteReply(rw, ReplyCmdNotSupported)
		return Request{}, protoErr("command %#x not supported", hdr[1])
	}
	return Request{Host: host, Port: port}, nil
}

// WriteReply sends a reply with an all-zero IPv4 bound address.
func WriteReply(w io.Writer, code byte) error {
	_, err := w.Write([]byte{Version, code, 0, AtypIPv4, 0, 0, 0, 0, 0, 0})
	return err
}
