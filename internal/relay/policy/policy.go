// Package policy is the relay's policy file: who may open tunnels, which
// route names they may hold, and which MCP tools may be called on a route.
// Tool rules are enforced on the JSON-RPC stream (enforce.go).
//
//	# policy.yaml
//	tunnels:
//	  allow: ["key:SHA256:7m3…"]        # who may open tunnels (absent: anyone --auth admits)
//	routes:                             # first rule whose name matches applies
//	  - name: "demo-*"
//	    holders: ["key:SHA256:7m3…"]    # who may hold these names
//	    tools: {deny: ["delete_*"]}
//	tools:                              # every route
//	  deny: ["exec_*"]
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/pomdev/pomdev/internal/publicpath"
	"github.com/pomdev/pomdev/internal/toolrule"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize bounds a policy file.
const MaxFileSize = 1 << 20

// Policy is a loaded policy file. The zero Policy allows everything.
type Policy struct {
	File    string
	Tunnels []Principal // nil: anyone the relay's --auth admits
	// TunnelsWhere is where tunnels.allow is written ("" when absent).
	TunnelsWhere string
	Routes       []RouteRule
	Tools        toolrule.Tools
	// PublicPaths bounds the public asset paths tunnels may announce
	// (publicpath): the directories they may lie under, [] for none, nil
	// for the default (any one directory a tunnel names).
	PublicPaths *PathPrefixes
}

// PathPrefixes are the directories public paths may lie under, and where
// the policy says so.
type PathPrefixes struct {
	Prefixes []string
	Where    string
}

// RouteRule applies to the routes whose name matches Name.
type RouteRule struct {
	Name    toolrule.Glob
	Holders []Principal // nil: anyone who may open tunnels
	// Callers are the people an MCP client may be granted access for
	// (--http-auth oidc); nil: the route's owner only. "owner" names the
	// person the route owner's key is signed in as.
	Callers []Principal
	Tools   toolrule.Tools
	// PublicPaths, when set, replaces the relay-wide public_paths for
	// these routes.
	PublicPaths *PathPrefixes
	Where       string
}

// Principal is who a rule names: any, key:SHA256:…, email:…, domain:…,
// sub:… (the last three are identities from an OpenID Connect sign-in).
type Principal struct {
	Kind, Value string
	Where       string
}

// Identity is who holds a tunnel or makes a request.
type Identity struct {
	Key   string // SSH key fingerprint, SHA256:…
	Sub   string
	Email string
}

// Matches reports whether id is p.
func (p Principal) Matches(id Identity) bool {
	switch p.Kind {
	case "any":
		return true
	case "key":
		return id.Key != "" && id.Key == p.Value
	case "sub":
		return id.Sub != "" && id.Sub == p.Value
	case "email":
		return id.Email != "" && strings.EqualFold(id.Email, p.Value)
	case "domain":
		at := strings.LastIndexByte(id.Email, '@')
		return at > 0 && strings.EqualFold(id.Email[at+1:], p.Value)
	}
	return false
}

func (p Principal) String() string {
	if p.Kind == "any" || p.Kind == "owner" {
		return p.Kind
	}
	return p.Kind + ":" + p.Value
}

// NeedsIdentity reports whether the policy names people (email, domain,
// sub) rather than keys only.
func (p *Policy) NeedsIdentity() string {
	check := func(ps []Principal) string {
		for _, x := range ps {
			if x.Kind == "email" || x.Kind == "domain" || x.Kind == "sub" {
				return x.Where
			}
		}
		return ""
	}
	if w := check(p.Tunnels); w != "" {
		return w
	}
	for _, r := range p.Routes {
		if w := check(r.Holders); w != "" {
			return w
		}
		if w := check(r.Callers); w != "" {
			return w
		}
	}
	return ""
}

// MayOpen reports whether id may open tunnels, and if not, the rule that
// says so.
func (p *Policy) MayOpen(id Identity) (bool, string) {
	if p == nil || p.Tunnels == nil {
		return true, ""
	}
	for _, x := range p.Tunnels {
		if x.Matches(id) {
			return true, ""
		}
	}
	return false, p.TunnelsWhere
}

// Rule is the route rule for name (nil when none matches).
func (p *Policy) Rule(name string) *RouteRule {
	if p == nil {
		return nil
	}
	for i := range p.Routes {
		if p.Routes[i].Name.Match(name) {
			return &p.Routes[i]
		}
	}
	return nil
}

// MayHold reports whether id may hold the route name, and if not, the
// rule that says so.
func (p *Policy) MayHold(id Identity, name string) (bool, string) {
	if ok, where := p.MayOpen(id); !ok {
		return false, where
	}
	rule := p.Rule(name)
	if rule == nil || rule.Holders == nil {
		return true, ""
	}
	for _, x := range rule.Holders {
		if x.Matches(id) {
			return true, ""
		}
	}
	return false, rule.Where
}

// ToolsFor is the tool rules in force on route name, relay-wide first,
// then the route's own.
func (p *Policy) ToolsFor(name string) toolrule.ToolSet {
	if p == nil {
		return nil
	}
	var ts toolrule.ToolSet
	if !p.Tools.Empty() {
		ts = append(ts, p.Tools)
	}
	if r := p.Rule(name); r != nil && !r.Tools.Empty() {
		ts = append(ts, r.Tools)
	}
	return ts
}

// PublicPathsFor is what bounds the public paths of route name: the
// route rule's public_paths, else the relay-wide one; nil when neither is
// set (the default: any one directory).
func (p *Policy) PublicPathsFor(name string) *PathPrefixes {
	if p == nil {
		return nil
	}
	if r := p.Rule(name); r != nil && r.PublicPaths != nil {
		return r.PublicPaths
	}
	return p.PublicPaths
}

// Error is a problem in a policy file, at a line.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Load reads and validates the policy file at path.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	buf := new(bytes.Buffer)
	if _, err := buf.ReadFrom(io.LimitReader(f, MaxFileSize+1)); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if buf.Len() > MaxFileSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("larger than %d bytes", MaxFileSize)}
	}
	return Parse(path, buf.Bytes())
}

// Parse validates a policy file's contents; errors name file and line.
func Parse(file string, data []byte) (*Policy, error) {
	p := &parser{file: file}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	pol := &Policy{File: file}
	if len(root.Content) == 0 {
		return pol, nil // empty file: allows everything
	}
	doc := root.Content[0]
	p.mapping(doc, "", map[string]func(*yaml.Node){
		"tunnels": func(n *yaml.Node) {
			p.mapping(n, "tunnels", map[string]func(*yaml.Node){
				"allow": func(n *yaml.Node) {
					pol.Tunnels = p.principals(n, "tunnels.allow")
					if pol.Tunnels == nil {
						pol.Tunnels = []Principal{}
					}
					pol.TunnelsWhere = p.where(n) + " (tunnels.allow)"
				},
			})
		},
		"routes": func(n *yaml.Node) {
			if n.Kind != yaml.SequenceNode {
				p.errf(n, "routes must be a list of rules (- name: …)")
				return
			}
			for i, item := range n.Content {
				path := fmt.Sprintf("routes[%d]", i)
				rule := RouteRule{Where: p.where(item) + " (" + path + ")"}
				named := false
				p.mapping(item, path, map[string]func(*yaml.Node){
					"name": func(n *yaml.Node) {
						named = true
						if g, ok := p.glob(n, path+".name", routeGlob); ok {
							rule.Name = g
						}
					},
					"holders": func(n *yaml.Node) {
						rule.Holders = p.principals(n, path+".holders")
						if rule.Holders == nil {
							rule.Holders = []Principal{}
						}
					},
					"callers": func(n *yaml.Node) {
						rule.Callers = p.principals(n, path+".callers")
						if rule.Callers == nil {
							rule.Callers = []Principal{}
						}
					},
					"tools":        func(n *yaml.Node) { rule.Tools = p.tools(n, path+".tools") },
					"public_paths": func(n *yaml.Node) { rule.PublicPaths = p.prefixes(n, path+".public_paths") },
				})
				if !named && item.Kind == yaml.MappingNode {
					p.errf(item, "%s needs a name (a route name, or a prefix ending in *)", path)
				}
				pol.Routes = append(pol.Routes, rule)
			}
		},
		"tools":        func(n *yaml.Node) { pol.Tools = p.tools(n, "tools") },
		"public_paths": func(n *yaml.Node) { pol.PublicPaths = p.prefixes(n, "public_paths") },
	})
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return pol, nil
}

type parser struct {
	file string
	errs []error
}

func (p *parser) where(n *yaml.Node) string { return fmt.Sprintf("%s:%d", p.file, n.Line) }

func (p *parser) errf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Msg: fmt.Sprintf(format, args...)})
}

// mapping walks a mapping node, calling the handler of each known key.
func (p *parser) mapping(n *yaml.Node, path string, keys map[string]func(*yaml.Node)) {
	what := path
	if what == "" {
		what = "the top level"
	}
	if n.Kind != yaml.MappingNode {
		if n.Tag == "!!null" {
			return
		}
		p.errf(n, "%s must be a mapping of keys (%s)", what, knownKeys(keys))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		h, ok := keys[k.Value]
		switch {
		case !ok:
			p.errf(k, "unknown key %q in %s (known: %s)", k.Value, what, knownKeys(keys))
		case seen[k.Value]:
			p.errf(k, "%q is given twice in %s", k.Value, what)
		default:
			seen[k.Value] = true
			h(v)
		}
	}
}

func knownKeys(keys map[string]func(*yaml.Node)) string {
	order := []string{"name", "holders", "callers", "tunnels", "routes", "tools", "allow", "deny"}
	var out []string
	for _, k := range order {
		if _, ok := keys[k]; ok {
			out = append(out, k)
		}
	}
	return strings.Join(out, ", ")
}

// list is a sequence of strings (a single string counts as a list of one).
func (p *parser) list(n *yaml.Node, path string) []*yaml.Node {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str":
		return []*yaml.Node{n}
	case n.Kind == yaml.SequenceNode:
		var out []*yaml.Node
		for _, item := range n.Content {
			if item.Kind != yaml.ScalarNode || item.Tag != "!!str" && item.Tag != "!!int" {
				p.errf(item, "%s must list strings", path)
				continue
			}
			out = append(out, item)
		}
		return out
	case n.Tag == "!!null":
		return nil
	}
	p.errf(n, "%s must be a list of strings", path)
	return nil
}

func (p *parser) principals(n *yaml.Node, path string) []Principal {
	var out []Principal
	for _, item := range p.list(n, path) {
		v := strings.TrimSpace(item.Value)
		if v == "any" || v == "owner" && strings.HasSuffix(path, ".callers") {
			out = append(out, Principal{Kind: v, Where: p.where(item)})
			continue
		}
		kind, val, ok := strings.Cut(v, ":")
		switch {
		case !ok || val == "":
			p.errf(item, "%q in %s is not a principal: write any, key:SHA256:…, email:NAME@DOMAIN, domain:DOMAIN or sub:ID", v, path)
			continue
		case kind == "key":
			if !strings.HasPrefix(val, "SHA256:") || len(val) < 20 || strings.ContainsAny(val, " \t") {
				p.errf(item, "%q in %s is not a key fingerprint: write key:SHA256:… as ssh-keygen -lf prints it", v, path)
				continue
			}
		case kind == "email":
			if at := strings.LastIndexByte(val, '@'); at <= 0 || at == len(val)-1 {
				p.errf(item, "%q in %s is not an email address", v, path)
				continue
			}
		case kind == "domain":
			if strings.ContainsAny(val, "@/ ") || !strings.Contains(val, ".") {
				p.errf(item, "%q in %s is not a domain (write domain:example.com)", v, path)
				continue
			}
		case kind == "sub":
		default:
			p.errf(item, "%q in %s: unknown kind %q (any, key, email, domain, sub)", v, path, kind)
			continue
		}
		out = append(out, Principal{Kind: kind, Value: val, Where: p.where(item)})
	}
	return out
}

func (p *parser) tools(n *yaml.Node, path string) toolrule.Tools {
	t := toolrule.Tools{Source: p.where(n) + " (" + path + ")"}
	p.mapping(n, path, map[string]func(*yaml.Node){
		"allow": func(n *yaml.Node) {
			t.Allow = p.globs(n, path+".allow")
			if t.Allow == nil {
				// An empty allow list allows nothing.
				t.Allow = []toolrule.Glob{}
			}
		},
		"deny": func(n *yaml.Node) { t.Deny = p.globs(n, path+".deny") },
	})
	return t
}

// prefixes reads a public_paths list: directories such as /widgets/.
func (p *parser) prefixes(n *yaml.Node, path string) *PathPrefixes {
	out := &PathPrefixes{Prefixes: []string{}, Where: p.where(n) + " (" + path + ")"}
	for _, item := range p.list(n, path) {
		if item.Kind != yaml.ScalarNode {
			p.errf(item, "%s must list directories such as /widgets/", path)
			continue
		}
		v := item.Value
		if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, "*?[{\\%") || strings.Contains(v, "//") || strings.Contains(v, "/.") {
			p.errf(item, "%q in %s: a directory of the route such as /widgets/ (no wildcards, dot segments or escapes)", v, path)
			continue
		}
		if _, err := publicpath.Parse(strings.TrimSuffix(v, "/") + "/**"); err != nil {
			p.errf(item, "%q in %s: %v", v, path, err)
			continue
		}
		out.Prefixes = append(out.Prefixes, v)
	}
	return out
}

func (p *parser) globs(n *yaml.Node, path string) []toolrule.Glob {
	var out []toolrule.Glob
	for _, item := range p.list(n, path) {
		if g, ok := p.glob(item, path, toolrule.Check); ok {
			out = append(out, g)
		}
	}
	return out
}

func (p *parser) glob(n *yaml.Node, path string, check func(string) error) (toolrule.Glob, bool) {
	if n.Kind != yaml.ScalarNode {
		p.errf(n, "%s must be a string", path)
		return toolrule.Glob{}, false
	}
	if err := check(n.Value); err != nil {
		p.errf(n, "%q in %s: %v", n.Value, path, err)
		return toolrule.Glob{}, false
	}
	return toolrule.Glob{Text: n.Value, Where: p.where(n)}, true
}
