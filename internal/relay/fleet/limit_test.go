package fleet

import (
	"testing"

	"golang.org/x/time/rate"
)

// Lookups of routes not remembered are bounded per client address and
// node-wide: one address's flood is refused without spending another's,
// and a flood of addresses resets the limiters instead of growing them.
func TestLookupLimits(t *testing.T) {
	n := &Node{cfg: Config{SourceLookupRate: 3, LookupRate: 5}, limit: rate.NewLimiter(5, 5), bySrc: map[string]*rate.Limiter{}}
	for i := range 3 {
		if !n.allowLookup("198.51.100.1") {
			t.Fatalf("lookup %d of the first address refused", i+1)
		}
	}
	if n.allowLookup("198.51.100.1") {
		t.Fatal("a fourth lookup of one address within its second was allowed")
	}
	for i := range 2 {
		if !n.allowLookup("198.51.100.2") {
			t.Fatalf("lookup %d of another address refused for the first one's flood", i+1)
		}
	}
	if n.allowLookup("198.51.100.3") {
		t.Fatal("past the node's 5 a second, a lookup was allowed")
	}
	for i := range maxSources + 10 {
		n.allowLookup(string(rune('a'+i%26)) + string(rune(i)))
	}
	if len(n.bySrc) > maxSources {
		t.Fatalf("%d per-source limiters, bound %d", len(n.bySrc), maxSources)
	}
}
