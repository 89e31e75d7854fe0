package access

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// RFC 9207: every authorization response, success or error, carries the
// issuer as iss, so a client talking to several authorization servers can
// tell whose response it holds (the mix-up attack). op does not add it;
// the relay does, on every redirect to a client (withIss, issWriter).

// withIss is the authorization response URI u with iss appended, keeping
// the client's own query as it was. Responses are in query mode only
// (serveAuthorize refuses the others).
func (s *Server) withIss(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Query().Has("iss") {
		return u
	}
	if p.RawQuery != "" {
		p.RawQuery += "&"
	}
	p.RawQuery += "iss=" + url.QueryEscape(s.cfg.Issuer)
	return p.String()
}

// deniedURL is where the browser goes back to with access_denied for row,
// "" when its redirect URI cannot carry it.
func (s *Server) deniedURL(row authRow, why string) string {
	e := oidc.ErrAccessDenied().WithDescription("%s", why)
	e.State = row.Data.State
	back, err := op.AuthResponseURL(row.Data.RedirectURI, oidc.ResponseType(row.Data.ResponseType), oidc.ResponseModeQuery, e, s.provider.Encoder())
	if err != nil {
		return ""
	}
	return s.withIss(back)
}

// internalRedirect reports whether loc is one of the relay's own pages in
// the authorization flow (the approval page, op's callback), not a
// response to the client.
func (s *Server) internalRedirect(loc string) bool {
	return strings.HasPrefix(loc, s.cfg.Issuer+PathApprove+"?") || strings.HasPrefix(loc, s.cfg.Issuer+PathAuthorize+"/callback?")
}

// issWriter adds iss to the redirects op answers with to a client.
type issWriter struct {
	http.ResponseWriter
	s *Server
}

func (w issWriter) WriteHeader(status int) {
	if status/100 == 3 {
		if loc := w.Header().Get("Location"); loc != "" && !w.s.internalRedirect(loc) {
			w.Header().Set("Location", w.s.withIss(loc))
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w issWriter) Write(b []byte) (int, error) { return w.ResponseWriter.Write(b) }

func (w issWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
