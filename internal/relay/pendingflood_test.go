package relay_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pomdev/pomdev/internal/relay/access"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
)

// fromClient is an HTTPS client of g's front whose connections come from
// the loopback address ip (127.0.0.0/8 is all this machine's), so a test
// can speak as several sources; it hands redirects back.
func (g *gatedTunnel) fromClient(ip string) *http.Client {
	return &http.Client{Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: g.pool},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
				return d.DialContext(ctx, network, g.h.HTTPAddr)
			}}}
}

// TestOAuthPendingFlood: one address sending authorization requests with
// one self-registered client (named "ChatGPT", padded with spaces, its
// redirect on a lookalike IDN host) gets at most a few waiting for the
// owner; a request from elsewhere still gets a slot. The owner's status
// screen (a 60-column tmux pane) shows the request that a and d act on in
// full: its code and its host in punycode with a mark, never cut; the
// others counted. a approves that request, the one on the screen.
func TestOAuthPendingFlood(t *testing.T) {
	g := newGated(t, nil, true)
	tm, capture := g.ownerScreen(t, 60)

	lookalike := "https://сhatgpt.com/connector/oauth/cb" // a Cyrillic с
	body := fmt.Sprintf(`{"client_name":"ChatGPT%s(real)","redirect_uris":[%q],"token_endpoint_auth_method":"none"}`, strings.Repeat(" ", 100), lookalike)
	resp, err := g.client().Post(g.h.R.BaseURL()+access.PathRegister, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		ClientID string `json:"client_id"`
	}
	decodeJSON(t, resp, &reg)
	authURL := func() string {
		_, challenge := pkce()
		u := g.authorizeURL(reg.ClientID, challenge, "S256", g.url+"/mcp")
		return strings.Replace(u, "redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb", "redirect_uri="+urlEscape(lookalike), 1)
	}

	// The flood from one address: a few wait, the rest are refused.
	flood := g.fromClient("127.0.0.1")
	var codes []string
	refused := 0
	for range 16 {
		code, back := g.authorizeStep(t, flood, authURL())
		switch {
		case code != "":
			codes = append(codes, code)
		case back != nil && back.Query().Get("error") == "temporarily_unavailable":
			refused++
		default:
			t.Fatalf("a flood request: code %q, back %v", code, back)
		}
	}
	if len(codes) > 4 || refused < 12 {
		t.Fatalf("one address got %d requests waiting (%d refused)", len(codes), refused)
	}
	// The request the owner expects, from another address, waits too.
	real, back := g.authorizeStep(t, g.fromClient("127.0.0.2"), authURL())
	if real == "" {
		t.Fatalf("the request from another address was crowded out: %v", back)
	}

	var screen string
	more := fmt.Sprintf("+ %d more waiting", len(codes))
	rt.WaitFor(t, func() bool {
		screen = capture()
		return strings.Contains(screen, "code "+codes[0]) && strings.Contains(screen, more)
	}, "the first request in full and the others counted on the status screen")
	for _, want := range []string{"returns to", "xn--hatgpt-hrf.com (IDN)", `"ChatGPT (real)", registered dynamically from 127.0.0.1,`, "unverified; its name is not that of the host it returns to", more, "a: allow"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the screen lacks %q:\n%s", want, screen)
		}
	}
	if strings.Contains(screen, "сhatgpt") {
		t.Errorf("the lookalike host is shown in Unicode:\n%s", screen)
	}
	for _, l := range strings.Split(screen, "\n") {
		if utf8.RuneCountInString(l) > 60 {
			t.Errorf("a line wider than the pane: %q", l)
		}
	}
	tm("send-keys", "-t", "owner", "a")
	rt.WaitFor(t, func() bool {
		p, _ := g.h.R.Access().Pending(t.Context(), "")
		for _, q := range p {
			if q.Code == codes[0] {
				return false
			}
		}
		return len(p) == len(codes)
	}, "a to decide the request on the screen, and only it")
	grants, _ := g.h.R.Access().Grants(t.Context(), "")
	if len(grants) != 1 {
		t.Fatalf("grants after a: %+v", grants)
	}
}

func urlEscape(s string) string {
	return strings.NewReplacer(":", "%3A", "/", "%2F").Replace(s)
}

func decodeJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := jsonDecode(resp, v); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("%s: %d %v", resp.Request.URL, resp.StatusCode, err)
	}
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
