package access

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	relaystore "github.com/pomdev/pomdev/internal/relay/store"
)

// Bounds of the requests waiting on one route's owner: in all, from one
// client, and from one source address. Anyone may send authorization
// requests, so one client or one address must not fill the owner's list
// and crowd out the request the owner expects.
const (
	maxPendingPerRoute  = 16
	maxPendingPerClient = 8
	maxPendingPerSource = 4
)

// pendingRoom says why no request of client from source may wait on
// route now, "" when one may.
func (s *Server) pendingRoom(ctx context.Context, route, client, source string) string {
	rows, err := s.st.pendingOn(ctx, route, s.cfg.Now())
	if err != nil {
		return "the relay cannot count the waiting requests"
	}
	all := len(rows)
	var byClient, bySource int
	for _, a := range rows {
		if a.ClientID == client {
			byClient++
		}
		if a.Data.Source == source {
			bySource++
		}
	}
	switch {
	case bySource >= maxPendingPerSource:
		return fmt.Sprintf("%d requests from your address are already waiting for this tunnel's owner", bySource)
	case byClient >= maxPendingPerClient:
		return fmt.Sprintf("%d requests of this application are already waiting for this tunnel's owner", byClient)
	case all >= maxPendingPerRoute:
		return "too many requests are waiting for this tunnel's owner"
	}
	return ""
}

func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request, oidcDoc bool) {
	iss := s.cfg.Issuer
	meta := oauthex.AuthServerMeta{
		Issuer:                                    iss,
		AuthorizationEndpoint:                     iss + PathAuthorize,
		TokenEndpoint:                             iss + PathToken,
		JWKSURI:                                   iss + PathIDTokenJWKS, // ID tokens; identity assertions: PathJWKS
		RegistrationEndpoint:                      iss + PathRegister,
		ScopesSupported:                           []string{Scope, "offline_access"},
		ResponseTypesSupported:                    []string{"code"},
		ResponseModesSupported:                    []string{"query"},
		GrantTypesSupported:                       []string{"authorization_code", "refresh_token"},
		TokenEndpointAuthMethodsSupported:         []string{"none", "client_secret_basic", "client_secret_post", "private_key_jwt"},
		RevocationEndpoint:                        iss + PathRevoke,
		RevocationEndpointAuthMethodsSupported:    []string{"none", "client_secret_basic", "client_secret_post", "private_key_jwt"},
		IntrospectionEndpoint:                     iss + PathIntrospect,
		IntrospectionEndpointAuthMethodsSupported: []string{"client_secret_basic", "private_key_jwt"}, // op takes only Basic for secrets there
		CodeChallengeMethodsSupported:             []string{"S256"},
		ClientIDMetadataDocumentSupported:         true,
		// RFC 9207: every authorization response names the issuer.
		AuthorizationResponseIssParameterSupported: true,
	}
	algs := make([]string, len(AssertionAlgs))
	for i, a := range AssertionAlgs {
		algs[i] = string(a)
	}
	meta.TokenEndpointAuthSigningAlgValuesSupported = algs
	meta.RevocationEndpointAuthSigningAlgValuesSupported = algs
	meta.IntrospectionEndpointAuthSigningAlgValuesSupported = algs
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if !oidcDoc {
		_ = json.NewEncoder(w).Encode(meta)
		return
	}
	_ = json.NewEncoder(w).Encode(struct {
		oauthex.AuthServerMeta
		Subjects []string `json:"subject_types_supported"`
		IDAlgs   []string `json:"id_token_signing_alg_values_supported"`
	}{meta, []string{"public"}, []string{"ES256"}})
}

// serveAuthorize checks what op leaves to the server — the client's exact
// redirect URI, the RFC 8707 resource naming a live route, PKCE S256 — and
// hands the request to op, whose storage parks it for the owner.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "Bad authorization request", err.Error())
		return
	}
	f := r.Form
	if k := repeated(f); k != "" {
		s.errorPage(w, http.StatusBadRequest, "Bad authorization request", "The parameter "+strconv.Quote(k)+" is repeated (RFC 6749 §3.1: parameters must not be included more than once); nothing was authorized.")
		return
	}
	c, err := s.client(r.Context(), f.Get("client_id"))
	if err != nil {
		s.errorPage(w, http.StatusBadRequest, "Unknown application", err.Error())
		return
	}
	if !slices.Contains(c.redirects, f.Get("redirect_uri")) {
		s.errorPage(w, http.StatusBadRequest, "Unregistered redirect", "The application asked to return to an address it did not register; nothing was authorized.")
		return
	}
	w = issWriter{w, s}
	req, err := op.ParseAuthorizeRequest(r, s.provider.Decoder())
	if err != nil {
		op.AuthRequestError(w, r, nil, err, s.provider)
		return
	}
	fail := func(e *oidc.Error) { op.AuthRequestError(w, r, req, e, s.provider) }
	if m := req.ResponseMode; m != "" && m != oidc.ResponseModeQuery {
		req.ResponseMode = oidc.ResponseModeQuery
		fail(oidc.ErrInvalidRequest().WithDescription("response_mode must be query (the only one this relay supports)"))
		return
	}
	resources := f["resource"]
	if len(resources) != 1 {
		fail(oidc.ErrInvalidTarget().WithDescription("exactly one resource (RFC 8707) must name the tunnel's MCP URL"))
		return
	}
	route, ok := s.cfg.Resolver.RouteOf(resources[0])
	if !ok {
		fail(oidc.ErrInvalidTarget().WithDescription("the resource is not a tunnel of this relay"))
		return
	}
	owner := s.cfg.Resolver.Owner(route)
	if owner == "" {
		fail(oidc.ErrInvalidTarget().WithDescription("no tunnel holds this address"))
		return
	}
	if req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		fail(oidc.ErrInvalidRequest().WithDescription("PKCE with code_challenge_method S256 is required"))
		return
	}
	if req.ResponseType != oidc.ResponseTypeCode {
		fail((&oidc.Error{ErrorType: "unsupported_response_type"}).WithDescription("only the authorization code flow is supported"))
		return
	}
	if why := s.pendingRoom(r.Context(), route, c.id, sourceIP(r)); why != "" {
		fail((&oidc.Error{ErrorType: "temporarily_unavailable"}).WithDescription("%s", why))
		return
	}
	if strings.TrimSpace(f.Get("scope")) == "" {
		f.Set("scope", Scope)
	}
	name := c.name
	if name == "" {
		name = c.id
	}
	info := &reqInfo{route: route, owner: owner, resource: s.cfg.Resolver.Resource(route), clientName: name, client: c,
		browser: browserOf(r), source: sourceIP(r)}
	s.provider.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, info)))
}

// serveToken passes the RFC 8707 resource of a token request to storage,
// which checks it against the grant.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if !parseOAuthForm(w, r) {
		return
	}
	info := &reqInfo{}
	if res := r.PostForm["resource"]; len(res) > 0 {
		route, ok := s.cfg.Resolver.RouteOf(res[0])
		if len(res) > 1 || !ok {
			oauthError(w, http.StatusBadRequest, "invalid_target", "the resource is not a tunnel of this relay")
			return
		}
		info.route = route
	}
	if err := s.authenticateClient(r, info, s.cfg.Issuer+PathToken); err != nil {
		s.refuseClient(w, r, err)
		return
	}
	s.provider.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, info)))
}

// serveClientAuthenticated is revocation and introspection: the client's
// own authentication method enforced (authenticateClient), then op.
func (s *Server) serveClientAuthenticated(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "this endpoint takes a POST of a form")
		return
	}
	if !parseOAuthForm(w, r) {
		return
	}
	info := &reqInfo{}
	if err := s.authenticateClient(r, info, s.cfg.Issuer+r.URL.Path); err != nil {
		s.refuseClient(w, r, err)
		return
	}
	s.provider.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, info)))
}

// refuseClient answers a failed client authentication: invalid_client, 401
// (RFC 6749 §5.2), or 503 when the relay cannot check it now.
func (s *Server) refuseClient(w http.ResponseWriter, r *http.Request, err error) {
	var ce *clientAuthError
	if !errors.As(err, &ce) {
		w.Header().Set("Retry-After", "60")
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", err.Error())
		return
	}
	s.log.Info("client authentication refused", "path", r.URL.Path, "source", sourceIP(r), "why", ce.msg)
	w.Header().Set("WWW-Authenticate", `Basic realm="pomdev relay"`)
	oauthError(w, http.StatusUnauthorized, "invalid_client", ce.msg)
}

// parseOAuthForm reads the form of a request to an endpoint that answers
// in JSON (token, revocation, introspection), answering the error itself
// when it is unreadable or repeats a parameter.
func parseOAuthForm(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return false
	}
	if k := repeated(r.Form); k != "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the parameter "+strconv.Quote(k)+" is repeated (RFC 6749 §3.1)")
		return false
	}
	return true
}

// repeated is the first parameter of f given more than once (in the query
// and the body together), "" when none is: which of two values counts
// differs between the checks here and op's, so neither may decide.
func repeated(f url.Values) string {
	for k, v := range f {
		if len(v) > 1 {
			return k
		}
	}
	return ""
}

// Approval codes: 8 symbols of Crockford's base32 (40 bits), shown as
// XXXX-XXXX.
const codeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

func newApprovalCode() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = codeAlphabet[b[i]&31]
	}
	return string(b[:4]) + "-" + string(b[4:])
}

// NormalizeCode turns what a person typed into the stored form.
func NormalizeCode(s string) string {
	s = strings.ToUpper(strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, s))
	// Crockford: O reads as 0, I and L as 1.
	s = strings.NewReplacer("O", "0", "I", "1", "L", "1").Replace(s)
	if len(s) != 8 {
		return s
	}
	return s[:4] + "-" + s[4:]
}

// requestOf is a request as the owner sees it: the app's name bounded
// and plain, where it returns in ASCII (displayName, displayRedirect).
func requestOf(a authRow) Request {
	var person string
	if a.Data.Sub != "" {
		person = Person{Sub: a.Data.Sub, Email: a.Data.Email}.String()
	}
	verified, registered, mismatch := whoAsks(a)
	return Request{Code: a.Approval, Route: a.Route, Owner: a.Owner, ClientID: a.ClientID, ClientName: displayName(a.Data.ClientName, a.ClientID),
		RedirectHost: displayRedirect(a.Data.RedirectURI), Verified: verified, Registered: registered, Mismatch: mismatch,
		Person: person, State: a.State, DecidedBy: a.DecidedBy, Created: a.Created, Expires: a.Expires}
}

// Errors of Decide.
var (
	ErrUnknownCode = errors.New("no pending access request has this code (it may have expired: codes last 10 minutes)")
	ErrTooMany     = errors.New("too many wrong codes; wait a few minutes")
)

type failureCount struct {
	n     int
	reset time.Time
}

// Wrong codes allowed per decider in failureWindow.
const (
	maxFailures   = 10
	failureWindow = 10 * time.Minute
)

// Decide approves or denies the pending request with code. owner limits it
// to that key's routes ("" for the relay's admin); by names the decider in
// the audit trail.
func (s *Server) Decide(ctx context.Context, code string, allow bool, owner, by string) (Request, error) {
	now := s.cfg.Now()
	key := "owner:" + owner
	if s.tooManyFailures(key) {
		return Request{}, ErrTooMany
	}
	row, err := s.st.authByApproval(ctx, NormalizeCode(code))
	if err == nil && (row.State != statePending || !row.Expires.After(now) || (owner != "" && row.Owner != owner)) {
		err = errNotFound
	}
	if err == nil {
		state := stateDenied
		if allow {
			state = stateApproved
		}
		var ok bool
		if ok, err = s.st.decide(ctx, row.ID, state, by, now); err == nil && ok {
			row.State, row.DecidedBy = state, by
			if allow {
				// Remembered from now on, even if the app never comes
				// back for its code (a retry then goes straight through).
				s.recordGrant(ctx, row, by, now)
			}
			s.log.Info("authorization request decided", "route", row.Route, "client", row.ClientID, "state", state, "by", by)
			s.audit.add(Entry{Kind: "decision", Route: row.Route, Client: row.ClientID, Owner: row.Owner, Decision: state, By: by, Reason: "code " + row.Approval})
			req := requestOf(row)
			s.cfg.Resolver.Notify(req)
			return req, nil
		}
		if err == nil {
			err = errNotFound
		}
	}
	if !errors.Is(err, errNotFound) {
		return Request{}, err
	}
	s.fail(key)
	return Request{}, ErrUnknownCode
}

// tooManyFailures reports whether key has used up its wrong attempts: on
// a PostgreSQL store, counted by every relay of the store together (a
// guesser spreading codes over a fleet gets no more tries); a store that
// does not answer counts as used up.
func (s *Server) tooManyFailures(key string) bool {
	now := s.cfg.Now()
	if s.sharedLimits {
		var n int64
		err := s.st.db.QueryRow(`SELECT n FROM limits WHERE key = $1 AND reset > $2`, relaystore.Text(key), now.UnixMilli()).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			return false
		}
		return err != nil || n >= maxFailures
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.failures[key]
	if f != nil && now.After(f.reset) {
		delete(s.failures, key)
		return false
	}
	return f != nil && f.n >= maxFailures
}

// fail counts a wrong attempt of key.
func (s *Server) fail(key string) {
	if s.sharedLimits {
		now := s.cfg.Now()
		if _, err := s.st.db.Exec(`INSERT INTO limits (key, n, reset) VALUES ($1, 1, $2)
			ON CONFLICT (key) DO UPDATE SET
				n = CASE WHEN limits.reset <= $3 THEN 1 ELSE limits.n + 1 END,
				reset = CASE WHEN limits.reset <= $3 THEN excluded.reset ELSE limits.reset END`,
			relaystore.Text(key), now.Add(failureWindow).UnixMilli(), now.UnixMilli()); err != nil {
			s.log.Warn("cannot count a wrong code in the store", "err", err)
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) >= maxLimiters {
		clear(s.failures)
	}
	f := s.failures[key]
	if f == nil {
		f = &failureCount{reset: s.cfg.Now().Add(failureWindow)}
		s.failures[key] = f
	}
	f.n++
}

// Pending lists the requests waiting for owner ("" for all).
func (s *Server) Pending(ctx context.Context, owner string) ([]Request, error) {
	rows, err := s.st.pendingAuths(ctx, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	var out []Request
	for _, a := range rows {
		if owner == "" || a.Owner == owner {
			out = append(out, requestOf(a))
		}
	}
	return out, nil
}

// Grants lists the remembered approvals of owner ("" for all).
func (s *Server) Grants(ctx context.Context, owner string) ([]Grant, error) {
	return s.st.grants(ctx, owner, s.cfg.Now())
}

// RevokeGrant forgets an approval and revokes every token issued under it;
// owner limits it to that key's grants ("" for the admin).
func (s *Server) RevokeGrant(ctx context.Context, id, owner string) error {
	g, err := s.st.grantByID(ctx, id)
	if err != nil || (owner != "" && g.Owner != owner) {
		return fmt.Errorf("no grant %q", id)
	}
	if err := s.st.revokeGrant(ctx, id); err != nil {
		return err
	}
	s.forgetVerdicts()
	s.log.Info("grant revoked", "grant", id, "client", g.ClientID)
	s.audit.add(Entry{Kind: "decision", Client: g.ClientID, Grant: id, Owner: g.Owner, Decision: "grant revoked"})
	return nil
}

// serveApprove is the page the browser waits on: it shows who asks and
// the code, refreshes itself until the owner decides, then goes on to op's
// callback (approved) or back to the app with access_denied.
func (s *Server) serveApprove(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err == nil && r.PostForm.Has("consent") {
			s.consentDecide(w, r)
			return
		}
		s.adminDecide(w, r)
		return
	}
	id := r.URL.Query().Get("id")
	row, err := s.st.auth(r.Context(), id)
	if err != nil || id == "" {
		s.errorPage(w, http.StatusNotFound, "Unknown request", "This authorization request is unknown or has ended. Start again from the application.")
		return
	}
	now := s.cfg.Now()
	switch {
	case row.State == stateApproved:
		s.bindBrowser(w, r, row)
		http.Redirect(w, r, s.cfg.Issuer+PathAuthorize+"/callback?id="+url.QueryEscape(id), http.StatusSeeOther)
		return
	case row.State == stateDenied || !row.Expires.After(now):
		why := "The tunnel's owner denied this request."
		if row.State != stateDenied {
			why = "Nobody approved this request within 10 minutes."
		}
		back := s.deniedURL(row, why)
		_ = s.st.deleteAuth(r.Context(), id)
		s.render(w, http.StatusForbidden, pageData{Title: "Access denied", Message: why + " The application has been told.", Back: back})
		return
	}
	if s.cfg.SignIn != nil && row.Data.Sub == "" {
		s.cfg.SignIn(w, r, func(w http.ResponseWriter, r *http.Request, p Person, err error) { s.signedIn(w, r, id, p, err) })
		return
	}
	if row.Data.ConsentToken != "" {
		s.showConsent(w, r, row)
		return
	}
	q := requestOf(row)
	s.render(w, http.StatusOK, pageData{
		Title: "Waiting for the tunnel's owner", Pending: true, Code: row.Approval, who: whoOf(q),
		ClientID: row.ClientID, Redirect: q.RedirectHost, Route: row.Route, Resource: row.Data.Resource,
		Expires: row.Expires.Sub(now).Round(time.Second).String(), Person: q.Person,
		Admin: s.cfg.AdminToken != "" && s.cfg.TokenSafe != nil && s.cfg.TokenSafe(r), ID: id,
	})
}

// recordGrant remembers the owner's approval of row's client.
func (s *Server) recordGrant(ctx context.Context, row authRow, by string, now time.Time) {
	if _, err := s.st.putGrant(ctx, Grant{ID: random(12), Owner: row.Owner, ClientID: row.ClientID, ClientName: row.Data.ClientName,
		Routes: []string{row.Route}, ApprovedBy: by, Created: now, Expires: now.Add(s.cfg.GrantTTL)}); err != nil {
		s.log.Warn("cannot record a grant", "err", err)
	}
}

// signedIn decides request id for the person who came back from the
// identity provider: approved if the relay's Allow lets them call the
// route, denied (and the app told) if not.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request, id string, p Person, err error) {
	if err != nil {
		s.errorPage(w, http.StatusForbidden, "Sign-in failed", err.Error()+" Nothing was authorized; start again from the application.")
		return
	}
	ctx := r.Context()
	row, rerr := s.st.auth(ctx, id)
	if rerr != nil || row.State != statePending || !row.Expires.After(s.cfg.Now()) {
		s.errorPage(w, http.StatusNotFound, "Unknown request", "This authorization request is unknown or has ended. Start again from the application.")
		return
	}
	ok, why := s.cfg.Allow(row.Route, p)
	state, by := stateDenied, "identity provider: "+p.String()
	if ok {
		state = stateApproved
	}
	d := row.Data
	d.Sub, d.Email = p.Sub, p.Email
	now := s.cfg.Now()
	if ok && !s.cfg.OwnerApproval {
		// Signed in and allowed: the person sees which app asks and where
		// it returns, and decides (consent.go).
		s.askConsent(w, r, row, d)
		return
	}
	if ok && s.cfg.OwnerApproval {
		// Signed in and allowed; the owner decides now, knowing who.
		if err := s.st.setData(ctx, id, d); err != nil {
			s.errorPage(w, http.StatusInternalServerError, "Error", err.Error())
			return
		}
		row.Data = d
		s.audit.add(Entry{Kind: "authorize", Route: row.Route, Client: row.ClientID, Owner: row.Owner, Decision: statePending, By: by, Reason: "signed in; waiting for the owner (code " + row.Approval + ")"})
		s.cfg.Resolver.Notify(requestOf(row))
		http.Redirect(w, r, s.cfg.Issuer+PathApprove+"?id="+url.QueryEscape(id), http.StatusSeeOther)
		return
	}
	if done, err := s.st.decideWith(ctx, id, state, by, now, &d); err != nil || !done {
		s.errorPage(w, http.StatusNotFound, "Unknown request", "This authorization request has ended. Start again from the application.")
		return
	}
	if ok {
		s.recordGrant(ctx, row, by, now)
	}
	s.log.Info("authorization request decided", "route", row.Route, "client", row.ClientID, "state", state, "by", by, "why", why)
	s.audit.add(Entry{Kind: "decision", Route: row.Route, Client: row.ClientID, Owner: row.Owner, Decision: state, By: by, Reason: why})
	if ok {
		http.Redirect(w, r, s.cfg.Issuer+PathAuthorize+"/callback?id="+url.QueryEscape(id), http.StatusSeeOther)
		return
	}
	back := s.deniedURL(row, why)
	_ = s.st.deleteAuth(ctx, id)
	s.render(w, http.StatusForbidden, pageData{Title: "Access denied", Message: "You signed in as " + p.String() + ". " + why + " The application has been told.", Back: back})
}

// adminDecide is the authorize page's form for the relay's admin: the
// admin token decides the request the page is about.
func (s *Server) adminDecide(w http.ResponseWriter, r *http.Request) {
	if s.cfg.AdminToken == "" || s.cfg.TokenSafe == nil || !s.cfg.TokenSafe(r) {
		s.errorPage(w, http.StatusForbidden, "Not here", "The admin token is accepted only over TLS or on loopback; use pomdev relay access approve CODE.")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "Bad request", err.Error())
		return
	}
	key := "admin-page:" + sourceIP(r)
	if s.tooManyFailures(key) {
		s.errorPage(w, http.StatusTooManyRequests, "Too many attempts", ErrTooMany.Error())
		return
	}
	id := r.PostForm.Get("id")
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("token")), []byte(s.cfg.AdminToken)) != 1 {
		s.fail(key)
		s.errorPage(w, http.StatusForbidden, "Wrong admin token", "Nothing was decided.")
		return
	}
	row, err := s.st.auth(r.Context(), id)
	if err != nil {
		s.errorPage(w, http.StatusNotFound, "Unknown request", "This authorization request is unknown or has ended.")
		return
	}
	if _, err := s.Decide(r.Context(), row.Approval, r.PostForm.Get("decision") == "allow", "", "relay admin (authorize page)"); err != nil {
		s.errorPage(w, http.StatusConflict, "Not decided", err.Error())
		return
	}
	http.Redirect(w, r, s.cfg.Issuer+PathApprove+"?id="+url.QueryEscape(id), http.StatusSeeOther)
}

type pageData struct {
	Title, Message string
	Person         string // who signed in at the identity provider
	Pending        bool
	who
	Code, ClientID, Redirect, Route, Resource string
	Expires                                   string
	Back                                      string
	Admin                                     bool // the admin form is offered
	ID                                        string
}

var pageTmpl = template.Must(template.Must(template.New("page").Parse(whoTmpl)).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
{{if .Pending}}<meta http-equiv="refresh" content="2">{{end}}{{if .Back}}<meta http-equiv="refresh" content="3;url={{.Back}}">{{end}}
<title>{{.Title}} · pomdev relay</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em;color:#222}
code,.code{font-family:ui-monospace,monospace;word-break:break-all}.warn{color:#a40}.code{font-size:2em;letter-spacing:.1em;padding:.2em .5em;border:2px solid #444;border-radius:6px;display:inline-block}
dt{font-weight:600;margin-top:.5em}dd{margin:0}@media(prefers-color-scheme:dark){body{background:#111;color:#eee}.code{border-color:#ccc}}</style></head>
<body><h1>{{.Title}}</h1>
{{if .Pending}}
<p>{{template "who" .}} asks to use the tools of the tunnel <code>{{.Route}}</code>.</p>
<dl>{{template "identity" .}}
<dt>Client ID</dt><dd><code>{{.ClientID}}</code></dd>
<dt>Returns to</dt><dd><code>{{.Redirect}}</code></dd>
<dt>Resource</dt><dd><code>{{.Resource}}</code></dd>{{if .Person}}
<dt>Signed in as</dt><dd>{{.Person}}</dd>{{end}}</dl>
<p>Code</p><p class="code">{{.Code}}</p>
<p>The tunnel's owner approves this request from their terminal: <kbd>a</kbd> in <code>pomdev up</code>'s
dashboard or on the <code>ssh</code> status screen, or <code>pomdev access approve {{.Code}}</code>. Check that the code
there is the one above. This page moves on by itself; the request expires in {{.Expires}}.</p>
{{if .Admin}}<details><summary>Relay admin</summary><form method="post" action="approve">
<input type="hidden" name="id" value="{{.ID}}"><label>Admin token <input type="password" name="token" autocomplete="off"></label>
<button name="decision" value="allow">Allow</button> <button name="decision" value="deny">Deny</button></form></details>{{end}}
{{else}}<p>{{.Message}}</p>{{if .Back}}<p><a href="{{.Back}}">Back to the application</a></p>{{end}}{{end}}
</body></html>
`))

func (s *Server) render(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, d)
}

func (s *Server) errorPage(w http.ResponseWriter, status int, title, msg string) {
	s.render(w, status, pageData{Title: title, Message: msg})
}
