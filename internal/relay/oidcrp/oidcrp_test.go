package oidcrp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pomdev/pomdev/internal/relay/oidcrp"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
)

// TestStateCookieSecure: the cookie that binds a sign-in to its browser is
// Secure whenever the relay's public address is HTTPS, though the relay
// itself, behind a TLS terminator, sees plain HTTP; on a plain-HTTP relay
// (local development) it cannot be.
func TestStateCookieSecure(t *testing.T) {
	for _, tc := range []struct {
		base   string
		secure bool
	}{
		{"https://relay.example", true},
		{"http://relay.localhost:8080", false},
	} {
		redirect := tc.base + oidcrp.CallbackPath
		rp, err := oidcrp.New(context.Background(), oidcrp.Config{Issuer: rt.StartOP(t, redirect), ClientID: "web", ClientSecret: "secret", RedirectURL: redirect})
		if err != nil {
			t.Fatal(err)
		}
		// What a TLS terminator passes on: plain HTTP.
		w := httptest.NewRecorder()
		rp.Start(w, httptest.NewRequest("GET", "http://relay.example/.pomdev/oidc/start", nil), func(http.ResponseWriter, *http.Request, oidcrp.Identity, error) {})
		cookies := w.Result().Cookies()
		if len(cookies) != 1 {
			t.Fatalf("%s: cookies %v", tc.base, cookies)
		}
		c := cookies[0]
		if c.Secure != tc.secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("%s: the state cookie is %s (want Secure %v, HttpOnly, SameSite=Lax)", tc.base, c.String(), tc.secure)
		}
	}
}
