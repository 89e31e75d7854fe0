package access

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// A metadata document on loopback or a private address is refused when
// the relay is public (SSRF), whatever DNS says: the check is on the
// address dialled.
func TestCIMDRefusesPrivateAddresses(t *testing.T) {
	hits := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	for _, host := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		c := newCIMD(false, roots, time.Now)
		_, err := c.get(context.Background(), host+"/client.json")
		if err == nil || !strings.Contains(err.Error(), "not public") {
			t.Errorf("%s: %v", host, err)
		}
	}
	if hits != 0 {
		t.Fatalf("the private server was reached %d times", hits)
	}
	for _, ip := range []string{"10.1.2.3:443", "192.168.0.1:443", "169.254.169.254:80", "[::1]:443", "[fe80::1]:443", "100.64.0.1:443", "0.0.0.0:443",
		"0.1.2.3:443", "[2002:a9fe:a9fe::1]:443", "[64:ff9b:1::a9fe:a9fe]:443", "[2001:0:4136:e378:8000:63bf:3fff:fdd2]:443", "[fec0::1]:443",
		"192.0.0.8:443", "198.18.0.1:443", "198.19.255.255:443", "240.0.0.1:443", "255.255.255.255:443", "[::ffff:10.0.0.1]:443", "[fd00::1]:443",
		"[2001:db8::1]:443", "192.0.2.1:443", "203.0.113.5:443"} {
		if publicOnly("tcp", ip, nil) == nil {
			t.Errorf("%s allowed", ip)
		}
	}
	for _, ip := range []string{"93.184.215.14:443", "[2606:4700::6810:84e5]:443", "1.1.1.1:443", "[2001:4860:4860::8888]:443"} {
		if err := publicOnly("tcp", ip, nil); err != nil {
			t.Errorf("public address refused: %v", err)
		}
	}
}

func TestCIMDDocumentRules(t *testing.T) {
	var body string
	ctype := "application/json"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		_, _ = w.Write([]byte(strings.ReplaceAll(body, "SELF", "https://"+r.Host+r.URL.Path)))
	}))
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	good := `{"client_id":"SELF","client_name":"A","redirect_uris":["https://app.example/cb"]}`
	for _, tc := range []struct {
		name, body, ctype, want string
	}{
		{"good", good, "application/json", ""},
		{"other client_id", `{"client_id":"https://x.example/c","redirect_uris":["https://a/cb"]}`, "application/json", "names client_id"},
		{"secret", `{"client_id":"SELF","client_secret":"s","redirect_uris":["https://a/cb"]}`, "application/json", "client_secret"},
		{"no redirects", `{"client_id":"SELF"}`, "application/json", "redirect_uris"},
		{"javascript redirect", `{"client_id":"SELF","redirect_uris":["javascript:alert(1)"]}`, "application/json", "not allowed"},
		{"http redirect", `{"client_id":"SELF","redirect_uris":["http://evil.example/cb"]}`, "application/json", "loopback"},
		{"not JSON", good, "text/html", "not JSON"},
		{"too big", `{"client_id":"SELF","x":"` + strings.Repeat("a", cimdMaxBytes) + `"}`, "application/json", "larger than"},
		{"secret auth", `{"client_id":"SELF","redirect_uris":["https://a/cb"],"token_endpoint_auth_method":"client_secret_basic"}`, "application/json", "not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, ctype = tc.body, tc.ctype
			c := newCIMD(true, roots, time.Now)
			_, err := c.get(context.Background(), srv.URL+"/"+strings.ReplaceAll(tc.name, " ", "-"))
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	for _, id := range []string{"http://a.example/c", "https://a.example", "https://a.example/", "https://u:p@a.example/c",
		"https://a.example/c#f", "https://a.example/c?q=1", "https://a.example/x/../c"} {
		if checkCIMDURL(id) == nil {
			t.Errorf("client_id %q accepted", id)
		}
	}
}

// IDs never start with "-" or "_": they are typed as command arguments
// (pomdev access revoke ID), where a leading "-" is read as a flag (a
// grant ID "-mlfK1…" once failed so).
func TestRandomIDsAreArguments(t *testing.T) {
	for i := 0; i < 20000; i++ {
		if s := random(9); s[0] == '-' || s[0] == '_' || len(s) != 12 {
			t.Fatalf("random ID %q", s)
		}
	}
}

// Concurrent requests for one metadata document share one fetch, and what
// its server answers (status text, content type) is never echoed.
func TestCIMDFetchShared(t *testing.T) {
	var mu sync.Mutex
	hits := 0
	release := make(chan struct{})
	var self string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		<-release
		if r.URL.Path == "/bad.json" {
			w.Header().Set("Content-Type", "text/html; evil=Sign-in-at-evil.example")
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"client_id":"` + self + `","client_name":"A","redirect_uris":["https://app.example/cb"]}`))
	}))
	defer srv.Close()
	self = srv.URL + "/client.json"
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	c := newCIMD(true, roots, time.Now)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := c.get(context.Background(), self)
			errs <- err
		})
	}
	// Every caller is waiting before the one fetch answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := hits
		mu.Unlock()
		if n >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if hits != 1 {
		t.Fatalf("20 concurrent requests fetched the document %d times", hits)
	}
	_, err := c.get(context.Background(), srv.URL+"/bad.json")
	if err == nil || strings.Contains(err.Error(), "evil") || strings.Contains(err.Error(), "text/html") {
		t.Fatalf("the error echoes the server's answer: %v", err)
	}
}
