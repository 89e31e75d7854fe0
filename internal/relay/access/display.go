package access

import (
	"net"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// What a requester names itself is shown to the owner bounded and plain:
// MaxNameRunes of a client_name, whitespace runs as one space, no control
// or format characters (which reorder or hide text).
const MaxNameRunes = 40

// IDNMark follows a host shown in punycode because its name has letters
// outside ASCII ("xn--hatgpt-hrf.com (IDN)" for a Cyrillic с): lookalike
// letters cannot pass for a known host.
const IDNMark = " (IDN)"

// displayName is a client's name as the owner sees it; fallback (its id)
// when the name has nothing left.
func displayName(name, fallback string) string {
	name = strings.Join(strings.FieldsFunc(name, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError
	}), " ")
	if name == "" {
		name = fallback
	}
	if utf8.RuneCountInString(name) > MaxNameRunes {
		name = string([]rune(name)[:MaxNameRunes-1]) + "…"
	}
	return name
}

// displayHost is a host name in ASCII: punycode with IDNMark when it has
// other letters, or a quoted refusal when it is no host name at all.
func displayHost(host string) string {
	if host == "" {
		return "(none)"
	}
	if net.ParseIP(strings.Trim(host, "[]")) != nil {
		return host
	}
	ascii, err := idna.Lookup.ToASCII(host)
	if err != nil {
		ascii, err = idna.Punycode.ToASCII(host)
		if err != nil {
			return "(an invalid host name)"
		}
	}
	if ascii != strings.ToLower(host) {
		return ascii + IDNMark
	}
	return ascii
}

// displayRedirect is where a redirect URI returns, as scheme://host[:port]
// with the host as displayHost shows it.
func displayRedirect(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return "(an invalid redirect URI)"
	}
	host := displayHost(u.Hostname())
	if p := u.Port(); p != "" {
		mark := ""
		if h, ok := strings.CutSuffix(host, IDNMark); ok {
			host, mark = h, IDNMark
		}
		host = net.JoinHostPort(host, p) + mark
	}
	if u.Host == "" {
		// A custom scheme (a desktop host): scheme and opaque part.
		return displayName(u.Scheme+":"+u.Opaque+u.Path, "")
	}
	return u.Scheme + "://" + host
}
