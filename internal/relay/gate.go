package relay

import (
	"github.com/pomdev/pomdev/internal/relay/console"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/pomdev/pomdev/internal/relay/access"
	"github.com/pomdev/pomdev/internal/relay/front"
	"github.com/pomdev/pomdev/internal/relay/oidcrp"
	"github.com/pomdev/pomdev/internal/relay/policy"
)

// HTTP authorization modes of the public front.
const (
	HTTPAuthOwner = "owner" // OAuth, grants approved by the tunnel's owner
	HTTPAuthOIDC  = "oidc"  // OAuth, grants for the people the policy allows, signed in at the identity provider
	HTTPAuthNone  = "none"  // requests go through unauthenticated
)

// EnvHTTPAuth is the env request with which a tunnel asks that its app
// receive requests as sent (POMDEV_HTTP_AUTH=app: the app does its own
// OAuth); the relay accepts it only with Config.AllowAppAuth.
const EnvHTTPAuth = "POMDEV_HTTP_AUTH"

// AccessCommand is the exec command with which a tunnel's owner decides
// access requests from any SSH client with the same key:
//
//	ssh -p 2222 relay pomdev-access approve KQ4M-7TXD
const AccessCommand = console.AccessCommand

// resolver is the relay as the authorization server sees it.
type resolver struct{ r *Relay }

func (v resolver) RouteOf(resource string) (string, bool) {
	u, err := url.Parse(resource)
	if err != nil || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	switch strings.TrimSuffix(u.Path, "/") {
	case "", "/mcp":
	default:
		return "", false
	}
	name, apex, ok := front.RouteFromHost(u.Host, v.r.cfg.Domain)
	if !ok || apex || v.r.urlFor(name) != u.Scheme+"://"+strings.ToLower(u.Host) {
		return "", false
	}
	return name, true
}

func (v resolver) Resource(route string) string { return v.r.urlFor(route) + "/mcp" }

func (v resolver) Owner(route string) string {
	r := v.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if rt := r.routes[route]; rt != nil {
		return rt.c.fp
	}
	return r.book.owner(route, r.cfg.Now())
}

func (v resolver) Notify(req access.Request) {
	for _, c := range v.r.liveConns() {
		if c.fp == req.Owner {
			c.notify(note{Access: &req})
		}
	}
}

func (r *Relay) newAccess() (*access.Server, error) {
	var signIn func(http.ResponseWriter, *http.Request, func(http.ResponseWriter, *http.Request, access.Person, error))
	if r.cfg.HTTPAuth == HTTPAuthOIDC {
		signIn = func(w http.ResponseWriter, req *http.Request, done func(http.ResponseWriter, *http.Request, access.Person, error)) {
			r.rp.Start(w, req, func(w http.ResponseWriter, req *http.Request, id oidcrp.Identity, err error) {
				done(w, req, access.Person{Sub: id.Sub, Email: id.Email}, err)
			})
		}
	}
	return access.New(access.Config{
		SignIn:            signIn,
		OwnerApproval:     r.cfg.OwnerApproval,
		Allow:             r.mayCall,
		Issuer:            r.BaseURL(),
		StateDir:          r.cfg.StateDir,
		DB:                r.db,
		Revoked:           r.revokedHere,
		TrustCache:        r.cacheFresh,
		AdminToken:        r.adminToken,
		TokenSafe:         r.tokenSafe,
		Resolver:          resolver{r},
		GrantTTL:          r.cfg.GrantTTL,
		AccessTTL:         r.cfg.AccessTTL,
		AllowPrivateFetch: r.loopbackFront(),
		FetchRoots:        r.cfg.FetchRoots,
		Logger:            r.log.With("part", "access"),
		Now:               r.cfg.Now,
	})
}

// loopbackFront reports whether the HTTP front listens on loopback only.
func (r *Relay) loopbackFront() bool {
	a, ok := r.cfg.HTTPListener.Addr().(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}

// Access is the relay's authorization server (nil with --http-auth none).
func (r *Relay) Access() *access.Server { return r.access }

// mayCall says whether the person p may be granted access to route: the
// callers of the policy's rule for it, by default the route owner (the
// person the owner's key is signed in as).
func (r *Relay) mayCall(route string, p access.Person) (bool, string) {
	owner := r.identityOf(resolver{r}.Owner(route))
	who := policy.Identity{Sub: p.Sub, Email: p.Email}
	if rule := r.currentPolicy().Rule(route); rule != nil && rule.Callers != nil {
		for _, c := range rule.Callers {
			if c.Kind == "owner" && owner.Sub != "" && owner.Sub == p.Sub || c.Kind != "owner" && c.Matches(who) {
				return true, ""
			}
		}
		return false, "The relay's policy does not list you among this tunnel's callers (" + rule.Where + ")."
	}
	switch {
	case owner.Sub == "":
		return false, "This tunnel's key was not signed in through the identity provider, so no one can be matched to its owner; the relay's policy can list callers."
	case owner.Sub != p.Sub:
		who := owner.Email
		if who == "" {
			who = "its owner"
		}
		return false, "Only the tunnel's owner (" + who + ") may use it; sign in with that account, or ask the relay's admin to list you as a caller."
	}
	return true, ""
}
