package relay

import (
	"github.com/pomdev/pomdev/internal/fuzzwatch"
	"github.com/pomdev/pomdev/internal/relay/front"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// FuzzForwardRequest: a tcpip-forward payload either is refused or
// yields a valid route name and the right kind of route.
func FuzzForwardRequest(f *testing.F) {
	f.Add(ssh.Marshal(forwardRequest{Addr: "localhost", Port: 0}))
	f.Add(ssh.Marshal(forwardRequest{Addr: "myapp", Port: 80}))
	f.Add(ssh.Marshal(forwardRequest{Addr: "My_App", Port: 443}))
	f.Add([]byte{0, 0, 0, 9, 'l'})
	f.Fuzz(func(t *testing.T, payload []byte) {
		fuzzwatch.Run(t, fuzzwatch.Limits{}, func() {
			var fr forwardRequest
			if err := ssh.Unmarshal(payload, &fr); err != nil {
				return
			}
			kind, name, err := classifyForward(fr, "SHA256:fuzz")
			if err != nil {
				return
			}
			if !front.ValidLabel(name) {
				t.Fatalf("%+v gave invalid route %q", fr, name)
			}
			if kind == "static" && name != fr.Addr {
				t.Fatalf("static route %q for %q", name, fr.Addr)
			}
		})
	})
}

func TestDynamicNames(t *testing.T) {
	a, b := dynamicName("SHA256:a", 0), dynamicName("SHA256:a", 0)
	if a != b || !front.ValidLabel(a) {
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
