// Package termsafe makes text from the network safe to print on a
// terminal: control characters (C0, DEL, C1), invalid UTF-8 and the
// Unicode bidirectional overrides are shown as escapes instead of being
// sent to the terminal, where ESC, OSC 52 (clipboard writes) or CSI could
// act on them.
package termsafe

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s with every character that could control a terminal
// replaced by a visible escape: \x1b, \n, \u009b, \u202e, and \xff for a
// byte that is not UTF-8. Other text, including a backslash, is kept, so
// String(String(s)) == String(s).
func String(s string) string {
	if safe(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsControl(r) || isBidi(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// safe reports whether s needs no escaping (the common case: printable
// ASCII).
func safe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// isBidi reports the explicit directional formatting characters, which
// reorder how a line reads (U+202A-U+202E, U+2066-U+2069).
func isBidi(r rune) bool {
	return r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

// JSON rewrites JSON text so that no character in it can control a
// terminal, without changing the value it encodes: encoding/json already
// escapes C0 controls; this escapes the C1 controls, DEL and bidi
// overrides it leaves raw (they can only occur inside strings, where \uXXXX
// means the same character).
func JSON(b []byte) []byte {
	clean := true
	for _, c := range b {
		if c >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == 0x7f || r >= 0x80 && r <= 0x9f || isBidi(r) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}
