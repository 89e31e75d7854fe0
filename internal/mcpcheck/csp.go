package mcpcheck

import (
	"fmt"
	"net/url"
	"strings"
)

// The CSP lists of _meta.ui.csp (ext-apps McpUiResourceCsp) and what
// each allows.
const (
	cspConnect  = "connectDomains"  // connect-src: fetch, XHR, WebSocket, EventSource
	cspResource = "resourceDomains" // script, style, img, font, media
	cspFrame    = "frameDomains"    // frame-src
	cspBaseURI  = "baseUriDomains"  // base-uri
)

var cspLists = []string{cspConnect, cspResource, cspFrame, cspBaseURI}

// source is one parsed CSP list entry: scheme://host[:port], where host
// may start with "*." (any subdomain, not the domain itself).
type source struct {
	scheme, host, port string
	wildcard           bool // host is the part after "*."
}

// parseSource reads one CSP list entry, or says why it is not an origin.
func parseSource(s string) (source, error) {
	if s == "*" || strings.HasSuffix(s, "://*") {
		return source{}, fmt.Errorf("%q allows every origin", s)
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return source{}, fmt.Errorf("%q is not an origin (scheme://host[:port])", s)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return source{}, fmt.Errorf("%q is not an origin: hosts compare origins only (drop the path)", s)
	}
	src := source{scheme: strings.ToLower(u.Scheme), host: strings.ToLower(u.Hostname()), port: u.Port()}
	if strings.HasPrefix(src.host, "*.") {
		src.wildcard, src.host = true, src.host[2:]
	}
	if strings.Contains(src.host, "*") || src.host == "" {
		return source{}, fmt.Errorf("%q: a wildcard may only be the first label (https://*.example.com)", s)
	}
	return src, nil
}

// defaultPort is the port a URL of scheme has when it names none.
func defaultPort(scheme string) string {
	switch scheme {
	case "http", "ws":
		return "80"
	case "https", "wss":
		return "443"
	}
	return ""
}

// schemeMatches is CSP Level 3's scheme-part match, with WebSocket URLs
// treated as their HTTP counterparts.
func schemeMatches(src, target string) bool {
	norm := func(s string) string {
		switch s {
		case "ws":
			return "http"
		case "wss":
			return "https"
		}
		return s
	}
	a, b := norm(src), norm(target)
	return a == b || (a == "http" && b == "https")
}

// allows reports whether the source allows the absolute URL u.
func (s source) allows(u *url.URL) bool {
	scheme := strings.ToLower(u.Scheme)
	if !schemeMatches(s.scheme, scheme) {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if s.wildcard {
		if !strings.HasSuffix(host, "."+s.host) {
			return false
		}
	} else if host != s.host {
		return false
	}
	port := u.Port()
	if port == "" {
		port = defaultPort(scheme)
	}
	want := s.port
	if want == "" {
		want = defaultPort(s.scheme)
		// An http source with no port also allows https on 443.
		if s.scheme == "http" && port == "443" {
			return true
		}
	}
	return want == "*" || want == port
}

// policy is a resource's parsed CSP: the valid entries of each list.
type policy map[string][]source

func (p policy) allows(list string, u *url.URL) bool {
	for _, s := range p[list] {
		if s.allows(u) {
			return true
		}
	}
	return false
}
