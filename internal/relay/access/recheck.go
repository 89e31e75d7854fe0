package access

import (
	"context"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// personToken is a live token's route and person.
type personToken struct{ route, sub, email string }

// livePeople lists the (route, person) pairs that hold live tokens.
func (s *store) livePeople(ctx context.Context, now time.Time) ([]personToken, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT route, sub, email FROM tokens WHERE revoked = 0 AND expires > $1 AND sub != ''`, now.Unix())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []personToken
	for rows.Next() {
		var p personToken
		if err := rows.Scan(&p.route, &p.sub, &p.email); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// revokePerson revokes every token of sub on route.
func (s *store) revokePerson(ctx context.Context, route, sub string) (int64, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE tokens SET revoked = 1 WHERE route = $1 AND sub = $2 AND revoked = 0`, txt(route), txt(sub))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// RecheckCallers revokes the tokens of every person the relay's Allow no
// longer lets call the route their tokens are for: a policy reload that
// removes someone from a route's callers ends their access at once, not
// when their tokens expire. It does nothing without a sign-in (tokens
// then name no person).
func (s *Server) RecheckCallers(ctx context.Context) {
	if s.cfg.SignIn == nil || s.cfg.Allow == nil {
		return
	}
	people, err := s.st.livePeople(ctx, s.cfg.Now())
	if err != nil {
		s.log.Warn("cannot re-check the callers of live tokens", "err", err)
		return
	}
	revoked := false
	for _, p := range people {
		person := Person{Sub: p.sub, Email: p.email}
		ok, why := s.cfg.Allow(p.route, person)
		if ok {
			continue
		}
		n, err := s.st.revokePerson(ctx, p.route, p.sub)
		if err != nil {
			s.log.Warn("cannot revoke a person's tokens", "route", p.route, "err", err)
			continue
		}
		revoked = true
		s.log.Info("tokens revoked: the policy no longer lets their person call the route", "route", p.route, "person", person.String(), "tokens", n)
		s.audit.add(Entry{Kind: "token", Route: p.route, By: person.String(), Decision: "revoked", Reason: "policy: " + why})
	}
	if revoked {
		s.forgetVerdicts()
	}
}

// refreshAllowed re-checks, at a refresh, that the token's person may
// still call its route; when not, its family is revoked.
func (s *Server) refreshAllowed(ctx context.Context, t tokenRow) error {
	if s.cfg.SignIn == nil || s.cfg.Allow == nil || t.Sub == "" {
		return nil
	}
	person := Person{Sub: t.Sub, Email: t.Email}
	if ok, why := s.cfg.Allow(t.Route, person); !ok {
		s.audit.add(Entry{Kind: "token", Route: t.Route, Client: t.ClientID, Grant: t.Grant, Owner: t.Owner, By: person.String(), Decision: "revoked", Reason: "refresh refused; policy: " + why})
		_ = s.st.revokeFamily(ctx, t.Family)
		s.forgetVerdicts()
		return op.ErrInvalidRefreshToken
	}
	return nil
}
