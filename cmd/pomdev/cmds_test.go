package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// scriptCmds are test-only commands for end-to-end scripts:
//
//	origin NAME                 start an HTTP server in the test; sets $ORIGIN (host:port)
//	waitmatch FILE REGEX VAR    wait (15 s) until FILE matches REGEX; VAR = first group
//	httpget VIA URL             GET URL dialling VIA (host:port) whatever the URL's host;
//	                            prints "status: N" and the body
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
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
		if len(args) != 3 {
			ts.Fatalf("usage: waitmatch FILE REGEX VAR")
		}
		re := regexp.MustCompile(args[1])
		deadline := time.Now().Add(15 * time.Second)
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
	"httpget": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 {
			ts.Fatalf("usage: httpget VIA URL")
		}
		via := args[0]
		client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, via)
			}}}
		resp, err := client.Get(args[1])
		if err != nil {
			ts.Fatalf("GET %s: %v", args[1], err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(ts.Stdout(), "status: %d\n%s", resp.StatusCode, body)
	},
}
