package mcpcheck

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/pomdev/pomdev/internal/loopback"
)

// Host readiness: what a given host will do with a server's widgets,
// beyond what the MCP Apps specification says (the lint): each rule names
// its host and where the behaviour is documented or reported, so it can
// change when the host's does.

// Hosts that --host names ("all" is both).
const (
	HostChatGPT = "chatgpt"
	HostClaude  = "claude"
)

// Hosts are the hosts --host knows.
var Hosts = []string{HostChatGPT, HostClaude}

// HostRule is one thing a host does with a server's widgets.
type HostRule struct {
	ID, Host, Severity, Title string
	// Source is where the behaviour is documented or reported.
	Source string
}

// HostRules is every host rule, in report order (docs/INSPECT.md).
var HostRules = []HostRule{
	{"HOST001", HostClaude, SeverityWarning, "CSP and permissions declared on the tool are ignored; only the UI resource's count",
		"agentfront/frontmcp#455 (Claude's console: \"declares _meta.ui.csp/permissions, which is ignored\")"},
	{"HOST002", HostClaude, SeverityError, "widgets offered to a client that does not declare io.modelcontextprotocol/ui (claude.ai does not)",
		"anthropics/claude-ai-mcp#61"},
	{"HOST003", "", SeverityError, "the widget loads nothing from localhost or private addresses when the server's URL is public",
		"the host's servers and its users' browsers cannot reach the developer's machine"},
	{"HOST004", HostClaude, SeverityError, "_meta.ui.domain, when Claude is given one, is the domain Claude gives the server: sha256(MCP URL)[:32].claudemcpcontent.com",
		"modelcontextprotocol/ext-apps#671, laravel/mcp#218 (\"Invalid ui.domain format: expected {hash}.claudemcpcontent.com\")"},
	{"HOST005", HostClaude, SeverityWarning, "no frameDomains, blob: or data: sources in the CSP: Claude's frame-src is 'self' blob: data: and it drops the rest",
		"anthropics/claude-ai-mcp#40"},
	{"HOST006", HostChatGPT, SeverityError, "openai/outputTemplate, when given, names the same resource as _meta.ui.resourceUri",
		"ChatGPT Apps SDK reference: openai/outputTemplate is the widget ChatGPT renders"},
	{"HOST007", HostChatGPT, SeverityWarning, "_meta.ui.domain, when given, is an https origin, not Claude's domain",
		"mcp-use/mcp-use#2511 (ChatGPT reads _meta.ui.domain as the widget's origin)"},
	{"HOST008", HostClaude, SeverityInfo, "Claude is given a _meta.ui.domain (without one it renders the widget on a new domain per conversation)",
		"anthropics/claude-ai-mcp#105"},
}

// ClaudeUserAgent is the User-Agent of the check that reads the server as
// Claude does (servers that tell hosts apart by it answer as to Claude).
const ClaudeUserAgent = "Claude-User (pomdev inspect --host claude)"

// ClaudeWidgetDomain is the domain Claude renders the widgets of the MCP
// server at mcpURL on (HOST004's source).
func ClaudeWidgetDomain(mcpURL string) string {
	sum := sha256.Sum256([]byte(mcpURL))
	return hex.EncodeToString(sum[:])[:32] + ".claudemcpcontent.com"
}

// ParseHosts reads --host: chatgpt, claude, all, or a comma list.
func ParseHosts(v string) ([]string, error) {
	var out []string
	for _, h := range strings.Split(v, ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case h == "all":
			out = append(out, Hosts...)
		case slices.Contains(Hosts, h):
			out = append(out, h)
		case h == "":
		default:
			return nil, fmt.Errorf("--host %q: want %s or all", h, strings.Join(Hosts, ", "))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// CheckHosts adds to rep the findings of the host rules for hosts. For
// Claude it reads the server a second time as Claude does: without the MCP
// Apps extension, with Claude's User-Agent (opts otherwise as for rep).
func CheckHosts(ctx context.Context, opts Options, rep *Report, hosts []string) error {
	var asClaude *Report
	if slices.Contains(hosts, HostClaude) {
		o := opts
		o.Client, o.NoApps, o.UserAgent, o.Call = ProfileBare, true, ClaudeUserAgent, ""
		r, err := Run(ctx, o)
		if err != nil {
			return fmt.Errorf("reading the server as Claude does (no MCP Apps extension declared): %w", err)
		}
		asClaude = r
	}
	rep.Findings = append(rep.Findings, HostFindings(rep, asClaude, hosts)...)
	return nil
}

// HostFindings applies the host rules for hosts to rep, and to asClaude
// (the server read as Claude reads it) for Claude's rules that depend on
// what Claude is given.
func HostFindings(rep, asClaude *Report, hosts []string) []Finding {
	var out []Finding
	add := func(rule, host, subject, msg, fix string) {
		for _, r := range HostRules {
			if r.ID == rule {
				out = append(out, Finding{Rule: rule, Host: host, Severity: r.Severity, Subject: subject,
					Message: msg + " (" + r.Source + ")", Fix: fix})
				return
			}
		}
	}
	for _, host := range hosts {
		view := rep
		if host == HostClaude && asClaude != nil {
			view = asClaude
		}
		switch host {
		case HostClaude:
			claudeRules(rep, view, add)
		case HostChatGPT:
			chatGPTRules(rep, add)
		}
		publicURLRules(host, view, add)
	}
	return out
}

type hostAdder func(rule, host, subject, msg, fix string)

func claudeRules(rep, view *Report, add hostAdder) {
	for _, t := range rep.Tools {
		ui := toolUIMap(t)
		for _, k := range []string{"csp", "permissions"} {
			if _, ok := ui[k]; ok {
				add("HOST001", HostClaude, t.Name, fmt.Sprintf("_meta.ui.%s is on the tool: Claude ignores it there", k),
					"declare it on the UI resource (the resources/read contents' _meta.ui)")
			}
		}
	}
	if view != rep {
		for _, t := range rep.Tools {
			if t.UI == nil {
				continue
			}
			var seen *Tool
			for i := range view.Tools {
				if view.Tools[i].Name == t.Name {
					seen = &view.Tools[i]
				}
			}
			switch {
			case seen == nil:
				add("HOST002", HostClaude, t.Name, "the tool is not listed to a client that does not declare io.modelcontextprotocol/ui: Claude never sees it",
					"offer the tool, with its _meta.ui, whatever the client declares")
			case seen.UI == nil || seen.UI.ResourceURI != t.UI.ResourceURI:
				add("HOST002", HostClaude, t.Name, "the tool's _meta.ui.resourceUri is withheld from a client that does not declare io.modelcontextprotocol/ui: Claude shows no widget",
					"send _meta.ui whatever the client declares (hosts that cannot render it ignore it)")
			}
		}
	}
	want := ClaudeWidgetDomain(rep.URL)
	for _, r := range view.Resources {
		if r.UI == nil {
			continue
		}
		switch {
		case r.UI.Domain == "":
			add("HOST008", HostClaude, r.URI, "no _meta.ui.domain: Claude renders the widget on a new domain in every conversation",
				fmt.Sprintf("set _meta.ui.domain to %q for Claude (for the MCP URL %s)", want, rep.URL))
		case r.UI.Domain != want:
			add("HOST004", HostClaude, r.URI, fmt.Sprintf("_meta.ui.domain is %q; Claude expects %q and refuses the widget", r.UI.Domain, want),
				fmt.Sprintf("set it to %q (sha256 of the MCP URL %s, first 32 hex digits)", want, rep.URL))
		}
		if len(r.UI.CSP["frameDomains"]) > 0 {
			add("HOST005", HostClaude, r.URI, "csp.frameDomains lists "+strings.Join(r.UI.CSP["frameDomains"], ", ")+": Claude blocks nested frames from them",
				"avoid nested iframes in the widget for Claude (open the page with openLink instead)")
		}
		for list, entries := range r.UI.CSP {
			for _, e := range entries {
				if s := strings.ToLower(e); strings.HasPrefix(s, "blob:") || strings.HasPrefix(s, "data:") {
					add("HOST005", HostClaude, r.URI, fmt.Sprintf("csp.%s lists %q: Claude drops such sources", list, e), "load the asset from an origin the CSP lists, or inline it")
				}
			}
		}
	}
}

func chatGPTRules(rep *Report, add hostAdder) {
	for _, t := range rep.Tools {
		if t.raw == nil || t.raw.Meta == nil {
			continue
		}
		tpl, ok := t.raw.Meta["openai/outputTemplate"].(string)
		if ok && t.UI != nil && tpl != t.UI.ResourceURI {
			add("HOST006", HostChatGPT, t.Name, fmt.Sprintf("openai/outputTemplate is %q but _meta.ui.resourceUri is %q: ChatGPT renders the first", tpl, t.UI.ResourceURI),
				"name the same ui:// resource in both, or drop openai/outputTemplate")
		}
	}
	for _, r := range rep.Resources {
		if r.UI == nil || r.UI.Domain == "" {
			continue
		}
		d := r.UI.Domain
		u, err := url.Parse(d)
		switch {
		case strings.HasSuffix(strings.TrimSuffix(d, "/"), ".claudemcpcontent.com"):
			add("HOST007", HostChatGPT, r.URI, fmt.Sprintf("_meta.ui.domain is Claude's domain %q: ChatGPT reads the field as the widget's origin", d),
				"send Claude's domain to Claude only (its requests say Claude in their User-Agent), or an https origin of yours to ChatGPT")
		case err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/"):
			add("HOST007", HostChatGPT, r.URI, fmt.Sprintf("_meta.ui.domain %q is not an https origin", d), "set an origin such as https://widgets.example.com, or leave it out")
		}
	}
}

// publicURLRules: a server on a public URL whose widgets load from this
// machine or a private network (HOST003).
func publicURLRules(host string, view *Report, add hostAdder) {
	u, err := url.Parse(view.URL)
	if err != nil || notReachable(u.Hostname()) {
		return // a local URL: the host would use the tunnel's, checked there
	}
	for _, r := range view.Resources {
		rc := view.contents[r.URI]
		if rc == nil {
			continue
		}
		seen := map[string]bool{}
		for _, origin := range loadedOrigins(resourceText(rc)) {
			ou, err := url.Parse(origin)
			if err != nil || !notReachable(ou.Hostname()) || seen[origin] {
				continue
			}
			seen[origin] = true
			add("HOST003", host, r.URI, fmt.Sprintf("the widget loads from %s, which %s cannot reach", origin, hostTitle(host)),
				"serve the assets from the server's public URL (the generated app does: /widgets/ through the tunnel), or build the widget inline")
		}
		if r.UI != nil {
			for list, entries := range r.UI.CSP {
				for _, e := range entries {
					eu, err := url.Parse(e)
					if err == nil && eu.Host != "" && notReachable(eu.Hostname()) && !seen[e] {
						seen[e] = true
						add("HOST003", host, r.URI, fmt.Sprintf("csp.%s lists %s, which %s cannot reach", list, e, hostTitle(host)),
							"list the public origin the assets load from instead")
					}
				}
			}
		}
	}
}

func hostTitle(h string) string {
	switch h {
	case HostChatGPT:
		return "ChatGPT"
	case HostClaude:
		return "Claude"
	}
	return h
}

// notReachable reports whether a host name is this machine or a private
// network's: loopback names and addresses, private, link-local and CGNAT
// ranges, .local and .internal names.
func notReachable(host string) bool {
	if loopback.IsLoopback(host) {
		return true
	}
	h := strings.ToLower(strings.Trim(host, "[]"))
	if strings.HasSuffix(h, ".local") || strings.HasSuffix(h, ".internal") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	return ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || netip.MustParsePrefix("100.64.0.0/10").Contains(ip)
}

// loadedOrigins are the origins a widget document loads from: its <base>,
// and every absolute reference, or relative one resolved against the base.
func loadedOrigins(doc string) []string {
	w := parseWidget(doc)
	w.scriptRefs()
	base := w.baseURL()
	var out []string
	if base != nil {
		out = append(out, base.Scheme+"://"+base.Host)
	}
	for _, r := range w.refs {
		if notLoaded(r.raw) {
			continue
		}
		u, _ := resolveRef(base, r.raw)
		if u == nil {
			continue
		}
		switch u.Scheme {
		case "http", "https", "ws", "wss":
			out = append(out, u.Scheme+"://"+u.Host)
		}
	}
	return out
}

// toolUIMap is a tool's _meta.ui as sent.
func toolUIMap(t Tool) map[string]any {
	if t.raw == nil || t.raw.Meta == nil {
		return nil
	}
	ui, _ := t.raw.Meta["ui"].(map[string]any)
	return ui
}

// resourceText is a UI resource's HTML.
func resourceText(rc *mcp.ResourceContents) string {
	if rc.Text != "" {
		return rc.Text
	}
	return string(rc.Blob)
}
