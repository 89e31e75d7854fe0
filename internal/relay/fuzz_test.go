package relay

import (
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
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
		name, apex, ok := routeFromHost(tt.host, tt.domain)
		if name != tt.name || apex != tt.apex || ok != tt.ok {
			t.Errorf("routeFromHost(%q) = %q %v %v, want %q %v %v", tt.host, name, apex, ok, tt.name, tt.apex, tt.ok)
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
		name, apex, ok := routeFromHost(host, "localhost")
		if !ok {
			return
		}
		if apex {
			if name != "" {
				t.Fatalf("apex with name %q", name)
			}
			return
		}
		if !validLabel(name) || !strings.Contains(strings.ToLower(host), name+".localhost") {
			t.Fatalf("%q gave route %q", host, name)
		}
	})
}

// FuzzForwardRequest: a tcpip-forward payload either is refused or
// yields a valid route name and the right kind of route.
func FuzzForwardRequest(f *testing.F) {
	f.Add(ssh.Marshal(forwardRequest{Addr: "localhost", Port: 0}))
	f.Add(ssh.Marshal(forwardRequest{Addr: "myapp", Port: 80}))
	f.Add(ssh.Marshal(forwardRequest{Addr: "My_App", Port: 443}))
	f.Add([]byte{0, 0, 0, 9, 'l'})
	f.Fuzz(func(t *testing.T, payload []byte) {
		var fr forwardRequest
		if err := ssh.Unmarshal(payload, &fr); err != nil {
			return
		}
		kind, name, err := classifyForward(fr, "SHA256:fuzz")
		if err != nil {
			return
		}
		if !validLabel(name) {
			t.Fatalf("%+v gave invalid route %q", fr, name)
		}
		if kind == "static" && name != fr.Addr {
			t.Fatalf("static route %q for %q", name, fr.Addr)
		}
	})
}

func TestDynamicNames(t *testing.T) {
	a, b := dynamicName("SHA256:a", 0), dynamicName("SHA256:a", 0)
	if a != b || !validLabel(a) {
		t.Fatalf("%q %q", a, b)
	}
	if dynamicName("SHA256:a", 1) == a {
		t.Fatal("alternative equals the first name")
	}
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		seen[dynamicName("SHA256:"+strings.Repeat("k", i%50)+string(rune('a'+i%26))+string(rune(i)), 0)] = true
	}
	if len(seen) < 1900 {
		t.Fatalf("only %d distinct names for 2000 keys", len(seen))
	}
	if p := virtualPort("SHA256:a"); p < 32768 || p >= 65536 {
		t.Fatalf("port %d", p)
	}
}
