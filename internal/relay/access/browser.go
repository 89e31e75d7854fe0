package access

import (
	"net/http"
	"strings"
)

// BrowserCookie names the cookie that binds a browser to the grants whose
// approval it carried back to the application. A remembered approval of a
// public client is used only for a request that carries it (see
// remembered in opstorage.go).
const BrowserCookie = "pomdev_browser"

// browserCookieLen is the length of a cookie's value: random(32), 32
// random bytes in base64url without padding.
const browserCookieLen = 43

// browserOf is the hash of r's browser cookie, "" when it has none of the
// relay's shape.
func browserOf(r *http.Request) string {
	c, err := r.Cookie(BrowserCookie)
	if err != nil || len(c.Value) != browserCookieLen || strings.Trim(c.Value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return ""
	}
	return hashSecret(c.Value)
}

// bindBrowser binds the browser on which the approval of row arrives to
// the grant recorded for it, giving the browser a cookie if it has none:
// HttpOnly, Secure when the relay's issuer is HTTPS, SameSite=Lax (an
// application sends the browser to the authorize endpoint by a top-level
// navigation from its own site), scoped to the relay's /oauth/ paths and
// lasting as long as a grant.
func (s *Server) bindBrowser(w http.ResponseWriter, r *http.Request, row authRow) {
	ctx := r.Context()
	g, err := s.st.liveGrant(ctx, row.Owner, row.ClientID, s.cfg.Now())
	if err != nil || !g.covers(row.Route) {
		return
	}
	h := browserOf(r)
	if h == "" {
		v := random(32)
		http.SetCookie(w, &http.Cookie{
			Name: BrowserCookie, Value: v, Path: "/oauth/", HttpOnly: true,
			Secure: strings.HasPrefix(s.cfg.Issuer, "https://"), SameSite: http.SameSiteLaxMode,
			MaxAge: int(s.cfg.GrantTTL.Seconds()),
		})
		h = hashSecret(v)
	}
	if g.bound(h) {
		return
	}
	if err := s.st.bindBrowser(ctx, g.ID, h); err != nil {
		s.log.Warn("cannot bind a browser to a grant", "grant", g.ID, "err", err)
	}
}
