package access

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	relaystore "github.com/pomdev/pomdev/internal/relay/store"
)

// store is the access state in SQLite: OAuth clients, authorization
// requests waiting for (or given) the owner's approval, grants, and
// tokens. Secrets (client secrets, token identifiers, refresh tokens) are
// kept only as SHA-256 hashes. The schema is relaystore's.
type store struct {
	db  *sql.DB
	own bool // opened here, closed by close
}

// openStore uses db (nil: it opens relay.db in dir, and closes it with
// close), whose schema relaystore brings up to date.
func openStore(dir string, db *sql.DB) (*store, error) {
	if db == nil {
		db, err := relaystore.Open(dir, "")
		if err != nil {
			return nil, err
		}
		return &store{db: db, own: true}, nil
	}
	if err := relaystore.Migrate(db); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, relaystore.File), err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error {
	if !s.own {
		return nil
	}
	return s.db.Close()
}

// txt is a value as the store keeps it (relaystore.Text): every string a
// stranger may have chosen goes through it on the way in, and lookups by
// one that does not pass unchanged find nothing.
func txt(s string) string { return relaystore.Text(s) }

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

var errNotFound = errors.New("not found")

// client is a registered OAuth client (dynamic registration). Clients
// identified by a metadata document URL are not stored: their document is.
type clientRow struct {
	ID           string
	SecretHash   string
	Name         string
	RedirectURIs []string
	AuthMethod   string
	Created      time.Time
	Used         bool
	Source       string // the address it registered from
	Keys         clientKeys
}

// clientKeys are how a private_key_jwt client's assertions are checked.
type clientKeys struct {
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI string          `json:"jwks_uri,omitempty"`
	Alg     string          `json:"alg,omitempty"`
}

func (s *store) addClient(ctx context.Context, c clientRow) error {
	uris, _ := json.Marshal(c.RedirectURIs)
	var keys []byte
	if c.Keys.JWKSURI != "" || len(c.Keys.JWKS) > 0 {
		keys, _ = json.Marshal(c.Keys)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO clients (id, secret_hash, name, redirect_uris, auth_method, created, source, auth_keys) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		txt(c.ID), c.SecretHash, txt(c.Name), string(uris), txt(c.AuthMethod), c.Created.Unix(), txt(c.Source), string(keys))
	return err
}

// countUnusedFrom counts the registrations from source never used yet.
func (s *store) countUnusedFrom(ctx context.Context, source string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM clients WHERE used = 0 AND source = $1`, txt(source)).Scan(&n)
	return n, err
}

func (s *store) client(ctx context.Context, id string) (clientRow, error) {
	var c clientRow
	var uris, keys string
	var created int64
	if !relaystore.Storable(id) {
		return c, errNotFound
	}
	err := s.db.QueryRowContext(ctx, `SELECT id, secret_hash, name, redirect_uris, auth_method, created, used, source, auth_keys FROM clients WHERE id = $1`, id).
		Scan(&c.ID, &c.SecretHash, &c.Name, &uris, &c.AuthMethod, &created, &c.Used, &c.Source, &keys)
	if errors.Is(err, sql.ErrNoRows) {
		return c, errNotFound
	}
	if err != nil {
		return c, err
	}
	c.Created = time.Unix(created, 0)
	if keys != "" {
		if err := json.Unmarshal([]byte(keys), &c.Keys); err != nil {
			return c, fmt.Errorf("client %s: its keys: %w", id, err)
		}
	}
	err = json.Unmarshal([]byte(uris), &c.RedirectURIs)
	return c, err
}

func (s *store) markClientUsed(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE clients SET used = 1 WHERE id = $1`, txt(id))
	return err
}

func (s *store) countClients(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM clients`).Scan(&n)
	return n, err
}

// authRequest states.
const (
	statePending  = "pending"
	stateApproved = "approved"
	stateDenied   = "denied"
	// stateExchanged: the code was presented once. The row stays until
	// codeReuseWindow has passed, so that a second presentation is
	// recognised and revokes what the first one got.
	stateExchanged = "exchanged"
)

// codeReuseWindow is how long an exchanged code is remembered.
const codeReuseWindow = 10 * time.Minute

type authRow struct {
	ID        string
	Approval  string // the short code the owner approves
	Route     string
	Owner     string
	ClientID  string
	State     string
	DecidedBy string
	Data      authData
	Created   time.Time
	Expires   time.Time
}

// authData is what the authorization request asked for.
type authData struct {
	RedirectURI   string   `json:"redirect_uri"`
	State         string   `json:"state,omitempty"`
	Nonce         string   `json:"nonce,omitempty"`
	Scopes        []string `json:"scopes"`
	ResponseType  string   `json:"response_type"`
	ResponseMode  string   `json:"response_mode,omitempty"`
	Challenge     string   `json:"code_challenge"`
	ChallengeMeth string   `json:"code_challenge_method"`
	Resource      string   `json:"resource"`
	ClientName    string   `json:"client_name"`
	// ClientSource is the address a registered client registered from.
	ClientSource string `json:"client_source,omitempty"`
	// Sub and Email: the person who signed in at the identity provider.
	Sub   string `json:"sub,omitempty"`
	Email string `json:"email,omitempty"`
	// ConsentBrowser is the hash of the cookie of the browser that signed
	// in, and ConsentToken the secret of its consent form: only that
	// browser's Allow decides the request (consent.go).
	ConsentBrowser string `json:"consent_browser,omitempty"`
	// Source is the address the authorization request came from.
	Source       string `json:"source,omitempty"`
	ConsentToken string `json:"consent_token,omitempty"`
}

func (s *store) addAuth(ctx context.Context, a authRow) error {
	data, _ := json.Marshal(a.Data)
	_, err := s.db.ExecContext(ctx, `INSERT INTO auth_requests (id, approval, route, owner, client_id, state, decided_by, data, created, expires) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		a.ID, a.Approval, txt(a.Route), txt(a.Owner), txt(a.ClientID), a.State, txt(a.DecidedBy), string(data), a.Created.Unix(), a.Expires.Unix())
	return err
}

const authCols = `id, approval, route, owner, client_id, state, decided_by, data, created, expires`

func scanAuth(row interface{ Scan(...any) error }) (authRow, error) {
	var a authRow
	var data string
	var created, expires int64
	err := row.Scan(&a.ID, &a.Approval, &a.Route, &a.Owner, &a.ClientID, &a.State, &a.DecidedBy, &data, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return a, errNotFound
	}
	if err != nil {
		return a, err
	}
	a.Created, a.Expires = time.Unix(created, 0), time.Unix(expires, 0)
	return a, json.Unmarshal([]byte(data), &a.Data)
}

func (s *store) auth(ctx context.Context, id string) (authRow, error) {
	if !relaystore.Storable(id) {
		return authRow{}, errNotFound
	}
	return scanAuth(s.db.QueryRowContext(ctx, `SELECT `+authCols+` FROM auth_requests WHERE id = $1`, id))
}

func (s *store) authByApproval(ctx context.Context, code string) (authRow, error) {
	if !relaystore.Storable(code) {
		return authRow{}, errNotFound
	}
	return scanAuth(s.db.QueryRowContext(ctx, `SELECT `+authCols+` FROM auth_requests WHERE approval = $1`, code))
}

func (s *store) authByCode(ctx context.Context, code string) (authRow, error) {
	return scanAuth(s.db.QueryRowContext(ctx, `SELECT `+authCols+` FROM auth_requests WHERE code_hash = $1`, hashSecret(code)))
}

func (s *store) pendingAuths(ctx context.Context, now time.Time) ([]authRow, error) {
	return s.pendingWhere(ctx, ``, statePending, now.Unix())
}

// pendingOn lists the requests waiting on route.
func (s *store) pendingOn(ctx context.Context, route string, now time.Time) ([]authRow, error) {
	return s.pendingWhere(ctx, ` AND route = $3`, statePending, now.Unix(), txt(route))
}

func (s *store) pendingWhere(ctx context.Context, and string, args ...any) ([]authRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+authCols+` FROM auth_requests WHERE state = $1 AND expires > $2`+and+` ORDER BY created`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []authRow
	for rows.Next() {
		a, err := scanAuth(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// decide moves a pending request to approved or denied; it reports false
// when the request was no longer pending.
func (s *store) decide(ctx context.Context, id, state, by string, now time.Time) (bool, error) {
	return s.decideWith(ctx, id, state, by, now, nil)
}

// decideWith decides a pending request, replacing its data when d is set
// (the person who signed in).
func (s *store) decideWith(ctx context.Context, id, state, by string, now time.Time, d *authData) (bool, error) {
	by = txt(by)
	q, args := `UPDATE auth_requests SET state = $1, decided_by = $2 WHERE id = $3 AND state = $4 AND expires > $5`, []any{state, by, txt(id), statePending, now.Unix()}
	if d != nil {
		data, _ := json.Marshal(d)
		q, args = `UPDATE auth_requests SET state = $1, decided_by = $2, data = $3 WHERE id = $4 AND state = $5 AND expires > $6`, []any{state, by, string(data), txt(id), statePending, now.Unix()}
	}
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// setData replaces a pending request's data.
func (s *store) setData(ctx context.Context, id string, d authData) error {
	data, _ := json.Marshal(d)
	_, err := s.db.ExecContext(ctx, `UPDATE auth_requests SET data = $1 WHERE id = $2 AND state = $3`, string(data), txt(id), statePending)
	return err
}

func (s *store) saveCode(ctx context.Context, id, code string, expires time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE auth_requests SET code_hash = $1, expires = $2 WHERE id = $3`, hashSecret(code), expires.Unix(), txt(id))
	return err
}

// takeCode marks the approved request of code exchanged, once: false when
// another presentation took it first.
func (s *store) takeCode(ctx context.Context, id string, now time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE auth_requests SET state = $1, expires = $2 WHERE id = $3 AND state = $4 AND expires > $5`,
		stateExchanged, now.Add(codeReuseWindow).Unix(), txt(id), stateApproved, now.Unix())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// deleteAuthUnlessExchanged deletes a request that has not been exchanged
// (an exchanged one is kept for codeReuseWindow).
func (s *store) deleteAuthUnlessExchanged(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM auth_requests WHERE id = $1 AND state != $2`, txt(id), stateExchanged)
	return err
}

func (s *store) deleteAuth(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM auth_requests WHERE id = $1`, txt(id))
	return err
}

// Grant is an owner's approval of a client for some of the owner's
// routes, remembered until it expires or is revoked.
type Grant struct {
	ID         string    `json:"id"`
	Owner      string    `json:"owner"`
	ClientID   string    `json:"client_id"`
	ClientName string    `json:"client_name"`
	Routes     []string  `json:"routes"` // the routes it was approved for
	ApprovedBy string    `json:"approved_by"`
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires"`

	// browsers are the hashes of the browser cookies bound to the grant
	// when its approval reached them (newest last, at most maxBrowsers).
	browsers []string
}

// Bounds of a grant's lists, which an owner's approvals grow.
const (
	maxGrantRoutes = 64
	maxBrowsers    = 16
)

// covers reports whether g was approved for route.
func (g Grant) covers(route string) bool { return slices.Contains(g.Routes, route) }

// bound reports whether the browser whose cookie hashes to h is bound to g.
func (g Grant) bound(h string) bool { return h != "" && slices.Contains(g.browsers, h) }

// appendBounded adds v to list unless there, dropping the oldest past n.
func appendBounded(list []string, v string, n int) []string {
	if v == "" || slices.Contains(list, v) {
		return list
	}
	list = append(list, v)
	if len(list) > n {
		list = list[len(list)-n:]
	}
	return list
}

// putGrant records (or renews) the grant of owner to client and adds
// g.Routes to the routes it covers.
func (s *store) putGrant(ctx context.Context, g Grant) (string, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	g.Owner, g.ClientID, g.ClientName, g.ApprovedBy = txt(g.Owner), txt(g.ClientID), txt(g.ClientName), txt(g.ApprovedBy)
	for i, r := range g.Routes {
		g.Routes[i] = txt(r)
	}
	old, err := scanGrant(tx.QueryRowContext(ctx, `SELECT `+grantCols+` FROM grants WHERE owner = $1 AND client_id = $2`, g.Owner, g.ClientID))
	switch {
	case err == nil:
		routes := old.Routes
		if old.Expires.Before(g.Created) {
			routes = nil // an expired grant covers nothing any more
		}
		for _, r := range g.Routes {
			routes = appendBounded(routes, r, maxGrantRoutes)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE grants SET client_name = $1, approved_by = $2, expires = $3, routes = $4 WHERE id = $5`,
			g.ClientName, g.ApprovedBy, g.Expires.Unix(), strings.Join(routes, " "), old.ID); err != nil {
			return "", err
		}
		g.ID = old.ID
	case errors.Is(err, errNotFound):
		if _, err := tx.ExecContext(ctx, `INSERT INTO grants (id, owner, client_id, client_name, approved_by, created, expires, routes, browsers) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '')`,
			g.ID, g.Owner, g.ClientID, g.ClientName, g.ApprovedBy, g.Created.Unix(), g.Expires.Unix(), strings.Join(g.Routes, " ")); err != nil {
			return "", err
		}
	default:
		return "", err
	}
	return g.ID, tx.Commit()
}

// bindBrowser binds the browser whose cookie hashes to h to grant id.
func (s *store) bindBrowser(ctx context.Context, id, h string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	g, err := scanGrant(tx.QueryRowContext(ctx, `SELECT `+grantCols+` FROM grants WHERE id = $1`, txt(id)))
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE grants SET browsers = $1 WHERE id = $2`, strings.Join(appendBounded(g.browsers, txt(h), maxBrowsers), " "), g.ID); err != nil {
		return err
	}
	return tx.Commit()
}

func scanGrant(row interface{ Scan(...any) error }) (Grant, error) {
	var g Grant
	var created, expires int64
	var routes, browsers string
	err := row.Scan(&g.ID, &g.Owner, &g.ClientID, &g.ClientName, &g.ApprovedBy, &created, &expires, &routes, &browsers)
	if errors.Is(err, sql.ErrNoRows) {
		return g, errNotFound
	}
	g.Created, g.Expires = time.Unix(created, 0), time.Unix(expires, 0)
	g.Routes, g.browsers = strings.Fields(routes), strings.Fields(browsers)
	return g, err
}

const grantCols = `id, owner, client_id, client_name, approved_by, created, expires, routes, browsers`

// liveGrant is the unexpired grant of owner to client.
func (s *store) liveGrant(ctx context.Context, owner, clientID string, now time.Time) (Grant, error) {
	if !relaystore.Storable(owner, clientID) {
		return Grant{}, errNotFound
	}
	return scanGrant(s.db.QueryRowContext(ctx, `SELECT `+grantCols+` FROM grants WHERE owner = $1 AND client_id = $2 AND expires > $3`, owner, clientID, now.Unix()))
}

func (s *store) grantByID(ctx context.Context, id string) (Grant, error) {
	if !relaystore.Storable(id) {
		return Grant{}, errNotFound
	}
	return scanGrant(s.db.QueryRowContext(ctx, `SELECT `+grantCols+` FROM grants WHERE id = $1`, id))
}

// grants lists the unexpired grants, of one owner or ("") all.
func (s *store) grants(ctx context.Context, owner string, now time.Time) ([]Grant, error) {
	q := `SELECT ` + grantCols + ` FROM grants WHERE expires > $1`
	args := []any{now.Unix()}
	if owner != "" {
		q += ` AND owner = $2`
		args = append(args, txt(owner))
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY created`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// revokeGrant deletes a grant and every token issued under it.
func (s *store) revokeGrant(ctx context.Context, id string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM grants WHERE id = $1`, txt(id))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errNotFound
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked = 1 WHERE grant_id = $1`, txt(id)); err != nil {
		return err
	}
	return tx.Commit()
}

// Token kinds.
const (
	kindAccess  = "access"
	kindRefresh = "refresh"
)

type tokenRow struct {
	Kind     string
	Grant    string
	Family   string // refresh tokens and the access tokens issued with them share it
	Route    string
	Owner    string
	ClientID string
	Scopes   []string
	AuthTime time.Time
	Expires  time.Time
	Used     bool
	Revoked  bool
	// Sub and Email are the person the token was issued to, when they
	// signed in with the identity provider.
	Sub, Email string
}

func (s *store) addToken(ctx context.Context, tx *sql.Tx, secret string, t tokenRow) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO tokens (hash, kind, grant_id, family, route, owner, client_id, scopes, auth_time, expires, sub, email) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		hashSecret(secret), t.Kind, txt(t.Grant), txt(t.Family), txt(t.Route), txt(t.Owner), txt(t.ClientID), txt(strings.Join(t.Scopes, " ")), t.AuthTime.Unix(), t.Expires.Unix(), txt(t.Sub), txt(t.Email))
	return err
}

func (s *store) token(ctx context.Context, secret string) (tokenRow, error) {
	var t tokenRow
	var scopes string
	var authTime, expires int64
	err := s.db.QueryRowContext(ctx, `SELECT kind, grant_id, family, route, owner, client_id, scopes, auth_time, expires, used, revoked, sub, email FROM tokens WHERE hash = $1`, hashSecret(secret)).
		Scan(&t.Kind, &t.Grant, &t.Family, &t.Route, &t.Owner, &t.ClientID, &scopes, &authTime, &expires, &t.Used, &t.Revoked, &t.Sub, &t.Email)
	if errors.Is(err, sql.ErrNoRows) {
		return t, errNotFound
	}
	t.Scopes = strings.Fields(scopes)
	t.AuthTime, t.Expires = time.Unix(authTime, 0), time.Unix(expires, 0)
	return t, err
}

// useRefresh marks a refresh token used, within tx; false means it already
// was (a reuse) or is revoked.
func (s *store) useRefresh(ctx context.Context, tx *sql.Tx, secret string) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE tokens SET used = 1 WHERE hash = $1 AND kind = $2 AND used = 0 AND revoked = 0`, hashSecret(secret), kindRefresh)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func (s *store) revokeFamily(ctx context.Context, family string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE tokens SET revoked = 1 WHERE family = $1`, txt(family))
	return err
}

func (s *store) revokeToken(ctx context.Context, secret string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE tokens SET revoked = 1 WHERE hash = $1`, hashSecret(secret))
	return err
}

// UnusedClientTTL is how long a dynamically registered client lasts if it
// never gets a token: an hour is time enough for an owner's approval, and
// short enough that registrations made only to fill the relay go soon.
const UnusedClientTTL = time.Hour

// sweep deletes what has expired: requests, tokens, grants, and clients
// registered more than UnusedClientTTL ago that never got a token.
func (s *store) sweep(ctx context.Context, now time.Time) error {
	for _, q := range []string{
		`DELETE FROM auth_requests WHERE expires <= $1`,
		`DELETE FROM tokens WHERE expires <= $1`,
		`DELETE FROM grants WHERE expires <= $1`,
	} {
		if _, err := s.db.ExecContext(ctx, q, now.Unix()); err != nil {
			return err
		}
	}
	_, err := s.db.ExecContext(ctx, `DELETE FROM clients WHERE used = 0 AND created <= $1`, now.Add(-UnusedClientTTL).Unix())
	return err
}
