// Package publicpath is the wire contract of a tunnel's public asset
// paths: the paths a tunnel asks a pomdev relay with --http-auth to serve
// without a token (POMDEV_PUBLIC_PATHS), because hosts render widgets in
// sandboxed frames that cannot send credentials. The tunnel's side checks
// them before sending, the relay on receipt and on every request.
//
// A set is at most MaxPatterns doublestar patterns under one directory of
// the route (its Prefix, "/widgets/"), never the MCP endpoint, the
// well-known documents or the relay's OAuth paths. A request path matches
// only in canonical form: no dot segments, no empty segments, no
// backslashes, no escaped slashes.
package publicpath

import (
	"fmt"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Env is the env request that announces a tunnel's public paths.
const Env = "POMDEV_PUBLIC_PATHS"

// Bounds of a set.
const (
	MaxPatterns     = 8
	MaxPatternBytes = 200
)

// Set is a tunnel's public paths.
type Set struct {
	Patterns []string
	// Prefix is the directory every pattern is under: "/widgets/".
	Prefix string
}

// Empty reports whether s makes nothing public.
func (s Set) Empty() bool { return len(s.Patterns) == 0 }

// String is s as announced.
func (s Set) String() string { return strings.Join(s.Patterns, ",") }

// reserved are first path segments never public: the MCP endpoint, the
// well-known documents (protected-resource metadata) and OAuth.
var reserved = []string{"mcp", ".well-known", "oauth"}

// Parse reads an announced set: patterns separated by commas or spaces.
func Parse(value string) (Set, error) {
	fields := strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(fields) == 0 {
		return Set{}, nil
	}
	if len(fields) > MaxPatterns {
		return Set{}, fmt.Errorf("%d public path patterns; at most %d", len(fields), MaxPatterns)
	}
	var s Set
	for _, p := range fields {
		prefix, err := check(p)
		if err != nil {
			return Set{}, err
		}
		if s.Prefix != "" && prefix != s.Prefix {
			return Set{}, fmt.Errorf("public paths must be under one directory: %q is not under %s", p, s.Prefix)
		}
		s.Prefix = prefix
		s.Patterns = append(s.Patterns, p)
	}
	return s, nil
}

// check validates one pattern and returns its directory ("/widgets/").
func check(p string) (string, error) {
	switch {
	case len(p) > MaxPatternBytes:
		return "", fmt.Errorf("public path pattern longer than %d bytes", MaxPatternBytes)
	case !strings.HasPrefix(p, "/"):
		return "", fmt.Errorf("public path %q must start with /", p)
	case strings.ContainsAny(p, "\\%{}") || strings.ContainsFunc(p, func(r rune) bool { return r < 0x21 || r == 0x7f }):
		return "", fmt.Errorf("public path %q: no backslashes, escapes, braces, spaces or control characters", p)
	case !doublestar.ValidatePattern(p):
		return "", fmt.Errorf("public path %q is not a valid glob", p)
	}
	seg, rest, ok := strings.Cut(p[1:], "/")
	if !ok || seg == "" || strings.ContainsAny(seg, "*?[") || rest == "" {
		return "", fmt.Errorf("public path %q must be under a directory of the route, such as /widgets/**", p)
	}
	if !canonical(p) {
		return "", fmt.Errorf("public path %q has empty or dot segments", p)
	}
	for _, r := range reserved {
		if strings.EqualFold(seg, r) {
			return "", fmt.Errorf("public path %q: /%s/ is never public (the MCP endpoint, metadata and OAuth always need the token)", p, seg)
		}
	}
	if strings.HasPrefix(seg, ".") {
		return "", fmt.Errorf("public path %q: a directory starting with a dot is never public", p)
	}
	return "/" + seg + "/", nil
}

// canonical reports whether path has no empty, "." or ".." segments and no
// backslash.
func canonical(path string) bool {
	if !strings.HasPrefix(path, "/") || strings.Contains(path, "\\") {
		return false
	}
	segs := strings.Split(path[1:], "/")
	for i, s := range segs {
		if s == "." || s == ".." || (s == "" && i != len(segs)-1) {
			return false
		}
	}
	return true
}

// Match reports whether a request's path is public: escapedPath is the
// path as sent (URL.EscapedPath), which must have no escaped slash,
// backslash or dot and decode to itself apart from unreserved escapes
// the caller has already decoded into path.
func (s Set) Match(path, escapedPath string) bool {
	if s.Empty() || !strings.HasPrefix(path, s.Prefix) || !canonical(path) {
		return false
	}
	lower := strings.ToLower(escapedPath)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(lower, "%2e") || strings.Contains(lower, "%00") {
		return false
	}
	for _, p := range s.Patterns {
		if ok, _ := doublestar.Match(p, path); ok {
			return true
		}
	}
	return false
}

// Under reports whether every pattern of s lies under one of the
// prefixes a policy allows ("/widgets/"; a prefix is read with a final
// slash): the directory before a pattern's first wildcard is checked.
func (s Set) Under(prefixes []string) bool {
	for _, pat := range s.Patterns {
		dir := pat
		if i := strings.IndexAny(dir, "*?["); i >= 0 {
			dir = dir[:i]
		}
		dir = dir[:strings.LastIndex(dir, "/")+1]
		ok := false
		for _, p := range prefixes {
			if !strings.HasSuffix(p, "/") {
				p += "/"
			}
			if strings.HasPrefix(dir, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
