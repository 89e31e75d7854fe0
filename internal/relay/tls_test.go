package relay_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/relay"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
)

// With a wildcard certificate the front serves HTTPS and prints https URLs;
// --public-port changes the port in them.
func TestTLSFront(t *testing.T) {
	cert, pool := testCert(t)
	o := rt.NewOrigin(t, "tls")
	h := rt.StartRelay(t, func(c *relay.Config) {
		c.DefaultTarget = o.HostPort()
		c.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		c.PublicPort = 443
	})
	key2, _ := rt.WriteKey(t)
	p := h.RunSSH(key2, "-T", "-R", "0")
	url := strings.TrimPrefix(p.WaitLine(t, "Remote: "), "Remote: ")
	if !strings.HasPrefix(url, "https://") || strings.Count(url, ":") != 1 {
		t.Fatalf("url %q: want https without a port (public port 443)", url)
	}
	resp, err := tlsClient(h, pool).Get(url + "/secure")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if m := rt.Decode(t, string(body)); resp.StatusCode != 200 || m["origin"] != "tls" || m["xfp"] != "https" {
		t.Fatalf("%d %v", resp.StatusCode, m)
	}
}

// testCert is a self-signed certificate for localhost and *.localhost and
// a pool trusting it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "*.localhost"},
		DNSNames: []string{"*.localhost", "localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	parsed, _ := x509.ParseCertificate(der)
	pool.AddCert(parsed)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// tlsClient sends every request to the relay's HTTPS front, trusting pool.
func tlsClient(h *rt.Harness, pool *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, h.HTTPAddr)
		}}}
}
