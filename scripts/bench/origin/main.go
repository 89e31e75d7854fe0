// Command origin is the benchmark's local server: GET / answers a 1.3 KB
// JSON body; GET /sse streams one event per -interval, each carrying its
// send time so a reader can compute the delay added in between.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	interval := flag.Duration("interval", 20*time.Millisecond, "SSE event interval")
	flag.Parse()
	body := []byte(`{"jsonrpc":"2.0","id":1,"result":{"tools":[` + strings.TrimSuffix(strings.Repeat(`{"name":"echo","description":"Echo the text back","inputSchema":{"type":"object","properties":{"text":{"type":"string"}}}},`, 10), ",") + `]}}`)
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	http.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		t := time.NewTicker(*interval)
		defer t.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
				fmt.Fprintf(w, "data: %d\n\n", time.Now().UnixNano())
				fl.Flush()
			}
		}
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("origin %s body %d bytes\n", ln.Addr(), len(body))
	log.Fatal(http.Serve(ln, nil))
}
