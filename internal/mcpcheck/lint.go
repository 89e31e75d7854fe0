package mcpcheck

import (
	"encoding/json"
	"fmt"
	"regexp"
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
	Rule string `json:"rule"`
	// Host is the host a host rule (HOST…) is about: chatgpt, claude.
	Host     string `json:"host,omitempty"`
	Severity string `json:"severity"`
	Subject  string `json:"subject"` // the tool name or resource URI
	Message  string `json:"message"`
	Fix      string `json:"fix"`
}

// Rule describes a lint rule (docs/INSPECT.md lists them all).
type Rule struct {
	ID, Severity, Title string
}

// Rules is every rule, in report order. docs/INSPECT.md cites, for each,
// the part of the MCP Apps specification (@modelcontextprotocol/ext-apps
// 2.x, spec.types.ts) or of MCP it comes from.
var Rules = []Rule{
	{"MCP001", SeverityError, "tool name is valid (1-128 of A-Z a-z 0-9 _ - .)"},
	{"MCP002", SeverityError, "tool names are unique"},
	{"MCP003", SeverityError, "inputSchema is a JSON Schema object of type \"object\""},
	{"MCP004", SeverityWarning, "tool has a description"},
	{"APP001", SeverityError, "_meta.ui.resourceUri, when given, is a ui:// URI"},
	{"APP002", SeverityError, "the UI resource resolves (resources/read)"},
	{"APP003", SeverityError, "alias keys ui/resourceUri and openai/outputTemplate agree with _meta.ui.resourceUri"},
	{"APP004", SeverityError, "_meta.ui.visibility is a non-empty list of model and app"},
	{"APP005", SeverityError, "UI resource MIME type is exactly text/html;profile=mcp-app"},
	{"APP006", SeverityError, "UI resource is a whole HTML document"},
	{"APP007", SeverityInfo, "UI resource size (no limit in the specification; large widgets load slowly)"},
	{"APP008", SeverityError, "CSP lists hold origins (wildcard subdomains allowed; no bare *, paths or non-origins)"},
	{"APP009", SeverityInfo, "UI resource declares a CSP (read contents, or the resources/list entry)"},
	{"APP010", SeverityWarning, "widget and CSP reference nothing on localhost when the server is not local"},
	{"APP011", SeverityError, "tool _meta.ui holds resourceUri and visibility with their types (csp and permissions belong on the resource)"},
	{"APP012", SeverityWarning, "_meta.ui has no keys the specification does not define"},
	{"APP013", SeverityError, "resource _meta.ui: csp lists, permissions, domain and prefersBorder with their types, no misspelt keys"},
	{"APP014", SeverityWarning, "not only the deprecated _meta[\"ui/resourceUri\"]"},
	{"APP015", SeverityError, "widget loads only from origins its CSP lists, each in the right list"},
	{"APP016", SeverityError, "relative asset URLs have a <base href> to resolve against"},
	{"APP017", SeverityWarning, "widget loads nothing over plain http or ws"},
	{"APP018", SeverityError, "the element the widget mounts on is in its HTML"},
	{"APP019", SeverityWarning, "relative url() and @import in CSS have a <base href> to resolve against"},
	{"CALL001", SeverityError, "a called tool's structuredContent validates against its outputSchema"},
	{"CALL002", SeverityError, "a tool with an outputSchema returns structuredContent"},
	{"CALL003", SeverityError, "a called tool returns content (the text the model and hosts without MCP Apps get)"},
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
	if _, ok := t.Meta["ui"]; !ok && ui.ResourceURI == "" {
		return nil
	}
	return ui
}

// LintInput is what Lint reads.
type LintInput struct {
	Tools []Tool
	// Contents are the read UI resources by URI; ReadErrs the reads that
	// failed.
	Contents map[string]*mcp.ResourceContents
	ReadErrs map[string]error
	// Listed is the _meta of each resources/list entry, by URI.
	Listed map[string]map[string]any
	// Local says whether the inspected server is on this machine (widgets
	// may then load from localhost).
	Local bool
}

// Lint applies every rule but the CALL rules (LintCall).
func Lint(in LintInput) []Finding {
	out := []Finding{}
	dup := map[Finding]bool{}
	add := func(rule, subject, msg, fix string) {
		f := finding(rule, subject, msg, fix)
		if !dup[f] {
			dup[f] = true
			out = append(out, f)
		}
	}
	seen := map[string]bool{}
	checkedRes := map[string]bool{}
	for _, t := range in.Tools {
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
		var meta map[string]any
		if t.raw != nil {
			meta = t.raw.Meta
		}
		lintToolMeta(t.Name, meta, add)
		uri := t.UI.ResourceURI
		for _, k := range []string{"ui/resourceUri", "openai/outputTemplate"} {
			if s, ok := meta[k].(string); ok && s != uri {
				add("APP003", t.Name, fmt.Sprintf("_meta[%q] is %q but _meta.ui.resourceUri is %q", k, s, uri), "set the alias keys to the same URI, or drop them")
			}
		}
		if uri == "" {
			continue // an app-only helper, or a tool without a view
		}
		if err := in.ReadErrs[uri]; err != nil {
			add("APP002", t.Name, fmt.Sprintf("resources/read %s failed: %v", uri, err), "register the resource with this exact URI")
			continue
		}
		rc := in.Contents[uri]
		if rc == nil || checkedRes[uri] {
			continue
		}
		checkedRes[uri] = true
		lintResource(uri, rc, in.Listed[uri], in.Local, add)
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

func lintResource(uri string, rc *mcp.ResourceContents, listed map[string]any, local bool, add adder) {
	switch {
	case rc.MIMEType == UIMIMEType:
	case rc.MIMEType == LegacyMIME:
		add("APP005", uri, "MIME type "+LegacyMIME+" is the legacy ChatGPT Apps SDK type", "serve "+UIMIMEType)
	default:
		add("APP005", uri, fmt.Sprintf("MIME type %q is not %s", rc.MIMEType, UIMIMEType), "serve "+UIMIMEType)
	}
	doc := rc.Text
	if doc == "" {
		doc = string(rc.Blob)
	}
	head := strings.ToLower(strings.TrimSpace(doc))
	if !strings.HasPrefix(head, "<!doctype html") && !strings.HasPrefix(head, "<html") {
		add("APP006", uri, "the UI resource is not a whole HTML document", "serve <!doctype html><html>...</html>")
	}
	if len(doc) > 1<<20 {
		add("APP007", uri, fmt.Sprintf("the UI resource is %d bytes: hosts load all of it before the widget shows", len(doc)),
			"load large assets lazily from an origin in resourceDomains, or split the widget")
	}
	// Hosts read _meta.ui from the read contents, with the resources/list
	// entry as the fallback (McpUiToolMeta.csp, McpUiAppResourceConfig).
	pol := lintResourceMeta(uri, "resources/read", rc.Meta, add)
	listPol := lintResourceMeta(uri, "resources/list", listed, add)
	_, readCSP := cspOf(rc.Meta)
	_, listCSP := cspOf(listed)
	switch {
	case readCSP:
	case listCSP:
		pol = listPol
	default:
		add("APP009", uri, "no _meta.ui.csp declared: the host allows no origin beyond its own", "declare the connectDomains/resourceDomains the widget needs (none is fine for a self-contained widget)")
	}
	lintWidget(uri, doc, pol, local, add)
}

// cspOf reads _meta.ui.csp from a _meta map: each list's strings, and
// whether a csp object is there at all.
func cspOf(meta map[string]any) (map[string][]string, bool) {
	ui, ok := meta["ui"].(map[string]any)
	if !ok {
		return nil, false
	}
	raw, ok := ui["csp"].(map[string]any)
	if !ok {
		return nil, false
	}
	out := map[string][]string{}
	for _, k := range sortedKeys(raw) {
		if list, ok := raw[k].([]any); ok {
			for _, v := range list {
				if s, ok := v.(string); ok {
					out[k] = append(out[k], s)
				}
			}
		}
	}
	return out, true
}
