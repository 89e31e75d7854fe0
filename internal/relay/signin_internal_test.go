package relay

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// addrListener is a listener that only has an address.
type addrListener struct {
	net.Listener
	addr net.Addr
}

func (l addrListener) Addr() net.Addr { return l.addr }

// The admin token may be sent over TLS, behind a TLS terminator, or to a
// loopback front; a plain-HTTP front on a network address does not ask for
// it and refuses it, pointing at pomdev relay approve.
func TestSigninTokenOnlyWhereSafe(t *testing.T) {
	lan := addrListener{addr: &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 8088}}
	loop := addrListener{addr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 8088}}
	plain := httptest.NewRequest("GET", "http://relay.example/.pomdev/sign_in", nil)
	secure := httptest.NewRequest("GET", "https://relay.example/.pomdev/sign_in", nil)
	secure.TLS = &tls.ConnectionState{}
	for _, tc := range []struct {
		name string
		cfg  Config
		req  *http.Request
		safe bool
	}{
		{"plain on a network address", Config{HTTPListener: lan, Scheme: "http"}, plain, false},
		{"plain on loopback", Config{HTTPListener: loop, Scheme: "http"}, plain, true},
		{"behind a TLS terminator", Config{HTTPListener: lan, Scheme: "https"}, plain, true},
		{"TLS", Config{HTTPListener: lan, Scheme: "https"}, secure, true},
	} {
		r := &Relay{cfg: tc.cfg}
		if got := r.tokenSafe(tc.req); got != tc.safe {
			t.Errorf("%s: tokenSafe = %v", tc.name, got)
		}
	}

	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := &signin{token: "secret", now: func() time.Time { return now }, pending: map[string]*pending{
		"ABCD-EFGH": {fp: "SHA256:key", remote: "198.51.100.7:50000", created: now.Add(-30 * time.Second), expires: now.Add(10 * time.Minute), done: make(chan bool, 1)},
	}}
	w := httptest.NewRecorder()
	s.servePage(w, httptest.NewRequest("GET", "/.pomdev/sign_in?user_code=ABCD-EFGH", nil), false)
	body := w.Body.String()
	if strings.Contains(body, `name="token"`) || !strings.Contains(body, "pomdev relay approve ABCD-EFGH") || !strings.Contains(body, "198.51.100.7:50000") || !strings.Contains(body, "30s ago") {
		t.Fatalf("page on a plain network front:\n%s", body)
	}
	w = httptest.NewRecorder()
	form := url.Values{"user_code": {"ABCD-EFGH"}, "token": {"secret"}, "action": {"approve"}}
	req := httptest.NewRequest("POST", "/.pomdev/sign_in", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s.servePage(w, req, false)
	if w.Code != http.StatusForbidden || len(s.pending["ABCD-EFGH"].done) != 0 {
		t.Fatalf("token accepted over plain HTTP: %d %s", w.Code, w.Body)
	}
}
