package relay

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pomdev/pomdev/internal/relay/oidcrp"
	"github.com/pomdev/pomdev/internal/relay/policy"
)

// signinOIDCPath starts a key's sign-in through the identity provider.
const signinOIDCPath = "/.pomdev/sign_in/oidc"

// prepareOIDC discovers the identity provider, when one is configured.
func (r *Relay) prepareOIDC() error {
	if r.cfg.OIDC.Issuer == "" {
		return nil
	}
	cfg := r.cfg.OIDC
	cfg.RedirectURL = r.BaseURL() + oidcrp.CallbackPath
	if cfg.Now == nil {
		cfg.Now = r.cfg.Now
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rp, err := oidcrp.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("relay: %w (is relay.oidc_issuer right and reachable from here?)", err)
	}
	r.rp = rp
	if r.signin != nil {
		r.signin.rp = rp
	}
	return nil
}

// identityOf is who holds the key fp: the key, and the person who signed
// it in through the identity provider.
func (r *Relay) identityOf(fp string) policy.Identity {
	id := policy.Identity{Key: fp}
	if r.signin != nil {
		id.Sub, id.Email = r.signin.identity(fp)
	}
	return id
}

// serveSigninOIDC sends the person who opened a sign-in link to the
// identity provider; when they come back, the key is signed in as them if
// the policy lets them open tunnels.
func (r *Relay) serveSigninOIDC(w http.ResponseWriter, req *http.Request) {
	s := r.signin
	code := strings.ToUpper(strings.TrimSpace(req.URL.Query().Get("user_code")))
	p, ok := s.lookup(code)
	if !ok || r.rp == nil {
		r.page(w, http.StatusNotFound, "No such sign-in", "No pending sign-in has this code (it may have expired or been used). Connect again for a new link.")
		return
	}
	r.rp.Start(w, req, func(w http.ResponseWriter, req *http.Request, id oidcrp.Identity, err error) {
		if err != nil {
			r.log.Info("sign-in through the identity provider failed", "fingerprint", p.fp, "err", err)
			r.page(w, http.StatusForbidden, "Sign-in failed", err.Error()+" The key is not signed in.")
			return
		}
		who := id.Email
		if who == "" {
			who = "subject " + id.Sub
		}
		if pol := r.currentPolicy(); pol != nil {
			if ok, where := pol.MayOpen(policy.Identity{Key: p.fp, Sub: id.Sub, Email: id.Email}); !ok {
				_, _ = s.decideAs(code, false, id)
				r.log.Info("sign-in refused by the policy", "fingerprint", p.fp, "sub", id.Sub, "email", id.Email, "rule", where)
				r.page(w, http.StatusForbidden, "Not allowed", fmt.Sprintf("You signed in as %s, and this relay's policy does not let you open tunnels (%s). Ask its admin.", who, where))
				return
			}
		}
		if _, err := s.decideAs(code, true, id); err != nil {
			r.page(w, http.StatusNotFound, "Sign-in expired", err.Error())
			return
		}
		r.page(w, http.StatusOK, "Signed in", fmt.Sprintf("The key %s is signed in as %s. Go back to your terminal.", p.fp, who))
	})
}

// oidcButton is the sign-in page's way through the identity provider.
func oidcButton(rp *oidcrp.RP, code string) string {
	if rp == nil {
		return ""
	}
	host := rp.Issuer()
	if u, err := url.Parse(host); err == nil {
		host = u.Host
	}
	return `<p><a href="` + signinOIDCPath + `?user_code=` + url.QueryEscape(code) + `">Sign in with ` + html.EscapeString(host) + `</a> — only if you started this sign-in: the key is then bound to you.</p>
`
}

// SignedInAs is the person the key fp is signed in as ("" when none).
func (r *Relay) SignedInAs(fp string) (sub, email string) {
	if r.signin == nil {
		return "", ""
	}
	return r.signin.identity(fp)
}
