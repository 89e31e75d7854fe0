package mcpcheck

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Severities.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
	SeverityInfo    = "info"
)

// Finding is one lint result.
type Finding struct {
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Subject  string `json:"subject"` // the tool name or resource URI
	Message  string `json:"message"`
	Fix      string `json:"fix"`
}

// Rule describes a lint rule (docs/INSPECT.md lists them all).
type Rule struct {
	ID, Severity, Title string
}

// Rules is every rule, in report order.
var Rules = []Rule{
	{"MCP001", SeverityError, "tool name is valid (1-128 of A-Z a-z 0-9 _ - .)"},
	{"MCP002", SeverityError, "tool names are unique"},
	{"MCP003", SeverityError, "inputSchema is a JSON Schema object of type \"object\""},
	{"MCP004", SeverityWarning, "tool has a description"},
	{"APP001", SeverityError, "_meta.ui.resourceUri is a ui:// URI"},
	{"APP002", SeverityError, "the UI resource resolves (resources/read)"},
	{"APP003", SeverityError, "alias keys ui/resourceUri and openai/outputTemplate agree with _meta.ui.resourceUri"},
	{"APP004", SeverityError, "_meta.ui.visibility values are model or app"},
	{"APP005", SeverityError, "UI resource MIME type is exactly text/html;profile=mcp-app"},
	{"APP006", SeverityError, "UI resource is a whole HTML document"},
	{"APP007", SeverityWarning, "UI resource is at most 1 MB"},
	{"APP008", SeverityError, "CSP lists hold explicit origins (no wildcards, valid URLs)"},
	{"APP009", SeverityInfo, "UI resource declares a CSP"},
	{"APP010", SeverityWarning, "widget loads nothing from localhost when the server is not local"},
}

// finding makes a Finding with the rule's severity.
func finding(rule, subject, msg, fix string) Finding {
	f := Finding{Rule: rule, Subject: subject, Message: msg, Fix: fix}
	for _, r := range Rules {
		if r.ID == rule {
			f.Severity = r.Severity
		}
	}
	return f
}

var toolNameRe = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,128}$`)

// uiBinding reads a tool's MCP Apps binding from _meta.ui (or the aliases).
func uiBinding(t *mcp.Tool) *UI {
	ui := &UI{}
	if m, ok := t.Meta["ui"].(map[string]any); ok {
		ui.ResourceURI, _ = m["resourceUri"].(string)
		if vis, ok := m["visibility"].([]any); ok {
			for _, v := range vis {
				s, _ := v.(string)
				ui.Visibility = append(ui.Visibility, s)
			}
		}
	}
	if ui.ResourceURI == "" {
		for _, k := range []string{"ui/resourceUri", "openai/outputTemplate"} {
			if s, ok := t.Meta[k].(string); ok && s != "" {
				ui.ResourceURI = s
				break
			}
		}
	}
	if ui.ResourceURI == "" && ui.Visibility == nil {
		return nil
	}
	return ui
}

// Lint applies every rule. local says whether the inspected server is on
// this machine (widgets may then load from localhost).
func Lint(tools []Tool, contents map[string]*mcp.ResourceContents, readErrs map[string]error, local bool) []Finding {
	out := []Finding{}
	add := func(rule, subject, msg, fix string) { out = append(out, finding(rule, subject, msg, fix)) }
	seen := map[string]bool{}
	checkedRes := map[string]bool{}
	for _, t := range tools {
		if !toolNameRe.MatchString(t.Name) {
			add("MCP001", t.Name, fmt.Sprintf("tool name %q is not valid", t.Name), "use 1-128 letters, digits, _, - and .")
		}
		if seen[t.Name] {
			add("MCP002", t.Name, fmt.Sprintf("tool %q is listed more than once", t.Name), "give each tool a unique name")
		}
		seen[t.Name] = true
		if msg := schemaProblem(t.raw); msg != "" {
			add("MCP003", t.Name, msg, `declare inputSchema as {"type":"object","properties":{...}}`)
		}
		if strings.TrimSpace(t.Description) == "" {
			add("MCP004", t.Name, "no description: models choose tools by their descriptions", "describe what the tool does and when to use it")
		}
		if t.UI == nil {
			continue
		}
		uri := t.UI.ResourceURI
		if !strings.HasPrefix(uri, "ui://") {
			add("APP001", t.Name, fmt.Sprintf("_meta.ui.resourceUri %q is not a ui:// URI", uri), "point it at a ui:// resource, for example ui://echo")
		}
		for _, k := range []string{"ui/resourceUri", "openai/outputTemplate"} {
			if s, ok := t.raw.Meta[k].(string); ok && s != uri {
				add("APP003", t.Name, fmt.Sprintf("_meta[%q] is %q but _meta.ui.resourceUri is %q", k, s, uri), "set the alias keys to the same URI, or drop them")
			}
		}
		for _, v := range t.UI.Visibility {
			if v != "model" && v != "app" {
				add("APP004", t.Name, fmt.Sprintf("visibility %q is not model or app", v), `use ["model"], ["app"] or ["model","app"]`)
			}
		}
		if err := readErrs[uri]; err != nil {
			add("APP002", t.Name, fmt.Sprintf("resources/read %s failed: %v", uri, err), "register the resource with this exact URI")
			continue
		}
		rc := contents[uri]
		if rc == nil || checkedRes[uri] {
			continue
		}
		checkedRes[uri] = true
		out = append(out, lintResource(uri, rc, local)...)
	}
	return out
}

func schemaProblem(t *mcp.Tool) string {
	if t == nil || t.InputSchema == nil {
		return "inputSchema is missing"
	}
	b, err := json.Marshal(t.InputSchema)
	if err != nil {
		return "inputSchema is not JSON: " + err.Error()
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return "inputSchema is not a JSON object"
	}
	if m["type"] != "object" {
		return fmt.Sprintf("inputSchema type is %v, not \"object\"", m["type"])
	}
	if p, ok := m["properties"]; ok {
		if _, ok := p.(map[string]any); !ok {
			return "inputSchema properties is not an object"
		}
	}
	if r, ok := m["required"]; ok {
		if _, ok := r.([]any); !ok {
			return "inputSchema required is not an array"
		}
	}
	return ""
}

var localAsset = regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//(localhost|127\.0\.0\.1|\[::1\])[:/"']`)

func lintResource(uri string, rc *mcp.ResourceContents, local bool) []Finding {
	var out []Finding
	add := func(rule, msg, fix string) { out = append(out, finding(rule, uri, msg, fix)) }
	switch {
	case rc.MIMEType == UIMIMEType:
	case rc.MIMEType == LegacyMIME:
		add("APP005", "MIME type "+LegacyMIME+" is the legacy ChatGPT Apps SDK type", "serve "+UIMIMEType)
	default:
		add("APP005", fmt.Sprintf("MIME type %q is not %s", rc.MIMEType, UIMIMEType), "serve "+UIMIMEType)
	}
	html := rc.Text
	if html == "" {
		html = string(rc.Blob)
	}
	head := strings.ToLower(strings.TrimSpace(html))
	if !strings.HasPrefix(head, "<!doctype html") && !strings.HasPrefix(head, "<html") {
		add("APP006", "the UI resource is not a whole HTML document", "serve <!doctype html><html>...</html>")
	}
	if len(html) > 1<<20 {
		add("APP007", fmt.Sprintf("the UI resource is %d bytes (over 1 MB)", len(html)), "split or compress assets; load large ones from a public origin")
	}
	csp, hasCSP := cspOf(rc)
	if !hasCSP {
		add("APP009", "no _meta.ui.csp declared: hosts apply their strictest policy", "declare connectDomains/resourceDomains the widget needs")
	}
	for list, origins := range csp {
		for _, o := range origins {
			if strings.Contains(o, "*") {
				add("APP008", fmt.Sprintf("csp.%s holds a wildcard %q", list, o), "list explicit origins such as https://cdn.example.com")
				continue
			}
			u, err := url.Parse(o)
			if err != nil || u.Scheme == "" || u.Host == "" {
				add("APP008", fmt.Sprintf("csp.%s holds %q, not an origin URL", list, o), "use scheme://host[:port]")
			}
		}
	}
	if !local && localAsset.MatchString(html) {
		add("APP010", "the widget loads assets from localhost, which hosts such as Claude.ai cannot reach", "use an inline build (pomdev up --inline, INLINE=1) or serve assets from a public origin")
	}
	return out
}

// cspOf reads _meta.ui.csp from the resource contents.
func cspOf(rc *mcp.ResourceContents) (map[string][]string, bool) {
	ui, ok := rc.Meta["ui"].(map[string]any)
	if !ok {
		return nil, false
	}
	raw, ok := ui["csp"].(map[string]any)
	if !ok {
		return nil, false
	}
	out := map[string][]string{}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if list, ok := raw[k].([]any); ok {
			for _, v := range list {
				s, _ := v.(string)
				out[k] = append(out[k], s)
			}
		}
	}
	return out, true
}
