package mcpcheck

import (
	"fmt"
	"slices"
	"strings"
)

// The keys of _meta.ui that the MCP Apps specification defines
// (@modelcontextprotocol/ext-apps 2.x, spec.types.ts): McpUiToolMeta on
// tools, McpUiResourceMeta on UI resources.
var (
	toolUIKeys       = []string{"resourceUri", "visibility"}
	resourceUIKeys   = []string{"csp", "permissions", "domain", "prefersBorder"}
	permissionKeys   = []string{"camera", "microphone", "geolocation", "clipboardWrite"}
	visibilityValues = []string{"model", "app"}
)

// adder records a finding of rule about subject.
type adder func(rule, subject, msg, fix string)

// typeName says what JSON type v has.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64, int, int64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// normKey folds case and drops _ and - so that connect_domains and
// ConnectDomains compare equal to connectDomains.
func normKey(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' {
			return -1
		}
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// closest returns the known key that k is a misspelling of, or "": the
// same once case, _ and - are ignored, a missing or extra final s, or
// at most two edits away.
func closest(k string, known []string) string {
	nk := normKey(k)
	for _, c := range known {
		nc := normKey(c)
		if nk == nc || nk+"s" == nc || nk == nc+"s" || (len(nc) > 4 && editDistance(nk, nc) <= 2) {
			return c
		}
	}
	return ""
}

// editDistance is the Levenshtein distance of two short keys.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sortedKeys returns m's keys in order, for stable findings.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// lintToolMeta checks a tool's _meta: the shape of _meta.ui
// (McpUiToolMeta) and the deprecated flat key.
func lintToolMeta(name string, meta map[string]any, add adder) {
	raw, present := meta["ui"]
	ui, _ := raw.(map[string]any)
	if present && ui == nil {
		add("APP011", name, fmt.Sprintf("_meta.ui is %s, not an object", typeName(raw)), `declare _meta.ui as {"resourceUri":"ui://…"}`)
	}
	if flat, ok := meta["ui/resourceUri"]; ok {
		if _, modern := ui["resourceUri"]; !modern {
			add("APP014", name, fmt.Sprintf("only the deprecated _meta[\"ui/resourceUri\"] (%v) names the UI resource", flat),
				`set _meta.ui.resourceUri (registerAppTool of @modelcontextprotocol/ext-apps sets both)`)
		}
	}
	for _, k := range sortedKeys(ui) {
		v := ui[k]
		switch k {
		case "resourceUri":
			s, ok := v.(string)
			switch {
			case !ok:
				add("APP011", name, fmt.Sprintf("_meta.ui.resourceUri is %s, not a string", typeName(v)), `use a ui:// URI string, for example "ui://echo"`)
			case !strings.HasPrefix(s, "ui://"):
				add("APP001", name, fmt.Sprintf("_meta.ui.resourceUri %q is not a ui:// URI", s), "point it at a ui:// resource, for example ui://echo (or drop it for a tool without a UI)")
			}
		case "visibility":
			list, ok := v.([]any)
			switch {
			case !ok:
				add("APP004", name, fmt.Sprintf("_meta.ui.visibility is %s, not a list", typeName(v)), `use ["model"], ["app"] or ["model","app"]`)
			case len(list) == 0:
				add("APP004", name, "_meta.ui.visibility is empty: nobody may call the tool", `use ["model"], ["app"] or ["model","app"] (omitted means both)`)
			}
			for _, e := range list {
				if s, ok := e.(string); !ok || !slices.Contains(visibilityValues, s) {
					add("APP004", name, fmt.Sprintf("visibility %v is not model or app", e), `use ["model"], ["app"] or ["model","app"]`)
				}
			}
		case "csp", "permissions":
			add("APP011", name, fmt.Sprintf("_meta.ui.%s is on the tool, where hosts ignore it", k), "move it to the UI resource's _meta.ui (on resources/read contents)")
		default:
			if c := closest(k, toolUIKeys); c != "" {
				add("APP011", name, fmt.Sprintf("_meta.ui.%s is not a key of the MCP Apps specification; did you mean %s?", k, c), "rename it to "+c)
			} else if c := closest(k, resourceUIKeys); c != "" {
				add("APP011", name, fmt.Sprintf("_meta.ui.%s is on the tool; %s belongs on the UI resource", k, c), "move it to the UI resource's _meta.ui")
			} else {
				add("APP012", name, fmt.Sprintf("_meta.ui.%s is not a key of the MCP Apps specification; hosts ignore it", k), "drop it, or check the spelling against resourceUri and visibility")
			}
		}
	}
}

// lintResourceMeta checks a UI resource's _meta.ui (McpUiResourceMeta),
// from the read contents or the resources/list entry (where says which),
// and returns its valid CSP entries.
func lintResourceMeta(uri, where string, meta map[string]any, add adder) policy {
	pol := policy{}
	raw, present := meta["ui"]
	if !present {
		return pol
	}
	ui, ok := raw.(map[string]any)
	if !ok {
		add("APP013", uri, fmt.Sprintf("%s _meta.ui is %s, not an object", where, typeName(raw)), `declare _meta.ui as {"csp":{…}}`)
		return pol
	}
	for _, k := range sortedKeys(ui) {
		v := ui[k]
		switch k {
		case "csp":
			csp, ok := v.(map[string]any)
			if !ok {
				add("APP013", uri, fmt.Sprintf("%s _meta.ui.csp is %s, not an object", where, typeName(v)), `declare {"connectDomains":[…],"resourceDomains":[…]}`)
				continue
			}
			lintCSP(uri, where, csp, pol, add)
		case "permissions":
			perms, ok := v.(map[string]any)
			if !ok {
				add("APP013", uri, fmt.Sprintf("%s _meta.ui.permissions is %s, not an object", where, typeName(v)), `declare {"camera":{}} and the like`)
				continue
			}
			for _, p := range sortedKeys(perms) {
				if !slices.Contains(permissionKeys, p) {
					hint := "the members are camera, microphone, geolocation and clipboardWrite"
					if c := closest(p, permissionKeys); c != "" {
						hint = "did you mean " + c + "?"
					}
					add("APP013", uri, fmt.Sprintf("%s _meta.ui.permissions.%s is not a permission of the MCP Apps specification", where, p), hint)
				} else if _, ok := perms[p].(map[string]any); !ok {
					add("APP013", uri, fmt.Sprintf("%s _meta.ui.permissions.%s is %s, not an object", where, p, typeName(perms[p])), fmt.Sprintf(`declare "%s": {}`, p))
				}
			}
		case "domain":
			if _, ok := v.(string); !ok {
				add("APP013", uri, fmt.Sprintf("%s _meta.ui.domain is %s, not a string", where, typeName(v)), "give the host's sandbox domain as a string (its format is host-specific)")
			}
		case "prefersBorder":
			if _, ok := v.(bool); !ok {
				add("APP013", uri, fmt.Sprintf("%s _meta.ui.prefersBorder is %s, not a boolean", where, typeName(v)), "use true or false")
			}
		default:
			switch c := closest(k, append(append([]string{}, resourceUIKeys...), cspLists...)); {
			case slices.Contains(cspLists, c):
				add("APP013", uri, fmt.Sprintf("%s _meta.ui.%s is outside csp", where, k), "move it into _meta.ui.csp."+c)
			case c != "":
				add("APP013", uri, fmt.Sprintf("%s _meta.ui.%s is not a key of the MCP Apps specification; did you mean %s?", where, k, c), "rename it to "+c)
			case slices.Contains(toolUIKeys, k):
				add("APP012", uri, fmt.Sprintf("%s _meta.ui.%s belongs on the tool, not the resource; hosts ignore it here", where, k), "set it in the tool's _meta.ui")
			default:
				add("APP012", uri, fmt.Sprintf("%s _meta.ui.%s is not a key of the MCP Apps specification; hosts ignore it", where, k), "drop it, or check the spelling against csp, permissions, domain and prefersBorder")
			}
		}
	}
	return pol
}

// lintCSP checks the lists of _meta.ui.csp and records their valid
// entries in pol.
func lintCSP(uri, where string, csp map[string]any, pol policy, add adder) {
	for _, k := range sortedKeys(csp) {
		if !slices.Contains(cspLists, k) {
			if c := closest(k, cspLists); c != "" {
				add("APP013", uri, fmt.Sprintf("%s _meta.ui.csp.%s is not a CSP list of the MCP Apps specification; did you mean %s?", where, k, c), "rename it to "+c)
			} else {
				add("APP013", uri, fmt.Sprintf("%s _meta.ui.csp.%s is not a CSP list of the MCP Apps specification", where, k), "the lists are connectDomains, resourceDomains, frameDomains and baseUriDomains")
			}
			continue
		}
		list, ok := csp[k].([]any)
		if !ok {
			add("APP013", uri, fmt.Sprintf("%s _meta.ui.csp.%s is %s, not a list", where, k, typeName(csp[k])), `use a list of origins, for example ["https://api.example.com"]`)
			continue
		}
		for _, e := range list {
			s, ok := e.(string)
			if !ok {
				add("APP013", uri, fmt.Sprintf("%s _meta.ui.csp.%s holds %s, not a string", where, k, typeName(e)), "list origins as strings")
				continue
			}
			src, err := parseSource(s)
			if err != nil {
				add("APP008", uri, fmt.Sprintf("csp.%s: %v", k, err), "list origins such as https://cdn.example.com or https://*.example.com")
				continue
			}
			pol[k] = append(pol[k], src)
		}
	}
}

// effectiveUI is the _meta.ui a host applies: the read contents' when
// they have one, else the resources/list entry's.
func effectiveUI(read, listed map[string]any) *ResourceUI {
	from, meta := "resources/read", read
	if _, ok := read["ui"].(map[string]any); !ok {
		from, meta = "resources/list", listed
	}
	ui, ok := meta["ui"].(map[string]any)
	if !ok {
		return &ResourceUI{CSP: map[string][]string{}}
	}
	out := &ResourceUI{From: from, CSP: map[string][]string{}}
	if csp, ok := cspOf(meta); ok {
		out.CSP = csp
	}
	if perms, ok := ui["permissions"].(map[string]any); ok {
		out.Permissions = sortedKeys(perms)
	}
	out.Domain, _ = ui["domain"].(string)
	if b, ok := ui["prefersBorder"].(bool); ok {
		out.PrefersBorder = &b
	}
	return out
}
