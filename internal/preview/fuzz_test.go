package preview

import (
	"regexp"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/fuzzwatch"
)

// directive is one directive of the policy BuildPolicy writes: a name
// and sources from a fixed alphabet (no separators, quotes only around
// the keywords it adds itself).
var directive = regexp.MustCompile(`^[a-z-]+( ('self'|'unsafe-inline'|'unsafe-eval'|'none'|blob:|data:|[a-z]+://[A-Za-z0-9.*:\[\]-]+))+$`)

// FuzzBuildPolicy: whatever a server puts in _meta.ui.csp, the header
// has exactly the preview's directives, each source an origin or one of
// its keywords, and loopback origins never survive the Claude profile.
func FuzzBuildPolicy(f *testing.F) {
	f.Add("https://cdn.example.com", "wss://rt.example.com", "http://localhost:4444")
	f.Add("https://*.example.com;script-src *", "'unsafe-eval'", "http://[::1]:80")
	f.Add("data:", "https://a.com/x", "HTTP://LOCALHOST")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		fuzzwatch.Run(t, fuzzwatch.Limits{}, func() {
			csp := CSP{ResourceDomains: []string{a, b}, ConnectDomains: []string{b, c}, FrameDomains: []string{c}, BaseURIDomains: []string{a, c}}
			for _, p := range Profiles {
				pol := BuildPolicy(p, csp)
				parts := strings.Split(pol.Header, "; ")
				if len(parts) != 11 {
					t.Fatalf("%d directives: %q", len(parts), pol.Header)
				}
				for _, d := range parts {
					if !directive.MatchString(d) {
						t.Fatalf("directive %q from %q %q %q", d, a, b, c)
					}
					if p.NoLocalhost {
						for _, src := range strings.Fields(d)[1:] {
							if strings.Contains(src, "://") && isLocal(src) {
								t.Fatalf("%s kept %q", p.Name, src)
							}
						}
					}
				}
			}
		})
	})
}
