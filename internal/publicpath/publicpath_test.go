package publicpath

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	s, err := Parse("/widgets/**, /widgets/*.html")
	if err != nil || s.Prefix != "/widgets/" || len(s.Patterns) != 2 {
		t.Fatalf("%+v %v", s, err)
	}
	for value, want := range map[string]string{
		"/mcp/**":                "never public",
		"/MCP/x":                 "never public",
		"/.well-known/**":        "never public",
		"/oauth/*":               "never public",
		"/.git/**":               "dot",
		"/**":                    "under a directory",
		"/*":                     "under a directory",
		"/widgets":               "under a directory",
		"widgets/**":             "start with /",
		"/w*/x":                  "under a directory",
		"/widgets/../mcp":        "dot segments",
		"/widgets//x":            "dot segments",
		"/widgets/%2e%2e/mcp":    "escapes",
		"/{widgets,mcp}/x":       "braces",
		"/widgets/[":             "not a valid glob",
		"/widgets/**,/assets/**": "under one directory",
		"/a/1,/a/2,/a/3,/a/4,/a/5,/a/6,/a/7,/a/8,/a/9": "at most 8",
		"/widgets/" + strings.Repeat("a", 200):         "longer than",
	} {
		if _, err := Parse(value); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want %q", value, err, want)
		}
	}
}

func TestMatch(t *testing.T) {
	s, err := Parse("/widgets/**")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"/widgets/echo.html":                    true,
		"/widgets/assets/echo-1.js":             true,
		"/widgets/":                             true,
		"/widgets/../mcp":                       false,
		"/widgets/./x":                          false,
		"/widgets//x":                           false,
		"/mcp":                                  false,
		"/widgetsx/a":                           false,
		"/.well-known/oauth-protected-resource": false,
	} {
		if got := s.Match(path, path); got != want {
			t.Errorf("Match(%q) = %v, want %v", path, got, want)
		}
	}
	// Escaped slashes and dots never match, whatever they decode to.
	for _, esc := range []string{"/widgets/a%2Fb", "/widgets/%2e%2e/mcp", "/widgets/a%5cb", "/widgets/a%00"} {
		if s.Match("/widgets/a", esc) {
			t.Errorf("escaped path %q matched", esc)
		}
	}
	if (Set{}).Match("/widgets/a", "/widgets/a") {
		t.Error("the empty set matched")
	}
}

func TestUnder(t *testing.T) {
	s, _ := Parse("/static/app/**,/static/app/*.js")
	for prefixes, want := range map[string]bool{
		"/static/":       true,
		"/static":        true,
		"/static/app/":   true,
		"/static/other/": false,
		"/widgets/":      false,
		"":               false,
	} {
		var ps []string
		if prefixes != "" {
			ps = []string{prefixes}
		}
		if got := s.Under(ps); got != want {
			t.Errorf("Under(%q) = %v, want %v", prefixes, got, want)
		}
	}
}
