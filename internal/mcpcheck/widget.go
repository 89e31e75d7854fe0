package mcpcheck

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/pomdev/pomdev/internal/loopback"
	"golang.org/x/net/html"
)

// ref is one URL the widget's HTML makes the browser load.
type ref struct {
	list string // the CSP list that must allow it
	raw  string
	what string // where it is, for messages: `<script src>`, `fetch(…)`
}

// widgetDoc is what the lint reads from a widget's HTML.
type widgetDoc struct {
	base    string
	refs    []ref
	scripts []string        // inline script text
	ids     map[string]bool // element ids
}

var (
	cssURL     = regexp.MustCompile(`url\(\s*["']?([^"')\s]+)["']?\s*\)`)
	cssImport  = regexp.MustCompile(`@import\s+["']([^"']+)["']`)
	jsConnect  = regexp.MustCompile("(fetch|new\\s+WebSocket|new\\s+EventSource)\\(\\s*[\"'`]([a-zA-Z][a-zA-Z0-9+.-]*://[^\"'`\\s]+)[\"'`]")
	jsXHR      = regexp.MustCompile("\\.open\\(\\s*[\"'][A-Za-z]+[\"']\\s*,\\s*[\"'`]([a-zA-Z][a-zA-Z0-9+.-]*://[^\"'`\\s]+)[\"'`]")
	jsImport   = regexp.MustCompile("\\bimport\\(\\s*[\"'`]([a-zA-Z][a-zA-Z0-9+.-]*://[^\"'`\\s]+)[\"'`]\\s*\\)")
	jsMountIDs = []*regexp.Regexp{
		// React, Preact, Solid, Svelte 5: createRoot/render/hydrate/mount
		// (document.getElementById("x")), Svelte's target: …
		regexp.MustCompile(`(?:createRoot|hydrateRoot|render|hydrate|mount|target:)\s*\(?\s*(?:[\w$.]+\s*,\s*)?document\.getElementById\(\s*["']([\w-]+)["']\s*\)`),
		regexp.MustCompile(`(?:createRoot|hydrateRoot|render|hydrate|mount|target:)\s*\(?\s*(?:[\w$.]+\s*,\s*)?document\.querySelector\(\s*["']#([\w-]+)["']\s*\)`),
		// Vue: createApp(App).mount("#app").
		regexp.MustCompile(`\.mount\(\s*["']#([\w-]+)["']\s*\)`),
	}
)

// parseWidget reads the loads, inline scripts and ids of a widget.
func parseWidget(doc string) *widgetDoc {
	w := &widgetDoc{ids: map[string]bool{}}
	z := html.NewTokenizer(strings.NewReader(doc))
	var inScript, inStyle bool
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return w
		case html.TextToken:
			switch {
			case inScript:
				w.scripts = append(w.scripts, string(z.Text()))
			case inStyle:
				w.css(string(z.Text()), "<style>")
			}
		case html.EndTagToken:
			inScript, inStyle = false, false
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			attrs := map[string]string{}
			for {
				k, v, more := z.TagAttr()
				attrs[string(k)] = string(v)
				if !more {
					break
				}
			}
			if id := attrs["id"]; id != "" {
				w.ids[id] = true
			}
			if style := attrs["style"]; style != "" {
				w.css(style, "style attribute")
			}
			tag := string(name)
			switch tag {
			case "script":
				if src := attrs["src"]; src != "" {
					w.add(cspResource, src, "<script src>")
				} else if tt == html.StartTagToken {
					inScript = true
				}
			case "style":
				inStyle = tt == html.StartTagToken
			case "link":
				rel := strings.ToLower(attrs["rel"])
				if href := attrs["href"]; href != "" && loadsLink(rel) {
					w.add(cspResource, href, "<link rel="+rel+">")
				}
			case "img", "video", "audio", "source", "track", "input":
				if src := attrs["src"]; src != "" {
					w.add(cspResource, src, "<"+tag+" src>")
				}
				for _, c := range strings.Split(attrs["srcset"], ",") {
					if f := strings.Fields(c); len(f) > 0 {
						w.add(cspResource, f[0], "<"+tag+" srcset>")
					}
				}
			case "iframe", "frame":
				if src := attrs["src"]; src != "" {
					w.add(cspFrame, src, "<"+tag+" src>")
				}
			case "base":
				if href := attrs["href"]; href != "" && w.base == "" {
					w.base = href
				}
			}
		}
	}
}

// loadsLink reports whether a <link rel> makes the browser fetch href.
func loadsLink(rel string) bool {
	for _, r := range strings.Fields(rel) {
		switch r {
		case "stylesheet", "preload", "modulepreload", "icon", "prefetch", "manifest":
			return true
		}
	}
	return false
}

func (w *widgetDoc) add(list, raw, what string) {
	w.refs = append(w.refs, ref{list: list, raw: strings.TrimSpace(raw), what: what})
}

func (w *widgetDoc) css(text, what string) {
	for _, m := range cssURL.FindAllStringSubmatch(text, -1) {
		w.add(cspResource, m[1], "url() in "+what)
	}
	for _, m := range cssImport.FindAllStringSubmatch(text, -1) {
		w.add(cspResource, m[1], "@import in "+what)
	}
}

// scriptRefs adds the absolute URLs inline scripts pass to fetch,
// XMLHttpRequest, WebSocket, EventSource and import().
func (w *widgetDoc) scriptRefs() {
	for _, s := range w.scripts {
		for _, m := range jsConnect.FindAllStringSubmatch(s, -1) {
			w.add(cspConnect, m[2], strings.Join(strings.Fields(m[1]), " ")+"(…)")
		}
		for _, m := range jsXHR.FindAllStringSubmatch(s, -1) {
			w.add(cspConnect, m[1], "XMLHttpRequest open(…)")
		}
		for _, m := range jsImport.FindAllStringSubmatch(s, -1) {
			w.add(cspResource, m[1], "import(…)")
		}
	}
}

// mountIDs are the ids the inline scripts mount the app on.
func (w *widgetDoc) mountIDs() []string {
	var ids []string
	for _, s := range w.scripts {
		for _, re := range jsMountIDs {
			for _, m := range re.FindAllStringSubmatch(s, -1) {
				if !slices.Contains(ids, m[1]) {
					ids = append(ids, m[1])
				}
			}
		}
	}
	return ids
}

// notLoaded are URLs that fetch nothing from an origin.
func notLoaded(raw string) bool {
	l := strings.ToLower(raw)
	for _, p := range []string{"data:", "blob:", "javascript:", "about:", "mailto:", "#"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return raw == ""
}

// lintWidget checks the widget's HTML against its CSP: every origin it
// loads from is declared in the right list (APP015), relative URLs have a
// <base> to resolve against (APP016), nothing on localhost when the
// server is not local (APP010), no plain http (APP017), and the element
// it mounts on exists (APP018).
func lintWidget(uri, doc string, pol policy, local bool, add adder) {
	w := parseWidget(doc)
	w.scriptRefs()
	seen := map[string]bool{}
	once := func(rule, key, msg, fix string) {
		if !seen[rule+" "+key] {
			seen[rule+" "+key] = true
			add(rule, uri, msg, fix)
		}
	}
	base := w.baseURL()
	if base != nil {
		w.refs = append(w.refs, ref{list: cspBaseURI, raw: w.base, what: "<base href>"})
	}
	for _, r := range w.refs {
		if notLoaded(r.raw) {
			continue
		}
		u, unresolved := resolveRef(base, r.raw)
		if unresolved {
			rule := "APP016"
			if strings.Contains(r.what, "url()") || strings.Contains(r.what, "@import") {
				rule = "APP019" // a missing image or font, not a blank widget
			}
			once(rule, r.what, fmt.Sprintf("%s %q is relative and there is no <base href>: in a sandboxed srcdoc iframe it resolves to nothing", r.what, r.raw),
				"inline the asset (an inline build: pomdev up --inline), or add <base href=\"https://your.origin/\"> and list that origin in the CSP")
			continue
		}
		if u == nil || u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ws" && u.Scheme != "wss" {
			continue
		}
		origin := u.Scheme + "://" + u.Host
		if loopback.IsLoopback(u.Hostname()) {
			if !local {
				once("APP010", origin, fmt.Sprintf("%s loads from %s, which hosts such as ChatGPT and Claude cannot reach", r.what, origin),
					"use the inline build (pomdev up --inline, INLINE=1) or serve the assets from a public origin")
				continue
			}
		} else if u.Scheme == "http" || u.Scheme == "ws" {
			once("APP017", origin, fmt.Sprintf("%s loads from %s over plain %s: hosts serve widgets over https, and browsers block mixed content", r.what, origin, u.Scheme),
				"serve it over https (wss for WebSockets)")
		}
		if !pol.allows(r.list, u) {
			once("APP015", r.list+" "+origin, fmt.Sprintf("%s loads from %s, which csp.%s does not list: the host's CSP blocks it", r.what, origin, r.list),
				fmt.Sprintf("add %q to _meta.ui.csp.%s of the UI resource", origin, r.list))
		}
	}
	for _, list := range cspLists {
		for _, s := range pol[list] {
			if loopback.IsLoopback(s.host) && !local {
				origin := s.scheme + "://" + s.host
				once("APP010", origin, fmt.Sprintf("csp.%s lists %s, which hosts such as ChatGPT and Claude cannot reach", list, origin),
					"use the inline build (pomdev up --inline, INLINE=1), whose CSP lists no localhost")
			}
		}
	}
	for _, id := range w.mountIDs() {
		if !w.ids[id] {
			once("APP018", id, fmt.Sprintf("the widget's script mounts on #%s, which the HTML does not have: the iframe stays blank", id),
				fmt.Sprintf("add <div id=%q></div> to the HTML, or mount on an element it has", id))
		}
	}
}

// baseURL is the document's <base href> when it is absolute, else nil.
func (w *widgetDoc) baseURL() *url.URL {
	if w.base == "" {
		return nil
	}
	if b, err := url.Parse(w.base); err == nil && b.IsAbs() {
		return b
	}
	return nil
}

// resolveRef is a reference as the browser resolves it in the widget:
// absolute, protocol-relative (https, as hosts serve widgets), or
// relative to base; nil for one that does not parse, and unresolved for
// a relative one without a base.
func resolveRef(base *url.URL, raw string) (u *url.URL, unresolved bool) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, false
	case !u.IsAbs() && !strings.HasPrefix(raw, "//"):
		if base == nil {
			return nil, true
		}
		return base.ResolveReference(u), false
	case u.Scheme == "":
		u.Scheme = "https"
	}
	return u, false
}
