package termsafe

import (
	"encoding/json"
	"github.com/pomdev/pomdev/internal/fuzzwatch"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"tools/call echo", "tools/call echo"},
		{"", ""},
		{"naïve café ✓", "naïve café ✓"},
		{"a\x1b]0;owned\x07b", `a\x1b]0;owned\x07b`},
		{"\x1b]52;c;aGk=\x1b\\", `\x1b]52;c;aGk=\x1b\`},
		{"x\u009b31my", `x\u009b31my`},
		{"line\nnext\r\tx", `line\nnext\r\tx`},
		{"\x7f", `\x7f`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"abc\u202edef", `abc\u202edef`},
		{`back\slash`, `back\slash`},
	} {
		if got := String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzString: the output never holds a control character, a bidi override
// or invalid UTF-8, escaping twice changes nothing, and the output is at
// most six times the input.
func FuzzString(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[31mred", "\u009b", "\xff\xfe", "\u2066x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fuzzwatch.Run(t, fuzzwatch.Limits{}, func() {
			out := String(s)
			if !utf8.ValidString(out) {
				t.Fatalf("invalid UTF-8 out of %q", s)
			}
			for _, r := range out {
				if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || isBidi(r) {
					t.Fatalf("%U left in %q", r, out)
				}
			}
			if String(out) != out {
				t.Fatalf("not idempotent on %q", s)
			}
			if len(out) > 6*len(s) {
				t.Fatalf("%d bytes out of %d", len(out), len(s))
			}
			if strings.ContainsRune(s, '\x1b') && strings.ContainsRune(out, '\x1b') {
				t.Fatal("ESC kept")
			}
		})
	})
}

// JSON keeps the value and removes what a terminal would act on.
func TestJSON(t *testing.T) {
	in, _ := json.Marshal(map[string]string{"tool": "a\x1b]52;c;x\x07b\u009b\u202e\x7fé"})
	out := JSON(in)
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil || back["tool"] != "a\x1b]52;c;x\x07b\u009b\u202e\x7fé" {
		t.Fatalf("value changed: %q %v", back, err)
	}
	for _, r := range string(out) {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || isBidi(r) {
			t.Fatalf("%U left in %s", r, out)
		}
	}
}
