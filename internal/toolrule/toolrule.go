// Package toolrule is the syntax and meaning of tool rules, a contract
// between the two ends of a tunnel: the tunnel (pomdev.yaml's
// tunnel.tools, --tools-allow/--tools-deny) sends them as env requests,
// and the relay's policy writes its own in the same syntax. A leaf: both
// sides import it and it imports neither.
package toolrule

import (
	"errors"
	"fmt"
	"strings"
)

// Glob is a name, or a prefix followed by * ("delete_*").
type Glob struct {
	Text  string
	Where string // file:line, or "" for a tunnel's own rules
}

// Match reports whether name is the glob's name or starts with its prefix.
func (g Glob) Match(name string) bool {
	if prefix, ok := strings.CutSuffix(g.Text, "*"); ok {
		return strings.HasPrefix(name, prefix)
	}
	return name == g.Text
}

// maxGlob bounds a glob's length (tool names are at most 128 characters).
const maxGlob = 128

// Check reports what is wrong with a tool-name glob: it must be printable
// ASCII without spaces, with at most one * and only at its end.
func Check(s string) error {
	switch {
	case s == "":
		return errors.New("empty tool name")
	case len(s) > maxGlob:
		return fmt.Errorf("longer than %d characters", maxGlob)
	case strings.IndexByte(s, '*') >= 0 && strings.IndexByte(s, '*') != len(s)-1:
		return errors.New("* may only end a name (delete_*), as a prefix match")
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r > 0x7e {
			return fmt.Errorf("%q may not appear in a tool name", r)
		}
	}
	return nil
}

// Tools is one layer of tool rules: a tool must not match Deny and, when
// Allow is not nil, must match Allow.
type Tools struct {
	Allow  []Glob // nil: no allow list (everything not denied)
	Deny   []Glob
	Source string // where the layer is written, for errors
}

// Empty reports whether t restricts nothing.
func (t Tools) Empty() bool { return t.Allow == nil && len(t.Deny) == 0 }

// ToolSet is the layers in force on a route; a tool must pass each.
type ToolSet []Tools

// Empty reports whether ts restricts nothing.
func (ts ToolSet) Empty() bool {
	for _, t := range ts {
		if !t.Empty() {
			return false
		}
	}
	return true
}

// Decide says whether the tool name may be called; when not, rule names
// the rule that refuses it.
func (ts ToolSet) Decide(name string) (ok bool, rule string) {
	for _, t := range ts {
		for _, g := range t.Deny {
			if g.Match(name) {
				return false, fmt.Sprintf("deny %q at %s", g.Text, whereOr(g.Where, t.Source))
			}
		}
		if t.Allow != nil {
			allowed := false
			for _, g := range t.Allow {
				if g.Match(name) {
					allowed = true
					break
				}
			}
			if !allowed {
				return false, "not in the allow list at " + t.Source
			}
		}
	}
	return true, ""
}

func whereOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// The env requests that carry a tunnel's own rules, comma-separated globs.
const (
	EnvAllow = "POMDEV_TOOLS_ALLOW"
	EnvDeny  = "POMDEV_TOOLS_DENY"
)

// MaxTunnelGlobs bounds the globs of one env request.
const MaxTunnelGlobs = 256

// TunnelSource names the rules a tunnel sets for itself.
const TunnelSource = "the tunnel's own tool policy"

// ParseTunnel reads the tool rules a tunnel asks for (the values of
// EnvAllow and EnvDeny). An allow value of "" means no allow list.
func ParseTunnel(allow, deny string) (Tools, error) {
	t := Tools{Source: TunnelSource}
	split := func(s, what string) ([]Glob, error) {
		var out []Glob
		for _, f := range strings.Split(s, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			if err := Check(f); err != nil {
				return nil, fmt.Errorf("%s %q: %w", what, f, err)
			}
			out = append(out, Glob{Text: f})
		}
		if len(out) > MaxTunnelGlobs {
			return nil, fmt.Errorf("%s: at most %d names", what, MaxTunnelGlobs)
		}
		return out, nil
	}
	var err error
	if t.Deny, err = split(deny, "deny"); err != nil {
		return Tools{}, err
	}
	if strings.TrimSpace(allow) != "" {
		if t.Allow, err = split(allow, "allow"); err != nil {
			return Tools{}, err
		}
	}
	return t, nil
}

// String is the rules as a tunnel would send them.
func (t Tools) String() string {
	var parts []string
	if t.Allow != nil {
		parts = append(parts, "allow "+join(t.Allow))
	}
	if len(t.Deny) > 0 {
		parts = append(parts, "deny "+join(t.Deny))
	}
	if len(parts) == 0 {
		return "all tools"
	}
	return strings.Join(parts, "; ")
}

func join(gs []Glob) string {
	s := make([]string, len(gs))
	for i, g := range gs {
		s[i] = g.Text
	}
	return strings.Join(s, ",")
}
