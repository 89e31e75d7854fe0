// Package mcpcheck is pomdev's MCP client check: it connects to an MCP
// server over Streamable HTTP with the official Go SDK (either protocol
// era), advertising the MCP Apps extension, lists what the server offers,
// reads the UI resources tools reference, optionally calls a tool, and
// lints the MCP Apps bindings. `pomdev inspect` prints its Report and
// `pomdev up` runs it through the tunnel.
package mcpcheck

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pomdev/pomdev/internal/loopback"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/pomdev/pomdev/internal/build"
)

// AppsExtension is the MCP Apps capability key; UIMIMEType its HTML type.
const (
	AppsExtension = "io.modelcontextprotocol/ui"
	UIMIMEType    = "text/html;profile=mcp-app"
	LegacyMIME    = "text/html+skybridge"
	maxBody       = 8 << 20 // bound on any single HTTP answer
)

// Options configure a check.
type Options struct {
	URL     string
	Headers map[string]string
	Timeout time.Duration
	// Call names a tool to call with Args (a JSON object) after listing.
	Call string
	Args json.RawMessage
	// HTTPClient replaces the default client (tests); its transport is
	// wrapped to add headers and watch for 401s.
	HTTPClient *http.Client
	// Client is the client profile whose capabilities the check declares
	// (Profiles; "" is ProfileDefault).
	Client string
	// NoApps leaves the MCP Apps extension out, as a host without it
	// connects: servers then fall back to text-only tools.
	NoApps bool
	// OAuthHandler authorizes the requests when the server asks (a 401 or
	// 403): Login.Handler. Without it a 401 ends the check with *AuthError.
	OAuthHandler auth.OAuthHandler
	// ClientName is the name in clientInfo ("" is pomdev-inspect).
	ClientName string
	// UserAgent replaces pomdev's ("" pomdev/VERSION).
	UserAgent string
}

// Report is the outcome, rendered as text or as the documented JSON.
type Report struct {
	URL          string         `json:"url"`
	Server       ServerInfo     `json:"server"`
	Protocol     string         `json:"protocol"`
	Capabilities map[string]any `json:"capabilities,omitempty"`
	Tools        []Tool         `json:"tools"`
	Resources    []Resource     `json:"resources"`
	Templates    []Template     `json:"resourceTemplates"`
	Prompts      []string       `json:"prompts,omitempty"`
	Call         *CallResult    `json:"call,omitempty"`
	Findings     []Finding      `json:"findings"`
	Timings      []Timing       `json:"timings"`

	contents map[string]*mcp.ResourceContents // the UI resources read, by URI
}

// ServerInfo is the server's implementation info.
type ServerInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Title   string `json:"title,omitempty"`
}

// Tool is one listed tool and its UI binding.
type Tool struct {
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	UI          *UI    `json:"ui,omitempty"`
	raw         *mcp.Tool
}

// Signature is the tool's input and output schemas as JSON (map keys
// sorted), to tell whether a tool changed between two checks.
func (t Tool) Signature() string {
	if t.raw == nil {
		return ""
	}
	b, _ := json.Marshal([]any{t.raw.InputSchema, t.raw.OutputSchema})
	return string(b)
}

// UI is a tool's MCP Apps binding.
type UI struct {
	ResourceURI string   `json:"resourceUri"`
	Visibility  []string `json:"visibility,omitempty"`
	// Status is ok, unresolved or invalid after the check.
	Status string `json:"status"`
}

// Resource is a listed resource, or a UI resource a tool references.
type Resource struct {
	URI      string `json:"uri"`
	Name     string `json:"name,omitempty"`
	MIMEType string `json:"mimeType,omitempty"`
	Listed   bool   `json:"listed"`
	// Size is the UI resource's HTML size in bytes, when read.
	Size int `json:"size,omitempty"`
	// UI is the UI resource's effective _meta.ui, when read.
	UI *ResourceUI `json:"ui,omitempty"`
}

// ResourceUI is what a host applies to a UI resource: the _meta.ui of
// the read contents, else of the resources/list entry (From says which).
type ResourceUI struct {
	From          string              `json:"from,omitempty"`
	CSP           map[string][]string `json:"csp"`
	Permissions   []string            `json:"permissions,omitempty"`
	Domain        string              `json:"domain,omitempty"`
	PrefersBorder *bool               `json:"prefersBorder,omitempty"`
}

// Template is a listed resource template.
type Template struct {
	URITemplate string `json:"uriTemplate"`
	Name        string `json:"name,omitempty"`
	MIMEType    string `json:"mimeType,omitempty"`
}

// CallResult is the optional tool call's result.
type CallResult struct {
	Tool    string          `json:"tool"`
	IsError bool            `json:"isError"`
	Content json.RawMessage `json:"content"`
	// StructuredContent is the result's structuredContent, if any.
	StructuredContent json.RawMessage `json:"structuredContent,omitempty"`
}

// Timing is one step's duration.
type Timing struct {
	Step string  `json:"step"`
	MS   float64 `json:"ms"`
}

// Errors
var (
	// ErrToolFailed: the called tool returned isError (in a *ToolError).
	ErrToolFailed = errors.New("the tool reported an error")
)

// AuthError is a 401 from the server, with what its metadata says about
// logging in (RFC 9728 protected-resource metadata).
type AuthError struct {
	URL                  string
	ResourceMetadata     string
	AuthorizationServers []string
	Detail               string
}

func (e *AuthError) Error() string {
	msg := "the server at " + e.URL + " requires authorization (401)"
	if len(e.AuthorizationServers) > 0 {
		msg += "; authorization server: " + strings.Join(e.AuthorizationServers, ", ")
	}
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg
}

// headerTransport adds headers and remembers 401 answers.
type headerTransport struct {
	base    http.RoundTripper
	headers map[string]string
	agent   string // User-Agent
	// run bounds every request: when the check ends or times out, requests
	// still in flight (an SSE stream, a server that never answers) are
	// cancelled, whatever context the SDK gave them.
	run context.Context

	mu   sync.Mutex
	last *http.Response // a 401, with its WWW-Authenticate
}

func (t *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(t.run, cancel)
	r = r.Clone(ctx)
	for k, v := range t.headers {
		r.Header.Set(k, v)
	}
	r.Header.Set("User-Agent", t.agent)
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		t.mu.Lock()
		t.last = &http.Response{StatusCode: resp.StatusCode, Header: resp.Header.Clone()}
		t.mu.Unlock()
	}
	if resp.Body != nil {
		resp.Body = &limitedBody{Reader: io.LimitReader(resp.Body, maxBody), body: resp.Body, done: func() { stop(); cancel() }}
	}
	return resp, nil
}

// limitedBody bounds a body and releases its request's context on Close.
type limitedBody struct {
	io.Reader
	body io.Closer
	done func()
}

func (b *limitedBody) Close() error {
	err := b.body.Close()
	b.done()
	return err
}

func (t *headerTransport) unauthorized() *http.Response {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// Run performs the check. Errors carry exit codes: 3 for authorization, 4
// for transport and protocol failures, 5 when the called tool fails.
// Lint findings are in the report, not errors.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &URLError{URL: opts.URL}
	}
	rep := &Report{URL: opts.URL, Tools: []Tool{}, Resources: []Resource{}, Templates: []Template{}, Findings: []Finding{}}
	step := func(name string, start time.Time) {
		rep.Timings = append(rep.Timings, Timing{Step: name, MS: float64(time.Since(start).Microseconds()) / 1000})
	}

	start := time.Now()
	conn, err := Dial(ctx, opts)
	if err != nil {
		return nil, err
	}
	session := conn.Session
	defer conn.Close()
	step("handshake", start)
	if init := session.InitializeResult(); init != nil {
		rep.Protocol = init.ProtocolVersion
		if init.ServerInfo != nil {
			rep.Server = ServerInfo{Name: init.ServerInfo.Name, Version: init.ServerInfo.Version, Title: init.ServerInfo.Title}
		}
		if init.Capabilities != nil {
			if b, err := json.Marshal(init.Capabilities); err == nil {
				_ = json.Unmarshal(b, &rep.Capabilities)
			}
		}
	}
	caps2 := session.InitializeResult()

	start = time.Now()
	for t, err := range session.Tools(ctx, nil) {
		if err != nil {
			return nil, stepError("tools/list", ctx, err)
		}
		rep.Tools = append(rep.Tools, Tool{Name: t.Name, Title: t.Title, Description: t.Description, UI: uiBinding(t), raw: t})
	}
	step("tools/list", start)

	listed := map[string]map[string]any{} // resources/list entries' _meta
	if caps2 != nil && caps2.Capabilities != nil && caps2.Capabilities.Resources != nil {
		start = time.Now()
		for r, err := range session.Resources(ctx, nil) {
			if err != nil {
				return nil, stepError("resources/list", ctx, err)
			}
			rep.Resources = append(rep.Resources, Resource{URI: r.URI, Name: r.Name, MIMEType: r.MIMEType, Listed: true})
			if r.Meta != nil {
				listed[r.URI] = r.Meta
			}
		}
		step("resources/list", start)
		start = time.Now()
		for r, err := range session.ResourceTemplates(ctx, nil) {
			if err != nil {
				return nil, stepError("resources/templates/list", ctx, err)
			}
			rep.Templates = append(rep.Templates, Template{URITemplate: r.URITemplate, Name: r.Name, MIMEType: r.MIMEType})
		}
		step("resources/templates/list", start)
	}

	// Read every UI resource a tool references, listed or not.
	start = time.Now()
	uiContents := map[string]*mcp.ResourceContents{}
	uiErrors := map[string]error{}
	for _, t := range rep.Tools {
		if t.UI == nil || !strings.HasPrefix(t.UI.ResourceURI, "ui://") {
			continue
		}
		uri := t.UI.ResourceURI
		if _, done := uiContents[uri]; done || uiErrors[uri] != nil {
			continue
		}
		res, err := session.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		if err != nil {
			if ctx.Err() != nil {
				return nil, stepError("resources/read", ctx, err)
			}
			uiErrors[uri] = err
			continue
		}
		var rc *mcp.ResourceContents
		for _, c := range res.Contents {
			if c != nil && c.URI == uri || rc == nil {
				rc = c
			}
		}
		if rc == nil {
			uiErrors[uri] = errors.New("no contents")
			continue
		}
		uiContents[uri] = rc
		found := false
		for i := range rep.Resources {
			if rep.Resources[i].URI == uri {
				rep.Resources[i].Size = htmlSize(rc)
				rep.Resources[i].UI = effectiveUI(rc.Meta, listed[uri])
				if rep.Resources[i].MIMEType == "" {
					rep.Resources[i].MIMEType = rc.MIMEType
				}
				found = true
			}
		}
		if !found {
			rep.Resources = append(rep.Resources, Resource{URI: uri, MIMEType: rc.MIMEType, Size: htmlSize(rc), UI: effectiveUI(rc.Meta, nil)})
		}
	}
	if len(uiContents)+len(uiErrors) > 0 {
		step("resources/read (UI)", start)
	}

	if caps2 != nil && caps2.Capabilities != nil && caps2.Capabilities.Prompts != nil {
		start = time.Now()
		for p, err := range session.Prompts(ctx, nil) {
			if err != nil {
				return nil, stepError("prompts/list", ctx, err)
			}
			rep.Prompts = append(rep.Prompts, p.Name)
		}
		step("prompts/list", start)
	}

	rep.contents = uiContents
	rep.Findings = Lint(LintInput{Tools: rep.Tools, Contents: uiContents, ReadErrs: uiErrors, Listed: listed, Local: loopback.IsLoopback(u.Hostname())})
	for i := range rep.Tools {
		if ui := rep.Tools[i].UI; ui != nil {
			ui.Status = "ok"
			for _, f := range rep.Findings {
				if (f.Subject == rep.Tools[i].Name || f.Subject == ui.ResourceURI) && f.Severity == SeverityError && strings.HasPrefix(f.Rule, "APP") {
					ui.Status = "invalid"
				}
			}
			if uiErrors[ui.ResourceURI] != nil {
				ui.Status = "unresolved"
			}
		}
	}

	if opts.Call != "" {
		start = time.Now()
		var args any = map[string]any{}
		if len(opts.Args) > 0 {
			if err := json.Unmarshal(opts.Args, &args); err != nil {
				return rep, &ArgsError{Err: err}
			}
		}
		res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: opts.Call, Arguments: args})
		if err != nil {
			return rep, &ToolError{Tool: opts.Call, Err: err}
		}
		content, _ := json.Marshal(res.Content)
		rep.Call = &CallResult{Tool: opts.Call, IsError: res.IsError, Content: content}
		if res.StructuredContent != nil {
			rep.Call.StructuredContent, _ = json.Marshal(res.StructuredContent)
		}
		step("tools/call", start)
		var called *mcp.Tool
		for _, t := range rep.Tools {
			if t.Name == opts.Call {
				called = t.raw
			}
		}
		rep.Findings = append(rep.Findings, LintCall(called, res)...)
		if res.IsError {
			return rep, &ToolError{Tool: opts.Call, Err: ErrToolFailed}
		}
	}
	return rep, nil
}

// Conn is a session with an MCP server opened the way the check opens it
// (the same transport, headers, client profile and OAuth handler), for
// callers that keep it: `pomdev preview` lists, reads and calls through it.
type Conn struct {
	Session *mcp.ClientSession
	cancel  context.CancelFunc
}

// Close ends the session and every request still in flight.
func (c *Conn) Close() error {
	err := c.Session.Close()
	c.cancel()
	return err
}

// Dial connects and completes the handshake, within opts.Timeout when it
// is set. The session lives until Close or until ctx ends. Errors are
// those of Run: *URLError, *ProfileError, *AuthError, *ConnectError.
func Dial(ctx context.Context, opts Options) (*Conn, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &URLError{URL: opts.URL}
	}
	// *.localhost (pomdev relay's default domain) dials loopback.
	var base http.RoundTripper = loopback.Transport()
	if opts.HTTPClient != nil && opts.HTTPClient.Transport != nil {
		base = opts.HTTPClient.Transport
	}
	version := build.Current().Version // reads the build info once per connection
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	agent := "pomdev/" + version
	if opts.UserAgent != "" {
		agent = opts.UserAgent
	}
	ht := &headerTransport{base: base, headers: opts.Headers, agent: agent, run: run}
	hc := &http.Client{Transport: ht}

	caps, err := capabilities(opts.Client, !opts.NoApps)
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	name := opts.ClientName
	if name == "" {
		name = "pomdev-inspect"
	}
	client := mcp.NewClient(&mcp.Implementation{Name: name, Version: version},
		&mcp.ClientOptions{Capabilities: caps})
	transport := &mcp.StreamableClientTransport{Endpoint: opts.URL, HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true, OAuthHandler: opts.OAuthHandler}
	hctx := ctx
	if opts.Timeout > 0 {
		var hcancel context.CancelFunc
		hctx, hcancel = context.WithTimeout(ctx, opts.Timeout)
		defer hcancel()
	}
	session, err := client.Connect(hctx, transport, nil)
	if err != nil {
		err = connectError(hctx, opts, ht, hc, err)
		stop()
		cancel()
		return nil, err
	}
	return &Conn{Session: session, cancel: func() { stop(); cancel() }}, nil
}

func htmlSize(rc *mcp.ResourceContents) int {
	if rc.Text != "" {
		return len(rc.Text)
	}
	return len(rc.Blob)
}

func stepError(step string, ctx context.Context, err error) error {
	return &StepError{Step: step, Err: err, Timeout: ctx.Err() != nil}
}

// connectError explains a failed handshake: authorization (*AuthError),
// timeouts, refused connections and servers that do not speak MCP
// (*ConnectError).
func connectError(ctx context.Context, opts Options, ht *headerTransport, hc *http.Client, err error) error {
	if resp := ht.unauthorized(); resp != nil {
		ae := &AuthError{URL: opts.URL}
		discover(ctx, hc, opts.URL, resp.Header.Get("WWW-Authenticate"), ae)
		if opts.OAuthHandler != nil {
			ae.Detail = "login failed: " + err.Error()
		}
		return ae
	}
	var ne *net.OpError
	switch {
	case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// The SDK may report the end of the handshake's context as its
		// own cancellation a moment before ctx says it is done.
		return &ConnectError{URL: opts.URL, Err: err, Reason: ConnectTimeout}
	case errors.As(err, &ne):
		return &ConnectError{URL: opts.URL, Err: ne, Reason: ConnectNetwork}
	default:
		return &ConnectError{URL: opts.URL, Err: err, Reason: ConnectNotMCP}
	}
}

// discover reads RFC 9728 metadata: resource_metadata from
// WWW-Authenticate, else the well-known locations, then the authorization
// servers it names.
func discover(ctx context.Context, hc *http.Client, endpoint, wwwAuth string, ae *AuthError) {
	candidates := []string{}
	if i := strings.Index(wwwAuth, `resource_metadata="`); i >= 0 {
		rest := wwwAuth[i+len(`resource_metadata="`):]
		if j := strings.IndexByte(rest, '"'); j >= 0 {
			candidates = append(candidates, rest[:j])
		}
	}
	if u, err := url.Parse(endpoint); err == nil {
		root := u.Scheme + "://" + u.Host
		candidates = append(candidates, root+"/.well-known/oauth-protected-resource"+u.Path, root+"/.well-known/oauth-protected-resource")
	}
	for _, c := range candidates {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c, nil)
		if err != nil {
			continue
		}
		resp, err := hc.Do(req)
		if err != nil {
			continue
		}
		var prm struct {
			AuthorizationServers []string `json:"authorization_servers"`
		}
		derr := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&prm)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && derr == nil {
			ae.ResourceMetadata = c
			ae.AuthorizationServers = prm.AuthorizationServers
			return
		}
	}
	ae.Detail = "no protected-resource metadata found"
}
