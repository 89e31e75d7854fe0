package relay_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pomdev/pomdev/internal/relay/access"
)

// hostile are values no store keeps as sent: a NUL, bytes that are not
// UTF-8, a rune cut in two. PostgreSQL refuses them in text where SQLite
// takes them; either way a stranger sending them gets a 4xx, never a 5xx,
// and the relay goes on serving.
var hostile = []string{"a\x00b", "\xff\xfe", "caf\xc3", strings.Repeat("é", 150) + "\x00"}

func TestHostileTextInTheStore(t *testing.T) {
	g := startGated(t, nil)
	_, tk := g.grant(t)
	base := g.h.R.BaseURL()
	c := g.noRedirect()
	send := func(method, u string, body io.Reader, ctype string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, u, body)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, v := range hostile {
		// Registration: a name that is stored, made storable.
		meta, _ := json.Marshal(map[string]any{"client_name": v, "redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none"})
		// encoding/json writes bad bytes as U+FFFD; send them raw too.
		raw := `{"client_name":"` + v + `","redirect_uris":["` + redirect + `"],"token_endpoint_auth_method":"none"}`
		for _, body := range []string{string(meta), raw} {
			status, out := send(http.MethodPost, base+access.PathRegister, strings.NewReader(body), "application/json")
			if status >= 500 {
				t.Fatalf("register %q: %d %s", v, status, out)
			}
			if status == http.StatusCreated {
				var r struct {
					ClientID   string `json:"client_id"`
					ClientName string `json:"client_name"`
				}
				if err := json.Unmarshal([]byte(out), &r); err != nil || !utf8.ValidString(r.ClientName) {
					t.Fatalf("register %q: %s %v", v, out, err)
				}
				// The client is there, under a name a page can show.
				_, challenge := pkce()
				status, out := send(http.MethodGet, g.authorizeURL(r.ClientID, challenge, "S256", g.url+"/mcp"), nil, "")
				if status >= 500 {
					t.Fatalf("authorize registered %q: %d %s", v, status, out)
				}
			}
		}
		// Lookups by a stranger's bytes: a client, a request, a token.
		_, challenge := pkce()
		for _, u := range []string{
			g.authorizeURL(v, challenge, "S256", g.url+"/mcp"),
			base + access.PathApprove + "?id=" + url.QueryEscape(v),
			base + access.PathAuthorize + "/callback?id=" + url.QueryEscape(v),
		} {
			if status, out := send(http.MethodGet, u, nil, ""); status >= 500 {
				t.Fatalf("GET %s: %d %s", u, status, out)
			}
		}
		// A request id no store holds is no request, on either engine.
		if status, out := send(http.MethodGet, base+access.PathAuthorize+"/callback?id="+url.QueryEscape(v), nil, ""); status != http.StatusBadRequest || !strings.Contains(out, "no such authorization request") {
			t.Fatalf("callback for %q: %d %s", v, status, out)
		}
		for _, form := range []url.Values{
			{"grant_type": {"authorization_code"}, "code": {v}, "client_id": {v}, "redirect_uri": {redirect}, "code_verifier": {"x"}},
			{"grant_type": {"refresh_token"}, "refresh_token": {v}, "client_id": {v}},
		} {
			status, out := send(http.MethodPost, base+access.PathToken, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
			if status >= 500 || status < 400 {
				t.Fatalf("token %v: %d %s", form, status, out)
			}
		}
		for _, p := range []string{access.PathRevoke, access.PathIntrospect} {
			form := url.Values{"token": {v}, "client_id": {v}}
			if status, out := send(http.MethodPost, base+p, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"); status >= 500 {
				t.Fatalf("%s %q: %d %s", p, v, status, out)
			}
		}
		// A header cannot hold a NUL (net/http refuses to send it).
		if !strings.Contains(v, "\x00") {
			if resp := g.post(t, g.url+"/mcp", v); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("bearer %q: %d", v, resp.StatusCode)
			}
		}
	}
	// And the relay still serves the grant made before.
	if resp := g.post(t, g.url+"/mcp", tk.Access); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the hostile values: %d", resp.StatusCode)
	}
}
