package access

import (
	"crypto/subtle"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// ConsentCookie names the cookie of the browser in which a person signed
// in for an app's authorization (--http-auth oidc); only that browser's
// Allow decides the request.
const ConsentCookie = "pomdev_consent"

// askConsent follows a sign-in that the relay allows: the request keeps
// waiting, bound to this browser (a cookie) and to a form secret, and the
// browser is sent to the page that asks the person (showConsent). Without
// this step, a link an attacker made with their own client and redirect,
// sent to someone the route lets in, would go from the provider's login
// straight to the attacker with a code.
func (s *Server) askConsent(w http.ResponseWriter, r *http.Request, row authRow, d authData) {
	cookie := random(32)
	d.ConsentBrowser, d.ConsentToken = hashSecret(cookie), random(24)
	if err := s.st.setData(r.Context(), row.ID, d); err != nil {
		s.errorPage(w, http.StatusInternalServerError, "Error", err.Error())
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: ConsentCookie, Value: cookie, Path: "/oauth/", HttpOnly: true,
		Secure: strings.HasPrefix(s.cfg.Issuer, "https://"), SameSite: http.SameSiteLaxMode,
		MaxAge: int(s.cfg.RequestTTL.Seconds()),
	})
	http.Redirect(w, r, s.cfg.Issuer+PathApprove+"?id="+url.QueryEscape(row.ID), http.StatusSeeOther)
}

// consentBrowser reports whether r comes from the browser row's consent is
// bound to.
func consentBrowser(r *http.Request, row authRow) bool {
	c, err := r.Cookie(ConsentCookie)
	return err == nil && len(c.Value) <= 64 && row.Data.ConsentBrowser != "" &&
		subtle.ConstantTimeCompare([]byte(hashSecret(c.Value)), []byte(row.Data.ConsentBrowser)) == 1
}

type consentData struct {
	who
	App, ClientID  string
	Returns, Route string
	Person         string
	ID, Token      string
}

var consentTmpl = template.Must(template.Must(template.New("consent").Parse(whoTmpl)).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Allow {{.App}}? · pomdev relay</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em;color:#222}
code{font-family:ui-monospace,monospace;word-break:break-all}dt{font-weight:600;margin-top:.5em}dd{margin:0}
button{font-size:1em;padding:.4em 1.2em;margin-right:1em}.warn{color:#a40}@media(prefers-color-scheme:dark){body{background:#111;color:#eee}}</style></head>
<body><h1>Allow {{.App}}?</h1>
<p>You signed in as <strong>{{.Person}}</strong>. An application asks to call the tools of the tunnel <code>{{.Route}}</code> as you.</p>
<dl>{{template "identity" .}}
<dt>Client ID</dt><dd><code>{{.ClientID}}</code></dd>
<dt>Returns to</dt><dd><code>{{.Returns}}</code></dd></dl>
<p>Allow it only if you started this from that application and it returns where you expect.</p>
<form method="post" action="approve"><input type="hidden" name="id" value="{{.ID}}"><input type="hidden" name="consent" value="{{.Token}}">
<button name="decision" value="allow">Allow</button><button name="decision" value="deny">Deny</button></form>
</body></html>
`))

// showConsent is the page that asks the person who signed in.
func (s *Server) showConsent(w http.ResponseWriter, r *http.Request, row authRow) {
	if !consentBrowser(r, row) {
		s.errorPage(w, http.StatusForbidden, "Not this browser", "This request waits for the person who signed in, in the browser they signed in with. Start again from the application.")
		return
	}
	q := requestOf(row)
	app := q.Verified
	if app == "" {
		app = "“" + q.ClientName + "”"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// No form-action: the form's answer redirects to the app, which
	// form-action would have to name.
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	_ = consentTmpl.Execute(w, consentData{
		who: whoOf(q), App: app, ClientID: row.ClientID,
		Returns: displayRedirect(row.Data.RedirectURI), Route: row.Route, Person: Person{Sub: row.Data.Sub, Email: row.Data.Email}.String(),
		ID: row.ID, Token: row.Data.ConsentToken,
	})
}

// consentDecide takes the person's Allow or Deny: from the browser bound
// to the request, with the form's secret.
func (s *Server) consentDecide(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PostForm.Get("id")
	row, err := s.st.auth(ctx, id)
	if err != nil || row.State != statePending || !row.Expires.After(s.cfg.Now()) || row.Data.ConsentToken == "" {
		s.errorPage(w, http.StatusNotFound, "Unknown request", "This authorization request is unknown or has ended. Start again from the application.")
		return
	}
	if !consentBrowser(r, row) || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("consent")), []byte(row.Data.ConsentToken)) != 1 {
		s.errorPage(w, http.StatusForbidden, "Not this browser", "Only the browser that signed in decides this request; nothing was authorized.")
		return
	}
	p := Person{Sub: row.Data.Sub, Email: row.Data.Email}
	allow := r.PostForm.Get("decision") == "allow"
	state, by := stateDenied, "identity provider: "+p.String()+" (denied)"
	if allow {
		state, by = stateApproved, "identity provider: "+p.String()+" (allowed)"
	}
	now := s.cfg.Now()
	d := row.Data
	d.ConsentToken = "" // used
	if done, err := s.st.decideWith(ctx, id, state, by, now, &d); err != nil || !done {
		s.errorPage(w, http.StatusNotFound, "Unknown request", "This authorization request has ended. Start again from the application.")
		return
	}
	s.log.Info("authorization request decided", "route", row.Route, "client", row.ClientID, "state", state, "by", by)
	s.audit.add(Entry{Kind: "decision", Route: row.Route, Client: row.ClientID, Owner: row.Owner, Decision: state, By: by, Reason: "consent"})
	if allow {
		s.recordGrant(ctx, row, by, now)
		http.Redirect(w, r, s.cfg.Issuer+PathAuthorize+"/callback?id="+url.QueryEscape(id), http.StatusSeeOther)
		return
	}
	back := s.deniedURL(row, "you denied the application access")
	_ = s.st.deleteAuth(ctx, id)
	s.render(w, http.StatusForbidden, pageData{Title: "Access denied", Message: "You denied the application access. It has been told.", Back: back})
}
