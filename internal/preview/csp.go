package preview

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/pomdev/pomdev/internal/loopback"
)

// CSP is a resource's _meta.ui.csp: the origins its widget may use.
type CSP struct {
	ConnectDomains  []string `json:"connectDomains,omitempty"`
	ResourceDomains []string `json:"resourceDomains,omitempty"`
	FrameDomains    []string `json:"frameDomains,omitempty"`
	BaseURIDomains  []string `json:"baseUriDomains,omitempty"`
}

// Profile is the host a preview emulates: what it lets a widget load and
// how it sandboxes the frame.
type Profile struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	// Sandbox is the inner frame's sandbox attribute.
	Sandbox string `json:"sandbox"`
	// NoLocalhost drops loopback origins from the CSP: the host's servers
	// cannot reach a developer's machine (Claude loads nothing from
	// localhost; widgets must be inline or on a public origin).
	NoLocalhost bool `json:"noLocalhost"`
}

// Profiles are the hosts --profile emulates; the first is the default.
var Profiles = []Profile{
	{Name: "chatgpt", Title: "ChatGPT-like", Sandbox: "allow-scripts allow-same-origin allow-forms allow-popups allow-popups-to-escape-sandbox"},
	{Name: "claude", Title: "Claude-like", Sandbox: "allow-scripts allow-same-origin allow-forms", NoLocalhost: true},
}

// LookupProfile returns the named profile ("" is the default).
func LookupProfile(name string) (Profile, error) {
	if name == "" {
		return Profiles[0], nil
	}
	names := make([]string, 0, len(Profiles))
	for _, p := range Profiles {
		if p.Name == name {
			return p, nil
		}
		names = append(names, p.Name)
	}
	return Profile{}, &ProfileError{Name: name, Known: names}
}

// ProfileError is a --profile that does not exist.
type ProfileError struct {
	Name  string
	Known []string
}

func (e *ProfileError) Error() string {
	return fmt.Sprintf("host profile %q: want one of %s", e.Name, strings.Join(e.Known, ", "))
}

// maxSources bounds each CSP list a page can ask for.
const maxSources = 64

// source checks one CSP entry: an http(s) or ws(s) origin, optionally with
// a leading "*." wildcard label and a port. Anything else (keywords,
// paths, quotes, separators) could change the policy and is refused.
func source(s string) (string, bool) {
	if len(s) > 253 || s == "" {
		return "", false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-:/*[]", r)) {
			return "", false
		}
	}
	u, err := url.Parse(strings.Replace(s, "*.", "wildcard.", 1))
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return "", false
	}
	if strings.Contains(u.Host, "*") || strings.Count(s, "*") > 1 || strings.Contains(s, "*") && !strings.HasPrefix(s, u.Scheme+"://*.") {
		return "", false
	}
	host := strings.ToLower(u.Host)
	if strings.HasPrefix(host, "wildcard.") && strings.Contains(s, "*.") {
		host = "*." + strings.TrimPrefix(host, "wildcard.")
	}
	return u.Scheme + "://" + host, true
}

// isLocal reports whether a CSP source names the developer's machine.
func isLocal(src string) bool {
	u, err := url.Parse(strings.Replace(src, "*.", "wildcard.", 1))
	return err == nil && loopback.IsLoopback(u.Hostname())
}

// Policy is the Content-Security-Policy the preview's sandbox enforces for
// a widget, and what it left out.
type Policy struct {
	Header string
	// Refused are entries that are not origins; Dropped are loopback
	// origins the profile does not allow.
	Refused, Dropped []string
}

// BuildPolicy turns a resource's CSP into the header the sandbox serves,
// as the MCP Apps specification maps each list: resourceDomains to
// script, style, image, font and media sources, connectDomains to
// connect-src, frameDomains to frame-src, baseUriDomains to base-uri. With
// none declared a widget gets inline code and data: URLs only. self is
// the sandbox origin, which serves nothing but the sandbox itself.
func BuildPolicy(p Profile, c CSP) Policy {
	var pol Policy
	clean := func(list []string) string {
		var out []string
		for i, s := range list {
			if i >= maxSources {
				pol.Refused = append(pol.Refused, fmt.Sprintf("(%d more)", len(list)-maxSources))
				break
			}
			src, ok := source(s)
			switch {
			case !ok:
				pol.Refused = append(pol.Refused, s)
			case p.NoLocalhost && isLocal(src):
				pol.Dropped = append(pol.Dropped, src)
			default:
				out = append(out, src)
			}
		}
		return strings.Join(out, " ")
	}
	res, conn, frame, base := clean(c.ResourceDomains), clean(c.ConnectDomains), clean(c.FrameDomains), clean(c.BaseURIDomains)
	pol.Refused, pol.Dropped = dedupe(pol.Refused), dedupe(pol.Dropped)
	join := func(parts ...string) string {
		var out []string
		for _, s := range parts {
			if s != "" {
				out = append(out, s)
			}
		}
		return strings.Join(out, " ")
	}
	or := func(s, none string) string {
		if s == "" {
			return none
		}
		return s
	}
	pol.Header = strings.Join([]string{
		"default-src 'none'",
		"script-src " + join("'self' 'unsafe-inline' 'unsafe-eval' blob: data:", res),
		"style-src " + join("'self' 'unsafe-inline' blob: data:", res),
		"img-src " + join("'self' data: blob:", res),
		"font-src " + join("'self' data: blob:", res),
		"media-src " + join("'self' data: blob:", res),
		"worker-src " + join("'self' blob:", res),
		"connect-src " + or(conn, "'none'"),
		"frame-src " + or(frame, "'none'"),
		"base-uri " + join("'self'", base),
		"object-src 'none'",
	}, "; ")
	return pol
}

// dedupe keeps the first of each entry (an origin is often in several
// lists).
func dedupe(list []string) []string {
	seen := map[string]bool{}
	out := list[:0]
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
