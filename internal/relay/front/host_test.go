package front

import (
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/fuzzwatch"
)

func TestRouteFromHost(t *testing.T) {
	tests := []struct {
		host, domain string
		name         string
		apex, ok     bool
	}{
		{"brave-otter-042.localhost:8080", "localhost", "brave-otter-042", false, true},
		{"Brave-Otter-042.LOCALHOST", "localhost", "brave-otter-042", false, true},
		{"app.t.example.com.", "t.example.com", "app", false, true},
		{"localhost:8080", "localhost", "", true, true},
		{"a.b.localhost", "localhost", "", false, false},
		{"-x.localhost", "localhost", "", false, false},
		{"x.otherhost", "localhost", "", false, false},
		{"xlocalhost", "localhost", "", false, false},
		{"[::1]:8080", "localhost", "", false, false},
		{"", "localhost", "", false, false},
	}
	for _, tt := range tests {
		name, apex, ok := RouteFromHost(tt.host, tt.domain)
		if name != tt.name || apex != tt.apex || ok != tt.ok {
			t.Errorf("RouteFromHost(%q) = %q %v %v, want %q %v %v", tt.host, name, apex, ok, tt.name, tt.apex, tt.ok)
		}
	}
}

// FuzzRouteFromHost: whatever Host a public client sends, a route name
// that comes out is a valid DNS label under the domain.
func FuzzRouteFromHost(f *testing.F) {
	for _, s := range []string{"brave-otter-042.localhost:8080", "localhost", "a.b.localhost", "x.localhost:", "..localhost", "\x00.localhost"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		fuzzwatch.Run(t, fuzzwatch.Limits{}, func() {
			name, apex, ok := RouteFromHost(host, "localhost")
			if !ok {
				return
			}
			if apex {
				if name != "" {
					t.Fatalf("apex with name %q", name)
				}
				return
			}
			if !ValidLabel(name) || !strings.Contains(strings.ToLower(host), name+".localhost") {
				t.Fatalf("%q gave route %q", host, name)
			}
		})
	})
}
