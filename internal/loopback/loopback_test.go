package loopback

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A name under localhost reaches a server on 127.0.0.1, keeping the name
// as the Host; other names are resolved as usual.
func TestLocalhostNames(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.Host) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	for _, host := range []string{"brave-otter-042.localhost", "LOCALHOST", "a.b.localhost."} {
		resp, err := Client().Get("http://" + net.JoinHostPort(host, port) + "/")
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.EqualFold(string(body), net.JoinHostPort(host, port)) {
			t.Errorf("%s: the server saw Host %q", host, body)
		}
	}
	for _, h := range []string{"localhost.example.com", "notlocalhost", "example.localhost.com"} {
		if IsLocalhost(h) {
			t.Errorf("%s taken for localhost", h)
		}
	}
	if _, err := DialContext(context.Background(), "tcp", "127.0.0.1:"+port); err != nil {
		t.Fatal(err)
	}
}
