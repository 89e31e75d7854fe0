// Package httpwire writes HTTP/1.1 heads by hand for pomdev's two
// forwarders (the relay's leg into a tunnel and the tunnel's leg to the
// local server), which frame requests and answers themselves on a channel
// instead of going through http.Transport's goroutines.
package httpwire

import (
	"bufio"
	"io"
	"net/http"
	"net/textproto"
	"strings"
)

// hop are the fields not forwarded (RFC 9110 §7.6.1), plus the framing
// fields a forwarder writes from the parsed message.
var hop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Content-Length": true, "Expect": true,
}

// WriteHeader writes the end-to-end fields of hdr: not the hop-by-hop
// ones, nor those the Connection field names, nor the framing ones.
func WriteHeader(bw *bufio.Writer, hdr http.Header) {
	named := ConnectionTokens(hdr)
	for k, vv := range hdr {
		if hop[k] || named[k] {
			continue
		}
		for _, v := range vv {
			_, _ = bw.WriteString(k)
			_, _ = bw.WriteString(": ")
			_, _ = bw.WriteString(v)
			_, _ = bw.WriteString("\r\n")
		}
	}
}

// CopyHeader adds the end-to-end fields of src to dst (the same rule as
// WriteHeader). Value slices are shared with src where dst had none: src
// is given away.
func CopyHeader(dst, src http.Header) {
	named := ConnectionTokens(src)
	for k, vv := range src {
		if hop[k] || named[k] {
			continue
		}
		if dst[k] == nil {
			dst[k] = vv
		} else {
			dst[k] = append(dst[k], vv...)
		}
	}
}

// ConnectionTokens is the set of field names the Connection field lists,
// canonicalized (nil when there are none).
func ConnectionTokens(hdr http.Header) map[string]bool {
	var named map[string]bool
	for _, v := range hdr["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				if named == nil {
					named = map[string]bool{}
				}
				named[textproto.CanonicalMIMEHeaderKey(f)] = true
			}
		}
	}
	return named
}

// IsUpgrade reports whether hdr asks to switch protocols.
func IsUpgrade(hdr http.Header) bool {
	return hdr.Get("Upgrade") != "" && ConnectionTokens(hdr)["Upgrade"]
}

// BodyMethod reports the methods whose requests carry a body by default,
// so that an empty one is sent with Content-Length: 0.
func BodyMethod(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch
}

// HeadLimit passes reads through while N is negative and, once N has
// been set to the bytes a message head may take, stops them with Err after
// that many: a forwarder sets it around reading a head from a peer and
// clears it (-1) for the body, which it streams.
type HeadLimit struct {
	R   io.Reader
	N   int64
	Err error
}

func (l *HeadLimit) Read(b []byte) (int, error) {
	if l.N < 0 {
		return l.R.Read(b)
	}
	if l.N == 0 {
		return 0, l.Err
	}
	if int64(len(b)) > l.N {
		b = b[:l.N]
	}
	n, err := l.R.Read(b)
	l.N -= int64(n)
	return n, err
}
