// Package preview is `pomdev preview`: a local MCP Apps host. It serves a
// page on 127.0.0.1 that lists a server's tools, calls them through the
// same MCP client as `pomdev inspect` and renders their widgets in a
// sandboxed frame on a second origin, with the official host-side bridge
// of @modelcontextprotocol/ext-apps, so a widget sees what ChatGPT or
// Claude would send it. The page is built from web/preview (TypeScript)
// into assets/ and embedded; no Node is needed at run time.
package preview

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/pomdev/pomdev/internal/mcpcheck"
	"golang.org/x/time/rate"
)

//go:embed assets
var assetFS embed.FS

// Bounds on what a page can make the preview hold.
const (
	maxRequest  = 1 << 20 // an API request body
	maxReports  = 1000    // reports kept for Reports
	maxWatched  = 32      // resources re-read for live reload
	maxPolicies = 64      // sandbox policies handed out
	maxSubs     = 16      // pages listening for reloads
)

// Options configure a preview.
type Options struct {
	// MCP says how to reach the server: URL, headers, OAuth handler.
	MCP mcpcheck.Options
	// OnReport, when set, receives every report a page sends (console
	// errors, CSP violations, mounts, widget messages), in order.
	OnReport func(Report)
	// Poll is how often the resources pages show are re-read to notice a
	// rebuilt widget (0: every second; negative: never).
	Poll time.Duration
}

// Report is something the page saw: Kind is "csp" (a violation),
// "console" (console.error), "error" (an uncaught exception, a rejection,
// a resource that did not load), "mounted" (the widget rendered content),
// "host" (what the emulated host refused, or a failure of the page),
// "tool" (the tool call failed or returned isError), "message" (ui/message, ui/open-link, ui/update-model-context
// from the widget), "log" (a logging notification) or "done" (a --check
// render finished).
type Report struct {
	Kind    string `json:"kind"`
	Tool    string `json:"tool,omitempty"`
	URI     string `json:"uri,omitempty"`
	Message string `json:"message"`
	// Blocked is the URL a CSP violation blocked, Directive what blocked it.
	Blocked   string `json:"blocked,omitempty"`
	Directive string `json:"directive,omitempty"`
	// Mounted is set on "done": whether the widget rendered anything.
	Mounted bool `json:"mounted,omitempty"`
	// Hint says what to do (set by the page for known causes).
	Hint string `json:"hint,omitempty"`
	// Text is the widget's text when a --check render finished ("done").
	Text string `json:"text,omitempty"`
}

// Failure reports whether a report fails `pomdev preview --check`.
func (r Report) Failure() bool {
	switch r.Kind {
	case "csp", "console", "error", "host", "tool":
		return true
	}
	// "advice" (a host rule's warning) is said, not failed.
	return r.Kind == "done" && !r.Mounted
}

// Server is a running preview.
type Server struct {
	opts         Options
	token        string // in the page's path: other local pages cannot drive the API
	sandboxToken string
	hostLn       net.Listener
	sandboxLn    net.Listener
	hostSrv      *http.Server
	sandboxSrv   *http.Server
	ctx          context.Context
	cancel       context.CancelFunc
	wg           sync.WaitGroup

	mu       sync.Mutex
	conn     *mcpcheck.Conn
	reports  []Report
	subs     map[chan string]struct{}
	watched  map[string][32]byte // URI → hash of its contents
	policies map[string]Policy
	order    []string    // policy IDs, oldest first
	done     chan Report // the running Check's, for the page's "done"
	shown    *rate.Limiter
	missed   int
	down     bool // the last request found no server (not a JSON-RPC answer)
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Start listens on two loopback ports (the page and the widgets' sandbox,
// a different origin) and serves until ctx ends or Close.
func Start(ctx context.Context, opts Options) (*Server, error) {
	hostLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sandboxLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		hostLn.Close()
		return nil, err
	}
	s := &Server{
		opts: opts, token: randomToken(), sandboxToken: randomToken(),
		hostLn: hostLn, sandboxLn: sandboxLn,
		subs: map[chan string]struct{}{}, watched: map[string][32]byte{}, policies: map[string]Policy{},
		shown: rate.NewLimiter(20, 40),
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { s.Close() })
	s.hostSrv = &http.Server{Handler: s.hostHandler(), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	s.sandboxSrv = &http.Server{Handler: s.sandboxHandler(), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	s.wg.Add(2)
	go func() { defer s.wg.Done(); _ = s.hostSrv.Serve(hostLn) }()
	go func() { defer s.wg.Done(); _ = s.sandboxSrv.Serve(sandboxLn) }()
	if opts.Poll >= 0 {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.poll() }()
	}
	go func() { <-s.ctx.Done(); stop() }()
	return s, nil
}

// URL is the page to open.
func (s *Server) URL() string {
	return "http://" + s.hostLn.Addr().String() + "/p/" + s.token + "/"
}

func (s *Server) sandboxOrigin() string { return "http://" + s.sandboxLn.Addr().String() }

// domainOrigin is the sandbox origin for a resource's _meta.ui.domain: a
// name of its own under localhost (which browsers resolve to this
// machine), so a widget with a dedicated origin gets one here too, stable
// across renders. "" is the shared sandbox origin.
func (s *Server) domainOrigin(domain string) string {
	label := domainLabel(domain)
	if label == "" {
		return s.sandboxOrigin()
	}
	_, port, _ := net.SplitHostPort(s.sandboxLn.Addr().String())
	return "http://" + label + ".localhost:" + port
}

// domainLabel turns a domain into one DNS label: lower case, anything
// but letters and digits as "-", at most 63 characters.
func domainLabel(domain string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(domain) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
		if b.Len() >= 63 {
			break
		}
	}
	return strings.Trim(b.String(), "-")
}
func (s *Server) hostOrigin() string { return "http://" + s.hostLn.Addr().String() }

// Close stops serving, ends the MCP session and waits for everything the
// preview started.
func (s *Server) Close() error {
	s.cancel()
	shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.hostSrv.Shutdown(shut)
	_ = s.sandboxSrv.Shutdown(shut)
	s.hostSrv.Close()
	s.sandboxSrv.Close()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	for ch := range s.subs {
		delete(s.subs, ch)
	}
	return nil
}

// Reload tells every open page that the server or its widgets changed
// (`pomdev up` calls it when it restarts the server): they re-read the
// resource and render again with the last tool result.
func (s *Server) Reload(reason string) {
	s.mu.Lock()
	if s.conn != nil { // a restarted server lost the session
		s.conn.Close()
		s.conn = nil
	}
	s.mu.Unlock()
	s.broadcast(reason)
}

func (s *Server) broadcast(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- msg:
		default: // a page that does not read loses the notice, not the server
		}
	}
}

// Reports returns what pages reported so far.
func (s *Server) Reports() []Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Report(nil), s.reports...)
}

func (s *Server) addReport(r Report) {
	s.mu.Lock()
	if len(s.reports) < maxReports {
		s.reports = append(s.reports, r)
	}
	// A widget that logs in a loop must not flood the terminal: OnReport
	// gets at most a burst of 40 and 20 a second, and then how many it
	// missed.
	var missed int
	show := s.shown.Allow()
	if show {
		missed, s.missed = s.missed, 0
	} else {
		s.missed++
	}
	if r.Kind == "done" && s.done != nil {
		select {
		case s.done <- r:
		default:
		}
	}
	s.mu.Unlock()
	if s.opts.OnReport == nil || !show {
		return
	}
	if missed > 0 {
		s.opts.OnReport(Report{Kind: "dropped", Message: fmt.Sprintf("%d more reports not shown (too many at once)", missed)})
	}
	s.opts.OnReport(r)
}

// session returns the MCP session, connecting when there is none.
func (s *Server) session() (*mcp.ClientSession, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		return s.conn.Session, nil
	}
	opts := s.opts.MCP
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second // the handshake
	}
	if opts.ClientName == "" {
		opts.ClientName = "pomdev-preview"
	}
	conn, err := mcpcheck.Dial(s.ctx, opts)
	if err != nil {
		return nil, err
	}
	s.conn = conn
	return conn.Session, nil
}

// drop forgets a session that failed, so the next request reconnects.
func (s *Server) drop(sess *mcp.ClientSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && s.conn.Session == sess {
		s.conn.Close()
		s.conn = nil
	}
}

// do runs f on the session. A failure that is not the server's JSON-RPC
// answer (a restarted server, a lost session) drops the session; f runs
// again on a new one when retry is set (requests without side effects).
func (s *Server) do(retry bool, f func(*mcp.ClientSession) error) error {
	for attempt := 0; ; attempt++ {
		sess, err := s.session()
		if err != nil {
			s.setDown(true)
			return err
		}
		err = f(sess)
		var rpc *jsonrpc.Error
		if err == nil || errors.As(err, &rpc) {
			s.setDown(false)
			return err
		}
		s.drop(sess)
		if !retry || attempt > 0 {
			return err
		}
	}
}

func (s *Server) setDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// poll re-reads the resources pages show and tells them when one changed,
// and tells them when a server that was not there answers again.
func (s *Server) poll() {
	every := s.opts.Poll
	if every == 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		idle, down := len(s.subs) == 0, s.down
		uris := make([]string, 0, len(s.watched))
		for u := range s.watched {
			uris = append(uris, u)
		}
		s.mu.Unlock()
		if idle {
			continue
		}
		if down {
			if _, err := s.session(); err == nil {
				s.setDown(false)
				s.broadcast("server back")
			}
			continue
		}
		for _, uri := range uris {
			var res *mcp.ReadResourceResult
			err := s.do(true, func(sess *mcp.ClientSession) error {
				ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
				defer cancel()
				var err error
				res, err = sess.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
				return err
			})
			if err != nil {
				continue // the server is restarting; the next round sees it
			}
			h := hashContents(res)
			s.mu.Lock()
			old, ok := s.watched[uri]
			if ok {
				s.watched[uri] = h
			}
			s.mu.Unlock()
			if ok && old != h {
				s.broadcast("resource " + uri)
			}
		}
	}
}

func hashContents(res *mcp.ReadResourceResult) [32]byte {
	b, _ := json.Marshal(res)
	return sha256.Sum256(b)
}

func (s *Server) watch(uri string, res *mcp.ReadResourceResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.watched[uri]; ok || len(s.watched) < maxWatched {
		s.watched[uri] = hashContents(res)
	}
}

// sameHost refuses requests whose Host is not the listener's own address:
// a page of another site that rebinds a name to 127.0.0.1 gets nothing.
func sameHost(ln net.Listener, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != ln.Addr().String() {
			http.Error(w, "wrong host", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func staticFile(w http.ResponseWriter, name string) {
	b, err := fs.ReadFile(assetFS, "assets/"+name)
	if err != nil {
		http.NotFound(w, nil)
		return
	}
	switch {
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	default:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	}
	_, _ = w.Write(b)
}

func noStore(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError is the body of a failed API request.
type apiError struct {
	Error string `json:"error"`
	Code  int64  `json:"code,omitempty"` // the server's JSON-RPC error code
}

func errorBody(err error) apiError {
	var rpc *jsonrpc.Error
	if errors.As(err, &rpc) {
		return apiError{Error: rpc.Message, Code: rpc.Code}
	}
	return apiError{Error: err.Error()}
}

func (s *Server) hostHandler() http.Handler {
	mux := http.NewServeMux()
	base := "/p/" + s.token + "/"
	mux.HandleFunc("GET "+base+"{$}", func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src "+s.sandboxOrigin()+" "+strings.Replace(s.domainOrigin("x"), "//x.", "//*.", 1)+"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		staticFile(w, "index.html")
	})
	for _, f := range []string{"host.js", "host.css"} {
		mux.HandleFunc("GET "+base+f, func(w http.ResponseWriter, r *http.Request) {
			noStore(w)
			staticFile(w, f)
		})
	}
	mux.HandleFunc("GET "+base+"api/server", s.apiServer)
	mux.HandleFunc("POST "+base+"api/call", s.apiCall)
	mux.HandleFunc("POST "+base+"api/read", s.apiRead)
	mux.HandleFunc("POST "+base+"api/resources", s.apiResources)
	mux.HandleFunc("POST "+base+"api/sandbox", s.apiSandbox)
	mux.HandleFunc("POST "+base+"api/report", s.apiReport)
	mux.HandleFunc("GET "+base+"api/events", s.apiEvents)
	return sameHost(s.hostLn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && !s.sameOrigin(r) {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	}))
}

// sameOrigin accepts a state-changing request only from the page itself:
// a JSON body (which a form of another site cannot send without a CORS
// preflight, never answered here) and no foreign Origin.
func (s *Server) sameOrigin(r *http.Request) bool {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != s.hostOrigin() {
		return false
	}
	site := r.Header.Get("Sec-Fetch-Site")
	return site == "" || site == "same-origin"
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequest)).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "bad request: " + err.Error()})
		return false
	}
	return true
}

// ask runs f on the session for a page's request: the answer, or false
// once the failure has been written as the API's error body.
func ask[T any](s *Server, w http.ResponseWriter, retry bool, f func(*mcp.ClientSession) (T, error)) (T, bool) {
	var res T
	err := s.do(retry, func(sess *mcp.ClientSession) error {
		var err error
		res, err = f(sess)
		return err
	})
	if err != nil {
		writeJSON(w, http.StatusBadGateway, errorBody(err))
		return res, false
	}
	return res, true
}

func (s *Server) apiServer(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	type answer struct {
		URL       string              `json:"url"`
		Server    *mcp.Implementation `json:"server,omitempty"`
		Protocol  string              `json:"protocol,omitempty"`
		Tools     []*mcp.Tool         `json:"tools"`
		Profiles  []Profile           `json:"profiles"`
		Resources bool                `json:"resources"`
	}
	a, ok := ask(s, w, true, func(sess *mcp.ClientSession) (answer, error) {
		a := answer{URL: s.opts.MCP.URL, Tools: []*mcp.Tool{}, Profiles: Profiles}
		if init := sess.InitializeResult(); init != nil {
			a.Server, a.Protocol = init.ServerInfo, init.ProtocolVersion
			a.Resources = init.Capabilities != nil && init.Capabilities.Resources != nil
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		tools, err := listTools(ctx, sess)
		a.Tools = append(a.Tools, tools...)
		return a, err
	})
	if ok {
		writeJSON(w, http.StatusOK, a)
	}
}

func listTools(ctx context.Context, sess *mcp.ClientSession) ([]*mcp.Tool, error) {
	var tools []*mcp.Tool
	for t, err := range sess.Tools(ctx, nil) {
		if err != nil {
			return nil, err
		}
		tools = append(tools, t)
	}
	return tools, nil
}

func (s *Server) apiCall(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	var req struct {
		Name      string `json:"name"`
		Arguments any    `json:"arguments"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Arguments == nil {
		req.Arguments = map[string]any{}
	}
	// Not retried on a new session: a call may have side effects.
	res, ok := ask(s, w, false, func(sess *mcp.ClientSession) (*mcp.CallToolResult, error) {
		return sess.CallTool(r.Context(), &mcp.CallToolParams{Name: req.Name, Arguments: req.Arguments})
	})
	if ok {
		writeJSON(w, http.StatusOK, res)
	}
}

func (s *Server) apiRead(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	var req struct {
		URI   string `json:"uri"`
		Watch bool   `json:"watch"`
	}
	if !decode(w, r, &req) {
		return
	}
	res, ok := ask(s, w, true, func(sess *mcp.ClientSession) (*mcp.ReadResourceResult, error) {
		return sess.ReadResource(r.Context(), &mcp.ReadResourceParams{URI: req.URI})
	})
	if !ok {
		return
	}
	if req.Watch {
		s.watch(req.URI, res)
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) apiResources(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	var req struct {
		Cursor string `json:"cursor"`
	}
	if !decode(w, r, &req) {
		return
	}
	res, ok := ask(s, w, true, func(sess *mcp.ClientSession) (*mcp.ListResourcesResult, error) {
		return sess.ListResources(r.Context(), &mcp.ListResourcesParams{Cursor: req.Cursor})
	})
	if ok {
		writeJSON(w, http.StatusOK, res)
	}
}

// apiSandbox hands out a sandbox page whose CSP header is the profile's
// policy for a resource's CSP. The header comes from this server, not
// from the page, so a widget cannot loosen it.
func (s *Server) apiSandbox(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	var req struct {
		Profile string `json:"profile"`
		CSP     CSP    `json:"csp"`
		Domain  string `json:"domain"`
		// URI and Tool are the resource and tool rendered: the host rules'
		// findings about them come back (hosts).
		URI  string `json:"uri"`
		Tool string `json:"tool"`
	}
	if !decode(w, r, &req) {
		return
	}
	p, err := LookupProfile(req.Profile)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	pol := BuildPolicy(p, req.CSP)
	id := randomToken()
	s.mu.Lock()
	s.policies[id] = pol
	s.order = append(s.order, id)
	if len(s.order) > maxPolicies {
		delete(s.policies, s.order[0])
		s.order = s.order[1:]
	}
	s.mu.Unlock()
	origin := s.domainOrigin(req.Domain)
	writeJSON(w, http.StatusOK, map[string]any{
		"url":     origin + "/s/" + s.sandboxToken + "/" + id + "/",
		"origin":  origin,
		"policy":  pol.Header,
		"refused": nonNil(pol.Refused),
		"dropped": nonNil(pol.Dropped),
		"hosts":   s.hostFindings(r.Context(), p.Name, req.URI, req.Tool),
	})
}

// hostFindings are the errors and warnings of the host rules of the
// profile's host (mcpcheck.HostRules: what ChatGPT or Claude refuses beyond
// the specification) about the resource uri or the tool; none when the
// profile is no host the rules know or the server cannot be read now.
func (s *Server) hostFindings(ctx context.Context, host, uri, tool string) []mcpcheck.Finding {
	out := []mcpcheck.Finding{}
	if !slices.Contains(mcpcheck.Hosts, host) {
		return out
	}
	o := s.opts.MCP
	o.Call = ""
	rep, err := mcpcheck.Run(ctx, o)
	if err != nil {
		return out
	}
	rep.Findings = nil
	if mcpcheck.CheckHosts(ctx, o, rep, []string{host}) != nil {
		return out
	}
	for _, f := range rep.Findings {
		if f.Severity != mcpcheck.SeverityInfo && (f.Subject == uri || f.Subject == tool) {
			out = append(out, f)
		}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) apiReport(w http.ResponseWriter, r *http.Request) {
	var rep Report
	if !decode(w, r, &rep) {
		return
	}
	clip := func(s string, n int) string {
		if len(s) > n {
			return s[:n] + "…"
		}
		return s
	}
	rep.Kind = clip(rep.Kind, 16)
	rep.Message, rep.Blocked, rep.Directive = clip(rep.Message, 2000), clip(rep.Blocked, 500), clip(rep.Directive, 100)
	rep.Tool, rep.URI, rep.Hint, rep.Text = clip(rep.Tool, 200), clip(rep.URI, 500), clip(rep.Hint, 500), clip(rep.Text, 4000)
	s.addReport(rep)
	w.WriteHeader(http.StatusNoContent)
}

// apiEvents streams reload notices (server-sent events).
func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch := make(chan string, 4)
	s.mu.Lock()
	if len(s.subs) >= maxSubs {
		s.mu.Unlock()
		http.Error(w, "too many pages open", http.StatusTooManyRequests)
		return
	}
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}()
	noStore(w)
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprint(w, ": preview\n\n")
	fl.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		case msg := <-ch:
			b, _ := json.Marshal(msg)
			fmt.Fprintf(w, "event: reload\ndata: %s\n\n", b)
			fl.Flush()
		}
	}
}

func (s *Server) sandboxHandler() http.Handler {
	mux := http.NewServeMux()
	base := "/s/" + s.sandboxToken + "/"
	mux.HandleFunc("GET "+base+"sandbox.js", func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		staticFile(w, "sandbox.js")
	})
	mux.HandleFunc("GET "+base+"{id}/{$}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		pol, ok := s.policies[r.PathValue("id")]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		noStore(w)
		w.Header().Set("Content-Security-Policy", pol.Header+"; frame-ancestors 'self' "+s.hostOrigin())
		staticFile(w, "sandbox.html")
	})
	// The shared sandbox origin, or a domain's own name under localhost.
	_, port, _ := net.SplitHostPort(s.sandboxLn.Addr().String())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if label, ok := strings.CutSuffix(host, ".localhost:"+port); ok && label != "" && domainLabel(label) == label {
			host = s.sandboxLn.Addr().String()
		}
		if host != s.sandboxLn.Addr().String() {
			http.Error(w, "wrong host", http.StatusMisdirectedRequest)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Tools connects (when not yet connected) and lists the server's tools:
// the caller learns at once of a wrong URL or a server asking for a
// sign-in (mcpcheck's typed errors).
func (s *Server) Tools(ctx context.Context) ([]*mcp.Tool, error) {
	var tools []*mcp.Tool
	err := s.do(true, func(sess *mcp.ClientSession) error {
		var err error
		tools, err = listTools(ctx, sess)
		return err
	})
	return tools, err
}
