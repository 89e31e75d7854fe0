package access

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// opStorage is op's view of the store.
type opStorage struct{ s *Server }

var _ op.Storage = (*opStorage)(nil)

// authReq is an authorization request as op sees it. Its subject is the
// route owner's key fingerprint.
type authReq struct{ row authRow }

func (a *authReq) GetID() string          { return a.row.ID }
func (a *authReq) GetACR() string         { return "" }
func (a *authReq) GetAMR() []string       { return []string{"owner-approval"} }
func (a *authReq) GetAudience() []string  { return []string{a.row.Data.Resource} }
func (a *authReq) GetAuthTime() time.Time { return a.row.Created }
func (a *authReq) GetClientID() string    { return a.row.ClientID }
func (a *authReq) GetNonce() string       { return a.row.Data.Nonce }
func (a *authReq) GetRedirectURI() string { return a.row.Data.RedirectURI }
func (a *authReq) GetScopes() []string    { return a.row.Data.Scopes }
func (a *authReq) GetState() string       { return a.row.Data.State }
func (a *authReq) GetSubject() string     { return subjectOf(a.row.Owner) }
func (a *authReq) Done() bool             { return a.row.State == stateApproved }
func (a *authReq) GetResponseType() oidc.ResponseType {
	return oidc.ResponseType(a.row.Data.ResponseType)
}
func (a *authReq) GetResponseMode() oidc.ResponseMode {
	return oidc.ResponseMode(a.row.Data.ResponseMode)
}
func (a *authReq) GetCodeChallenge() *oidc.CodeChallenge {
	return &oidc.CodeChallenge{Challenge: a.row.Data.Challenge, Method: oidc.CodeChallengeMethod(a.row.Data.ChallengeMeth)}
}

// subjectOf is the OAuth subject of a grant: its owner's key fingerprint
// with its colon replaced, since op seals access tokens as
// "id:subject" and splits them at the colon.
func subjectOf(owner string) string { return strings.ReplaceAll(owner, ":", "_") }

// refreshReq is a refresh token's grant as op sees it.
type refreshReq struct {
	secret string
	row    tokenRow
	res    string
	scopes []string
}

func (r *refreshReq) GetAMR() []string            { return []string{"owner-approval"} }
func (r *refreshReq) GetAudience() []string       { return []string{r.res} }
func (r *refreshReq) GetAuthTime() time.Time      { return r.row.AuthTime }
func (r *refreshReq) GetClientID() string         { return r.row.ClientID }
func (r *refreshReq) GetScopes() []string         { return r.scopes }
func (r *refreshReq) GetSubject() string          { return subjectOf(r.row.Owner) }
func (r *refreshReq) SetCurrentScopes(s []string) { r.scopes = s }

// ctxKey carries what the authorize and token handlers learnt from the
// request (op passes the request's context to storage).
type ctxKey struct{}

type reqInfo struct {
	route      string
	owner      string
	resource   string
	clientName string
	client     *client // looked up by serveAuthorize, so op need not fetch it again
	browser    string  // the hash of the request's browser cookie ("" none)
	source     string  // the request's source address
	// asserted is the client a private_key_jwt assertion authenticated
	// (authenticateClient), assertedSecret the credential op checks for it
	// on this request alone.
	asserted       *client
	assertedSecret string
}

func infoFrom(ctx context.Context) *reqInfo {
	i, _ := ctx.Value(ctxKey{}).(*reqInfo)
	return i
}

func (o *opStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	s := o.s
	info := infoFrom(ctx)
	if info == nil {
		return nil, oidc.ErrServerError().WithDescription("authorization request without its resource")
	}
	now := s.cfg.Now()
	scopes := slices.Clone(req.Scopes)
	if !slices.Contains(scopes, "offline_access") {
		// Every grant gets a refresh token, so hosts never ask again
		// while the owner's approval lasts.
		scopes = append(scopes, "offline_access")
	}
	row := authRow{
		ID: random(18), Route: info.route, Owner: info.owner, ClientID: req.ClientID,
		State: statePending, Created: now, Expires: now.Add(s.cfg.RequestTTL),
		Data: authData{
			RedirectURI: req.RedirectURI, State: req.State, Nonce: req.Nonce, Scopes: scopes,
			ResponseType: string(req.ResponseType), ResponseMode: string(req.ResponseMode),
			Challenge: req.CodeChallenge, ChallengeMeth: string(req.CodeChallengeMethod),
			Resource: info.resource, ClientName: info.clientName, Source: info.source,
		},
	}
	if info.client != nil {
		row.Data.ClientSource = info.client.source
	}
	g, err := s.st.liveGrant(ctx, info.owner, req.ClientID, now)
	if err != nil && !errors.Is(err, errNotFound) {
		return nil, err
	}
	if by := remembered(g, err == nil, info); by != "" && s.cfg.SignIn == nil {
		// With an identity provider every request signs its person in: a
		// client (ChatGPT's, say) is shared by many people.
		row.State, row.DecidedBy = stateApproved, by
	}
	for range 5 {
		row.Approval = newApprovalCode()
		if err = s.st.addAuth(ctx, row); err == nil || !strings.Contains(err.Error(), "UNIQUE") {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("authorization request", "route", row.Route, "client", row.ClientID, "state", row.State, "code", row.Approval)
	s.audit.add(Entry{Kind: "authorize", Route: row.Route, Client: row.ClientID, Owner: row.Owner, Decision: row.State, By: row.DecidedBy, Reason: "code " + row.Approval})
	if row.State == statePending && s.cfg.SignIn == nil {
		// With an identity provider the owner hears of a request only
		// once its person signed in (and only when the owner decides).
		s.cfg.Resolver.Notify(requestOf(row))
	}
	return &authReq{row: row}, nil
}

// How a remembered approval decided a request (auth_requests.decided_by).
const (
	byRememberedBrowser      = "remembered (the approving browser)"
	byRememberedConfidential = "remembered (authenticated client)"
)

func isRemembered(by string) bool { return strings.HasPrefix(by, "remembered") }

// remembered says how a live grant g (ok) decides the request described
// by info, or "" when the owner must be asked. A grant stands in for the
// owner only for a route it was approved for, and only when the request
// proves it comes from where the approval went: the browser that was
// bound to the grant when the approval reached it (its cookie), or a
// confidential client, whose code is worth nothing without its
// credentials. A public client's id and redirect are public: knowing them
// proves nothing.
func remembered(g Grant, ok bool, info *reqInfo) string {
	if !ok || !g.covers(info.route) {
		return ""
	}
	switch {
	case info.client != nil && info.client.method != oidc.AuthMethodNone && isDynamic(info.client.id):
		// A registration's credentials were issued to the one registrant.
		// A metadata document's client (ChatGPT's) is one client for all
		// its users: its key proves which app exchanges the code, not
		// which person asked, so only the approving browser counts.
		return byRememberedConfidential
	case g.bound(info.browser):
		return byRememberedBrowser
	}
	return ""
}

func (o *opStorage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	row, err := o.s.st.auth(ctx, id)
	if errors.Is(err, errNotFound) {
		// The caller's mistake (a stranger's id, or one finished), not
		// the relay's: a 400 logged as a warning, not a server error.
		return nil, oidc.ErrInvalidRequest().WithDescription("no such authorization request: start again from the app")
	}
	if err != nil {
		return nil, err
	}
	if !row.Expires.After(o.s.cfg.Now()) {
		return nil, oidc.ErrInvalidRequest().WithDescription("the authorization request has expired: start again from the app")
	}
	return &authReq{row: row}, nil
}

func (o *opStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s := o.s
	row, err := s.st.authByCode(ctx, code)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	if row.State == stateExchanged {
		s.codeReused(ctx, row)
		return nil, errors.New("the code was used before")
	}
	if !row.Expires.After(now) || row.State != stateApproved {
		return nil, errors.New("the code has expired")
	}
	// A code is good for one presentation, whatever becomes of it: one
	// whose PKCE verifier, client or redirect then fails is spent too
	// (RFC 6749 §4.1.2, RFC 9700 §2.1.1).
	taken, err := s.st.takeCode(ctx, row.ID, now)
	if err != nil {
		return nil, err
	}
	if !taken {
		s.codeReused(ctx, row)
		return nil, errors.New("the code was used before")
	}
	if info := infoFrom(ctx); info != nil && info.route != "" && info.route != row.Route {
		return nil, oidc.ErrInvalidTarget().WithDescription("resource differs from the authorization request's")
	}
	if s.cfg.Resolver.Owner(row.Route) != row.Owner {
		return nil, errors.New("the route belongs to another key now")
	}
	return &authReq{row: row}, nil
}

func (o *opStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	// A code lives one minute (RFC 6749 §4.1.2 recommends at most ten).
	return o.s.st.saveCode(ctx, id, code, o.s.cfg.Now().Add(time.Minute))
}

// DeleteAuthRequest is op's call once a code's tokens are issued; the
// exchanged request stays (codeReuseWindow) to recognise a second use.
func (o *opStorage) DeleteAuthRequest(ctx context.Context, id string) error {
	return o.s.st.deleteAuthUnlessExchanged(ctx, id)
}

// codeReused revokes every token issued from a code presented a second
// time (RFC 6749 §4.1.2): one of the two presenters should not hold it.
// The tokens of a code are one family, named by its request.
func (s *Server) codeReused(ctx context.Context, row authRow) {
	s.log.Warn("an authorization code was presented twice; revoking every token issued from it", "route", row.Route, "client", row.ClientID)
	s.audit.add(Entry{Kind: "token", Route: row.Route, Client: row.ClientID, Owner: row.Owner, Decision: "reuse", Reason: "authorization code presented twice; its tokens revoked"})
	if err := s.st.revokeFamily(ctx, codeFamily(row.ID)); err != nil {
		s.log.Warn("cannot revoke the tokens of a code", "err", err)
	}
	s.forgetVerdicts()
}

// codeFamily is the family of the tokens issued from the request id's code
// (refreshed tokens stay in it).
func codeFamily(id string) string { return "code:" + id }

func (o *opStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	id, _, exp, err := o.createTokens(ctx, req, "", false)
	return id, exp, err
}

func (o *opStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	return o.createTokens(ctx, req, current, true)
}

// createTokens issues an access token (and a refresh token) for a code
// just exchanged, recording the owner's grant, or for a refresh token,
// which is used up: a second use revokes its whole family.
func (o *opStorage) createTokens(ctx context.Context, req op.TokenRequest, current string, refresh bool) (string, string, time.Time, error) {
	s := o.s
	now := s.cfg.Now()
	var t tokenRow
	switch r := req.(type) {
	case *authReq:
		g := Grant{ID: random(12), Owner: r.row.Owner, ClientID: r.row.ClientID, ClientName: r.row.Data.ClientName,
			Routes: []string{r.row.Route}, ApprovedBy: r.row.DecidedBy, Created: now, Expires: now.Add(s.cfg.GrantTTL)}
		if isRemembered(r.row.DecidedBy) {
			if old, err := s.st.liveGrant(ctx, g.Owner, g.ClientID, now); err == nil {
				g = old
			}
		}
		id, err := s.st.putGrant(ctx, g)
		if err != nil {
			return "", "", time.Time{}, err
		}
		if isDynamic(r.row.ClientID) {
			_ = s.st.markClientUsed(ctx, r.row.ClientID)
		}
		t = tokenRow{Grant: id, Family: codeFamily(r.row.ID), Route: r.row.Route, Owner: r.row.Owner, ClientID: r.row.ClientID,
			Scopes: r.row.Data.Scopes, AuthTime: r.row.Created, Sub: r.row.Data.Sub, Email: r.row.Data.Email}
	case *refreshReq:
		t = r.row
		t.Scopes = r.scopes
		if err := s.refreshAllowed(ctx, t); err != nil {
			return "", "", time.Time{}, err
		}
	default:
		return "", "", time.Time{}, fmt.Errorf("unexpected token request %T", req)
	}
	g, err := s.st.grantByID(ctx, t.Grant)
	if err != nil {
		return "", "", time.Time{}, op.ErrInvalidRefreshToken
	}
	tx, err := s.st.db.BeginTx(ctx, nil)
	if err != nil {
		return "", "", time.Time{}, err
	}
	defer tx.Rollback()
	if current != "" {
		ok, err := s.st.useRefresh(ctx, tx, current)
		if err != nil {
			return "", "", time.Time{}, err
		}
		if !ok {
			tx.Rollback()
			s.reuse(ctx, t)
			return "", "", time.Time{}, op.ErrInvalidRefreshToken
		}
	}
	access := random(18)
	at := t
	at.Kind, at.Expires = kindAccess, now.Add(s.cfg.AccessTTL)
	if err := s.st.addToken(ctx, tx, access, at); err != nil {
		return "", "", time.Time{}, err
	}
	var rt string
	if refresh {
		rt = random(32)
		r := t
		r.Kind, r.Expires = kindRefresh, g.Expires
		if err := s.st.addToken(ctx, tx, rt, r); err != nil {
			return "", "", time.Time{}, err
		}
	}
	if err := tx.Commit(); err != nil {
		return "", "", time.Time{}, err
	}
	how := "issued"
	if current != "" {
		how = "refreshed"
	}
	s.audit.add(Entry{Kind: "token", Route: t.Route, Client: t.ClientID, Grant: t.Grant, Owner: t.Owner, Decision: how})
	return access, rt, at.Expires, nil
}

// reuse revokes a refresh token family whose used token came back: one of
// its tokens leaked.
func (s *Server) reuse(ctx context.Context, t tokenRow) {
	s.log.Warn("a refresh token was used twice; revoking every token of its family", "route", t.Route, "client", t.ClientID)
	s.audit.add(Entry{Kind: "token", Route: t.Route, Client: t.ClientID, Grant: t.Grant, Owner: t.Owner, Decision: "reuse", Reason: "refresh token used twice; family revoked"})
	if err := s.st.revokeFamily(ctx, t.Family); err != nil {
		s.log.Warn("cannot revoke a token family", "err", err)
	}
	s.forgetVerdicts()
}

func (o *opStorage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	s := o.s
	t, err := s.st.token(ctx, token)
	if err != nil || t.Kind != kindRefresh || t.Revoked || !t.Expires.After(s.cfg.Now()) {
		return nil, op.ErrInvalidRefreshToken
	}
	if t.Used {
		s.reuse(ctx, t)
		return nil, op.ErrInvalidRefreshToken
	}
	if info := infoFrom(ctx); info != nil && info.route != "" && info.route != t.Route {
		return nil, oidc.ErrInvalidTarget().WithDescription("resource differs from the grant's")
	}
	if s.cfg.Resolver.Owner(t.Route) != t.Owner {
		return nil, op.ErrInvalidRefreshToken
	}
	return &refreshReq{secret: token, row: t, res: s.cfg.Resolver.Resource(t.Route), scopes: t.Scopes}, nil
}

func (o *opStorage) TerminateSession(context.Context, string, string) error { return nil }

// refreshPrefix marks a refresh token in what GetRefreshTokenInfo hands to
// RevokeToken (op passes access token IDs there too).
const refreshPrefix = "refresh:"

func (o *opStorage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	t, err := o.s.st.token(ctx, token)
	if err != nil || t.Kind != kindRefresh || t.ClientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return subjectOf(t.Owner), refreshPrefix + token, nil
}

func (o *opStorage) RevokeToken(ctx context.Context, token, _, clientID string) *oidc.Error {
	s := o.s
	secret, isRefresh := strings.CutPrefix(token, refreshPrefix)
	t, err := s.st.token(ctx, secret)
	if err != nil {
		return nil // RFC 7009 §2.2: an unknown token is not an error
	}
	if t.ClientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("the token belongs to another client")
	}
	if isRefresh {
		err = s.st.revokeFamily(ctx, t.Family)
	} else {
		err = s.st.revokeToken(ctx, secret)
	}
	if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	s.forgetVerdicts()
	s.audit.add(Entry{Kind: "token", Route: t.Route, Client: t.ClientID, Grant: t.Grant, Owner: t.Owner, Decision: "revoked"})
	return nil
}

func (o *opStorage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{o.s.keys}, nil
}

func (o *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}

func (o *opStorage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{o.s.keys}}, nil
}

func (o *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	info := infoFrom(ctx)
	if info != nil && info.asserted != nil && info.asserted.id == id {
		// Authenticated by its assertion: op checks the request's own
		// credential as a secret (AuthorizeClientIDSecret).
		c := *info.asserted
		c.method = oidc.AuthMethodBasic
		return &c, nil
	}
	if info != nil && info.client != nil && info.client.id == id {
		return info.client, nil
	}
	return o.s.client(ctx, id)
}

func (o *opStorage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	if assertedSecretOK(ctx, id, secret) {
		return nil
	}
	c, err := o.s.st.client(ctx, id)
	if err != nil || c.SecretHash == "" {
		return oidc.ErrInvalidClient()
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(c.SecretHash)) != 1 {
		return oidc.ErrInvalidClient()
	}
	return nil
}

func (o *opStorage) SetUserinfoFromScopes(_ context.Context, info *oidc.UserInfo, userID, _ string, _ []string) error {
	info.Subject = userID
	return nil
}

func (o *opStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	if _, err := o.liveAccess(ctx, tokenID); err != nil {
		return err
	}
	info.Subject = subject
	return nil
}

func (o *opStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, err := o.liveAccess(ctx, tokenID)
	if err != nil {
		return err
	}
	// A client learns only about its own tokens (RFC 7662 §4): to any
	// other, another client's token is as good as unknown.
	if t.ClientID != clientID {
		return errors.New("token is not active")
	}
	resp.Active = true
	resp.Scope = oidc.SpaceDelimitedArray(t.Scopes)
	resp.ClientID = t.ClientID
	resp.Subject = subject
	resp.Expiration = oidc.FromTime(t.Expires)
	resp.Audience = oidc.Audience{o.s.cfg.Resolver.Resource(t.Route)}
	resp.TokenType = oidc.BearerToken
	return nil
}

func (o *opStorage) liveAccess(ctx context.Context, tokenID string) (tokenRow, error) {
	t, err := o.s.st.token(ctx, tokenID)
	if err != nil || t.Kind != kindAccess || t.Revoked || !t.Expires.After(o.s.cfg.Now()) {
		return t, errors.New("token is not active")
	}
	return t, nil
}

func (o *opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (o *opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT client authentication is not supported")
}

func (o *opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("the JWT profile grant is not supported")
}

func (o *opStorage) Health(ctx context.Context) error { return o.s.st.db.PingContext(ctx) }
