package access

import (
	"net"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
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

// whoAsks is who the client of request a provably is, as the owner sees
// it (event.Access's Verified, Registered, Mismatch): the host of a
// metadata document's URL, which the relay fetched over HTTPS, or the
// address a registration came from; and where the client's name, its
// redirect and its host disagree.
func whoAsks(a authRow) (verified, registered, mismatch string) {
	name := a.Data.ClientName
	if name == a.ClientID {
		name = "" // no name: nothing claimed
	}
	var notes []string
	r, _ := url.Parse(a.Data.RedirectURI)
	webRedirect := r != nil && r.Scheme == "https" && r.Hostname() != ""
	if isDynamic(a.ClientID) {
		registered = a.Data.ClientSource
		if registered == "" {
			registered = "an address not recorded"
		}
		// A registration's only host is where it returns to.
		if webRedirect && name != "" && !nameFits(name, r.Hostname()) {
			notes = append(notes, "its name is not that of the host it returns to")
		}
		return "", registered, strings.Join(notes, "; ")
	}
	u, err := url.Parse(a.ClientID)
	if err != nil {
		return "(an invalid client ID)", "", ""
	}
	host := u.Hostname()
	verified = displayHost(host)
	if name != "" && !nameFits(name, host) {
		notes = append(notes, "its name is not that of its host")
	}
	if webRedirect && siteOf(a.Data.RedirectURI) != siteOf(a.ClientID) {
		notes = append(notes, "it returns to "+displayHost(r.Hostname())+", not to its own host")
	}
	return verified, "", strings.Join(notes, "; ")
}

// nameFits reports whether a client's name matches host: the name's
// letters and digits run together appear in it ("ChatGPT" on
// chatgpt.com), or one of its words of three or more ("Visual Studio
// Code" on vscode.dev), or the host's own name in the name. A name in
// other letters than the host's never fits.
func nameFits(name, host string) bool {
	alnum := func(s string) string {
		return strings.Map(func(r rune) rune {
			r = unicode.ToLower(r)
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				return r
			}
			return -1
		}, s)
	}
	h := strings.ToLower(host)
	if a, err := idna.Lookup.ToASCII(h); err == nil {
		h = a
	}
	hostAlnum := alnum(h)
	joined := alnum(name)
	if joined == "" || hostAlnum == "" {
		return false
	}
	if strings.Contains(hostAlnum, joined) {
		return true
	}
	for _, w := range strings.FieldsFunc(name, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if w := alnum(w); utf8.RuneCountInString(w) >= 3 && strings.Contains(hostAlnum, w) {
			return true
		}
	}
	site, err := publicsuffix.EffectiveTLDPlusOne(h)
	if err != nil {
		return false
	}
	label, _, _ := strings.Cut(site, ".")
	return len(label) >= 3 && strings.Contains(joined, alnum(label))
}

// Who is the grant's app as the owner sees it, by the rule of
// event.Access's Identity: the host of a metadata document's URL first,
// the name as a claim.
func (g Grant) Who() string {
	name := displayName(g.ClientName, g.ClientID)
	if isDynamic(g.ClientID) {
		return `"` + name + `", registered dynamically, unverified`
	}
	u, err := url.Parse(g.ClientID)
	if err != nil {
		return name
	}
	host := displayHost(u.Hostname())
	if g.ClientName == "" || g.ClientName == g.ClientID {
		return host
	}
	return host + ` (calls itself "` + name + `")`
}

// who is what the approval and consent pages show of who asks (whoTmpl).
type who struct {
	Verified   string // the host of the client ID, "" for a registration
	Claimed    string // the name the app gives itself
	Registered string // where a registration came from
	Mismatch   string
}

func whoOf(q Request) who {
	w := who{Verified: q.Verified, Registered: q.Registered, Mismatch: q.Mismatch, Claimed: q.ClientName}
	if w.Claimed == q.ClientID {
		w.Claimed = ""
	}
	return w
}

// whoTmpl shows who asks, the verified host first and the name as a
// claim: "who" inline, "identity" as rows of a <dl>.
const whoTmpl = `{{define "who"}}{{if .Verified}}<strong>{{.Verified}}</strong>{{if .Claimed}} (calls itself “{{.Claimed}}”){{end}}{{else}}An application that calls itself <strong>“{{.Claimed}}”</strong>{{end}}{{end}}
{{define "identity"}}<dt>Application</dt>{{if .Verified}}<dd><strong>{{.Verified}}</strong>: the host of its client ID, whose metadata document the relay fetched over HTTPS{{if .Claimed}}; it calls itself “{{.Claimed}}”{{end}}</dd>
{{else}}<dd class="warn">“{{.Claimed}}”, registered dynamically from {{.Registered}}, unverified: its name and where it returns are its own word</dd>{{end}}
{{if .Mismatch}}<dt>Beware</dt><dd class="warn">{{.Mismatch}}</dd>{{end}}{{end}}`
