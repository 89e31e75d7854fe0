package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/rogpeppe/go-internal/testscript"
)

// scriptCmds are test-only commands for end-to-end scripts:
//
//	origin NAME                 start an HTTP server in the test; sets $ORIGIN (host:port)
//	waitmatch FILE REGEX VAR    wait (15 s) until FILE matches REGEX; VAR = first group
//	httpget VIA URL             GET URL dialling VIA (host:port, - for the URL's own) whatever the URL's host;
//	                            prints "status: N" and the body
//	mcpserver good|bad          start a go-sdk MCP server in the test; sets $MCP_URL
//	freeport VAR                a free loopback port in $VAR
//	screen [-t D] SOCK SESSION REGEX [VAR]  wait (15 s) for a tmux pane to show REGEX (VAR = first group);
//	                            no line may be wider than the pane
//	procgone TEXT               wait (15 s) until no process's command line contains TEXT
//	oauthstart VIA URL VAR      as an app would: register with the relay URL's authorization
//	                            server, open its authorize page; VAR = the code it shows. The
//	                            browser's page keeps waiting in the background (oauthwait)
//	oauthwait VAR               wait (30 s) for that page to move on; VAR = approved or denied
//	resetflood ADDR N           N times: a connection to ADDR (host:port) that sends 40 GETs
//	                            and closes with a reset (SO_LINGER 0) after the first byte of the answers
//
// loops holds the request loops of httploop, per script.
var loops sync.Map // *testscript.TestScript -> *requestLoop

// waits holds oauthstart's waiting page, per script.
var waits sync.Map // *testscript.TestScript -> chan string

type requestLoop struct {
	stop     chan struct{}
	done     chan struct{}
	ok, fail int
	lastErr  string
}

var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	// procgone TEXT: wait (15 s) until no process has TEXT in its command
	// line (read from /proc); on failure, list the ones left.
	"procgone": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 1 {
			ts.Fatalf("usage: procgone TEXT")
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			left := processesWith(args[0])
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				ts.Fatalf("still running: %s", strings.Join(left, "; "))
			}
			time.Sleep(50 * time.Millisecond)
		}
	},
	// screen SOCKET SESSION REGEX: wait (15 s) until the tmux pane shows
	// REGEX, fail if any line is wider than the pane, print the screen.
	"tmuxcleanup": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 1 {
			ts.Fatalf("usage: tmuxcleanup SOCKET")
		}
		// The tmux server on SOCKET, and what runs in it, stop with the
		// script, whether it passes or not.
		sock := ts.MkAbs(args[0])
		ts.Defer(func() { _ = exec.Command("tmux", "-S", sock, "kill-server").Run() })
	},
	"screen": func(ts *testscript.TestScript, neg bool, args []string) {
		wait := 15 * time.Second
		if len(args) >= 5 && args[0] == "-t" {
			d, err := time.ParseDuration(args[1])
			ts.Check(err)
			wait, args = d, args[2:]
		}
		if len(args) != 3 && len(args) != 4 {
			ts.Fatalf("usage: screen [-t DURATION] SOCKET SESSION REGEX [VAR]")
		}
		re := regexp.MustCompile(args[2])
		deadline := time.Now().Add(wait)
		for {
			out, err := exec.Command("tmux", "-S", args[0], "capture-pane", "-p", "-t", args[1]).Output()
			wout, _ := exec.Command("tmux", "-S", args[0], "display", "-p", "-t", args[1], "#{pane_width}").Output()
			width, _ := strconv.Atoi(strings.TrimSpace(string(wout)))
			if m := re.FindSubmatch(out); err == nil && m != nil {
				if len(args) == 4 && len(m) > 1 {
					ts.Setenv(args[3], string(m[1]))
				}
				for _, l := range strings.Split(string(out), "\n") {
					if n := utf8.RuneCountInString(l); width > 0 && n > width {
						ts.Fatalf("a line of %d columns on a %d-column pane: %q", n, width, l)
					}
				}
				fmt.Fprint(ts.Stdout(), string(out))
				return
			}
			if time.Now().After(deadline) {
				ts.Fatalf("the screen never showed %q:\n%s", args[2], out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	},
	// httploop start URL | httploop stop: GET URL in a loop in the
	// background; stop fails unless every request answered 2xx.
	"httploop": func(ts *testscript.TestScript, neg bool, args []string) {
		switch {
		case len(args) == 2 && args[0] == "start":
			l := &requestLoop{stop: make(chan struct{}), done: make(chan struct{})}
			loops.Store(ts, l)
			client := &http.Client{Timeout: 30 * time.Second}
			go func() {
				defer close(l.done)
				for {
					select {
					case <-l.stop:
						return
					default:
					}
					resp, err := client.Get(args[1])
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					if err != nil || resp.StatusCode/100 != 2 {
						l.fail++
						if err != nil {
							l.lastErr = err.Error()
						} else {
							l.lastErr = resp.Status
						}
					} else {
						l.ok++
					}
				}
			}()
		case len(args) == 1 && args[0] == "stop":
			v, ok := loops.LoadAndDelete(ts)
			if !ok {
				ts.Fatalf("httploop stop without start")
			}
			l := v.(*requestLoop)
			close(l.stop)
			<-l.done
			fmt.Fprintf(ts.Stdout(), "requests: %d ok, %d failed\n", l.ok, l.fail)
			if l.fail > 0 || l.ok == 0 {
				ts.Fatalf("request loop: %d ok, %d failed (last: %s)", l.ok, l.fail, l.lastErr)
			}
		default:
			ts.Fatalf("usage: httploop start URL | httploop stop")
		}
	},
	"freeport": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 1 {
			ts.Fatalf("usage: freeport VAR")
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			ts.Fatalf("%v", err)
		}
		ts.Setenv(args[0], fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
		ln.Close()
	},
	"origin": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 1 {
			ts.Fatalf("usage: origin NAME")
		}
		name := args[0]
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s path=%s host=%s\n", name, r.URL.Path, r.Host)
		}))
		ts.Defer(srv.Close)
		ts.Setenv("ORIGIN", strings.TrimPrefix(srv.URL, "http://"))
	},
	"waitmatch": func(ts *testscript.TestScript, neg bool, args []string) {
		wait := 15 * time.Second
		if len(args) == 5 && args[0] == "-t" {
			d, err := time.ParseDuration(args[1])
			ts.Check(err)
			wait, args = d, args[2:]
		}
		if len(args) != 3 {
			ts.Fatalf("usage: waitmatch [-t DURATION] FILE REGEX VAR")
		}
		re := regexp.MustCompile(args[1])
		deadline := time.Now().Add(wait)
		for {
			data, _ := os.ReadFile(ts.MkAbs(args[0]))
			if m := re.FindSubmatch(data); m != nil {
				if len(m) > 1 {
					ts.Setenv(args[2], string(m[1]))
				}
				return
			}
			if time.Now().After(deadline) {
				ts.Fatalf("%s never matched %q; it holds:\n%s", args[0], args[1], data)
			}
			time.Sleep(20 * time.Millisecond)
		}
	},
	"mcpserver": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 1 || (args[0] != "good" && args[0] != "bad" && args[0] != "slow") {
			ts.Fatalf("usage: mcpserver good|bad|slow")
		}
		mime := "text/html;profile=mcp-app"
		if args[0] == "bad" {
			mime = "text/html+skybridge"
		}
		s := mcp.NewServer(&mcp.Implementation{Name: "script-" + args[0], Version: "1.0.0"}, nil)
		s.AddTool(&mcp.Tool{Name: "echo", Description: "Echo the text", InputSchema: map[string]any{"type": "object"},
			Meta: mcp.Meta{"ui": map[string]any{"resourceUri": "ui://echo"}}},
			func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				if args[0] == "slow" { // answers only when the caller gives up
					<-ctx.Done()
					return nil, ctx.Err()
				}
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "echoed"}}}, nil
			})
		s.AddResource(&mcp.Resource{URI: "ui://echo", Name: "echo", MIMEType: mime},
			func(ctx context.Context, r *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
				return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: "ui://echo", MIMEType: mime,
					Text: "<!doctype html><html><body>echo</body></html>", Meta: mcp.Meta{"ui": map[string]any{"csp": map[string]any{}}}}}}, nil
			})
		srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
		ts.Defer(srv.Close)
		ts.Setenv("MCP_URL", srv.URL+"/mcp")
	},
	"mcplist": func(ts *testscript.TestScript, neg bool, args []string) {
		save := ""
		if len(args) == 3 && args[0] == "-o" {
			save, args = ts.MkAbs(args[1]), args[2:]
		}
		if len(args) != 1 {
			ts.Fatalf("usage: mcplist [-o DIR] URL")
		}
		ts.Check(mcpList(ts.Stdout(), args[0], save))
	},
	// shades FILE.png dark|light: the screenshot is not blank (text in the
	// other shade) and its background is the given shade.
	"shades": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 || (args[1] != "dark" && args[1] != "light") {
			ts.Fatalf("usage: shades FILE.png dark|light")
		}
		f, err := os.Open(ts.MkAbs(args[0]))
		ts.Check(err)
		defer f.Close()
		img, err := png.Decode(f)
		ts.Check(err)
		var dark, light int
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bl, _ := img.At(x, y).RGBA()
				switch l := (r + g + bl) / 3; {
				case l < 0x4000:
					dark++
				case l > 0xc000:
					light++
				}
			}
		}
		fmt.Fprintf(ts.Stdout(), "%d dark, %d light pixels\n", dark, light)
		if args[1] == "dark" && (dark < light || light < 50) || args[1] == "light" && (light < dark || dark < 50) {
			ts.Fatalf("%s: %d dark, %d light pixels: not a %s render with content", args[0], dark, light, args[1])
		}
	},
	"httpserve": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 {
			ts.Fatalf("usage: httpserve DIR VAR")
		}
		srv := httptest.NewServer(http.FileServer(http.Dir(ts.MkAbs(args[0]))))
		ts.Defer(srv.Close)
		ts.Setenv(args[1], srv.URL)
	},
	"oauthstart": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 3 {
			ts.Fatalf("usage: oauthstart VIA URL VAR")
		}
		via, route := args[0], args[1]
		client := &http.Client{Timeout: 15 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, via)
			}}}
		// The relay's URL is the route's without its first label.
		u, _ := url.Parse(route)
		host := u.Host[strings.IndexByte(u.Host, '.')+1:]
		relay := u.Scheme + "://" + host
		resp, err := client.Post(relay+"/oauth/register", "application/json",
			strings.NewReader(`{"client_name":"script app","redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"none"}`))
		if err != nil {
			ts.Fatalf("register: %v", err)
		}
		var reg struct {
			ClientID string `json:"client_id"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&reg)
		resp.Body.Close()
		q := url.Values{"response_type": {"code"}, "client_id": {reg.ClientID}, "redirect_uri": {"http://127.0.0.1:9/cb"},
			"state": {"s"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWZ9MC7Rd7VVE"}, "code_challenge_method": {"S256"},
			"resource": {route + "/mcp"}}
		next := relay + "/oauth/authorize?" + q.Encode()
		for range 5 {
			resp, err := client.Get(next)
			if err != nil {
				ts.Fatalf("GET %s: %v", next, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 {
				next = loc
				continue
			}
			m := regexp.MustCompile(`class="code">([0-9A-Z]{4}-[0-9A-Z]{4})<`).FindSubmatch(body)
			if m == nil {
				ts.Fatalf("no code on %s (%d):\n%s", next, resp.StatusCode, body)
			}
			ts.Setenv(args[2], string(m[1]))
			page, done := next, make(chan string, 1)
			waits.Store(ts, done)
			go func() {
				for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
					resp, err := client.Get(page)
					if err != nil {
						continue
					}
					resp.Body.Close()
					loc := resp.Header.Get("Location")
					switch {
					case resp.StatusCode == http.StatusSeeOther:
						done <- "approved"
						return
					case resp.StatusCode == http.StatusForbidden:
						done <- "denied"
						return
					case loc != "":
						done <- "moved to " + loc
						return
					}
				}
				done <- "still waiting"
			}()
			return
		}
		ts.Fatalf("too many redirects from %s", next)
	},
	"oauthwait": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 1 {
			ts.Fatalf("usage: oauthwait VAR")
		}
		v, ok := waits.Load(ts)
		if !ok {
			ts.Fatalf("oauthwait without oauthstart")
		}
		ts.Setenv(args[0], <-v.(chan string))
	},
	"resetflood": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 {
			ts.Fatalf("usage: resetflood ADDR N")
		}
		n, err := strconv.Atoi(args[1])
		ts.Check(err)
		reqs := strings.Repeat("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 40)
		for i := 0; i < n; i++ {
			c, err := net.DialTimeout("tcp", args[0], 5*time.Second)
			if err != nil {
				ts.Fatalf("connection %d of %d: %v", i+1, n, err)
			}
			_, _ = io.WriteString(c, reqs)
			// The first byte of an answer: the relay is writing when the
			// reset arrives.
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _ = c.Read(make([]byte, 1))
			_ = c.(*net.TCPConn).SetLinger(0)
			_ = c.Close()
		}
	},
	"httpget": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 {
			ts.Fatalf("usage: httpget VIA URL")
		}
		via := args[0]
		client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if via != "-" {
					addr = via
				}
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			}}}
		resp, err := client.Get(args[1])
		if err != nil {
			ts.Fatalf("GET %s: %v", args[1], err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(ts.Stdout(), "status: %d\ncontent-type: %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	},
}

// mcpTestServer is a program for scripts (like pomdev, installed in PATH):
// a go-sdk MCP server on 127.0.0.1:$PORT with /mcp and /health, one tool
// per field of ./tools.txt (NAME or NAME:PROP,PROP), read at start.
func mcpTestServer() {
	s := mcp.NewServer(&mcp.Implementation{Name: "testserver", Version: "1.0.0"}, nil)
	data, _ := os.ReadFile("tools.txt")
	// A field is NAME or NAME:PROP,PROP (string properties of its input).
	for _, field := range strings.Fields(string(data)) {
		name, props, _ := strings.Cut(field, ":")
		schema := map[string]any{"type": "object"}
		if props != "" {
			p := map[string]any{}
			for _, prop := range strings.Split(props, ",") {
				p[prop] = map[string]any{"type": "string"}
			}
			schema["properties"] = p
		}
		s.AddTool(&mcp.Tool{Name: name, Description: "tool " + name, InputSchema: schema},
			func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name}}}, nil
			})
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, `{"status":"ok"}`) })
	fmt.Println("testserver listening on", os.Getenv("PORT"))
	if err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// mcpList is a client of the official Go SDK that advertises the MCP Apps
// extension, lists the tools at url and reads the UI resource of each tool
// that has one, printing "tool NAME UI" and "resource URI MIME BYTES" lines.
// With save set, it writes each resource's HTML to save/<name>.html
// (ui://echo to echo.html).
func mcpList(w io.Writer, url, save string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	caps := &mcp.ClientCapabilities{}
	caps.AddExtension("io.modelcontextprotocol/ui", map[string]any{"mimeTypes": []any{"text/html;profile=mcp-app"}})
	client := mcp.NewClient(&mcp.Implementation{Name: "script-client", Version: "1.0.0"}, &mcp.ClientOptions{Capabilities: caps})
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, DisableStandaloneSSE: true}, nil)
	if err != nil {
		return err
	}
	defer session.Close()
	for tool, err := range session.Tools(ctx, nil) {
		if err != nil {
			return err
		}
		ui, _ := tool.Meta["ui"].(map[string]any)
		uri, _ := ui["resourceUri"].(string)
		fmt.Fprintf(w, "tool %s %s\n", tool.Name, uri)
		if uri == "" {
			continue
		}
		res, err := session.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		if err != nil {
			return fmt.Errorf("read %s: %w", uri, err)
		}
		for _, c := range res.Contents {
			fmt.Fprintf(w, "resource %s %s %d\n", c.URI, c.MIMEType, len(c.Text))
			if save != "" {
				name := strings.TrimPrefix(c.URI, "ui://")
				if strings.ContainsAny(name, `/\`) || strings.Contains(name, "..") {
					return fmt.Errorf("resource %s: not a plain name", c.URI)
				}
				if err := os.MkdirAll(save, 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(save, name+".html"), []byte(c.Text), 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// processesWith lists "pid: cmdline" of the processes whose command line
// contains text (Linux /proc; none elsewhere).
func processesWith(text string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == self {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmdline := strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
		if strings.Contains(cmdline, text) {
			out = append(out, e.Name()+": "+cmdline)
		}
	}
	return out
}
