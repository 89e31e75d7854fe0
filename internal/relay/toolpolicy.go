package relay

import (
	"context"
	"fmt"
	"github.com/pomdev/pomdev/internal/publicpath"
	"github.com/pomdev/pomdev/internal/toolrule"
	"net/http"
	"strings"
	"time"

	"github.com/pomdev/pomdev/internal/relay/policy"
)

// loadPolicy reads the policy file, if any, and watches it.
func (r *Relay) loadPolicy() error {
	if r.cfg.PolicyFile == "" {
		return nil
	}
	w, err := policy.Watch(r.cfg.PolicyFile, r.log.With("part", "policy"), r.policyChanged)
	if err != nil {
		return err
	}
	if where := w.Policy().NeedsIdentity(); where != "" && r.rp == nil {
		w.Close()
		return fmt.Errorf("%s: email, domain and sub principals name people, and this relay signs no one in with an OpenID Connect provider (relay.oidc_issuer); name SSH keys (key:SHA256:…) instead", where)
	}
	r.policy = w
	return nil
}

// Policy is the policy in force (nil without a policy file) and, when the
// file on disk was refused, why.
func (r *Relay) Policy() (*policy.Policy, error) {
	if r.policy == nil {
		return nil, nil
	}
	return r.policy.Policy(), r.policy.Err()
}

func (r *Relay) currentPolicy() *policy.Policy {
	if r.policy == nil {
		return nil
	}
	return r.policy.Policy()
}

// policyChanged closes the live routes the new policy no longer lets
// their key hold.
func (r *Relay) policyChanged(p *policy.Policy) {
	if where := p.NeedsIdentity(); where != "" && r.rp == nil {
		r.log.Warn("policy names people, but this relay has no OpenID Connect provider: those rules match no one", "at", where)
	}
	r.mu.Lock()
	var drop []*route
	for name, rt := range r.routes {
		if ok, _ := p.MayHold(r.identityOf(rt.c.fp), name); !ok {
			drop = append(drop, rt)
		}
	}
	r.mu.Unlock()
	if r.access != nil {
		// People the new policy no longer lists lose their tokens now.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r.access.RecheckCallers(ctx)
		cancel()
	}
	for _, rt := range drop {
		_, where := p.MayHold(r.identityOf(rt.c.fp), rt.name)
		r.log.Info("tunnel closed: the reloaded policy does not let its key hold the route", "route", rt.name, "rule", where)
		rt.c.notify(note{Log: "tunnel " + rt.name + " closed by the relay's policy (" + where + ")"})
		rt.c.mu.Lock()
		delete(rt.c.routes, rt.name)
		rt.c.mu.Unlock()
		r.releaseRoute(rt)
	}
}

// mayHold checks the policy for a route c is about to hold.
func (r *Relay) mayHold(c *conn, name string) error {
	p := r.currentPolicy()
	if p == nil {
		return nil
	}
	if ok, where := p.MayHold(r.identityOf(c.fp), name); !ok {
		return fmt.Errorf("the relay's policy does not let this key hold %q (%s)", name, where)
	}
	if s := c.public.Load(); s != nil {
		return publicAllowed(p, name, *s)
	}
	return nil
}

// publicAllowed says why policy p does not let route name serve the public
// paths s, nil when it does.
func publicAllowed(p *policy.Policy, name string, s publicpath.Set) error {
	pp := p.PublicPathsFor(name)
	if s.Empty() || pp == nil || s.Under(pp.Prefixes) {
		return nil
	}
	allowed := "no public paths"
	if len(pp.Prefixes) > 0 {
		allowed = "public paths only under " + strings.Join(pp.Prefixes, ", ")
	}
	return fmt.Errorf("the relay's policy does not let %q serve %s=%s without a token: it allows %s (%s)", name, publicpath.Env, s, allowed, pp.Where)
}

// setPublic takes a tunnel's POMDEV_PUBLIC_PATHS: refused when the policy
// does not let a route the connection already holds serve them (ssh may
// ask for its forwards before it sends the session's env).
func (c *conn) setPublic(value string) error {
	s, err := publicpath.Parse(value)
	if err != nil {
		return err
	}
	p := c.r.currentPolicy()
	c.mu.Lock()
	defer c.mu.Unlock()
	for name := range c.routes {
		if err := publicAllowed(p, name, s); err != nil {
			return err
		}
	}
	c.public.Store(&s)
	return nil
}

// publicPath reports whether req is for one of rt's public asset paths,
// which a gated route serves without a token: a GET or HEAD (an upgrade
// too: a dev server's hot reload) for a path the tunnel announced, in
// canonical form, that the policy in force lets it announce.
func (r *Relay) publicPath(rt *route, req *http.Request) bool {
	s := rt.c.public.Load()
	if s == nil || s.Empty() || (req.Method != http.MethodGet && req.Method != http.MethodHead) {
		return false
	}
	if !s.Match(req.URL.Path, req.URL.EscapedPath()) {
		return false
	}
	if pp := r.currentPolicy().PublicPathsFor(rt.name); pp != nil && !s.Under(pp.Prefixes) {
		return false
	}
	return true
}

// releasedByPolicy says, for route name, whether the policy no longer
// lets a key that holds it hold it (the policy gave the name to someone
// else): the name is then free for others.
func (r *Relay) releasedByPolicy(name string) func(owner string) bool {
	return func(owner string) bool {
		p := r.currentPolicy()
		if p == nil {
			return false
		}
		ok, _ := p.MayHold(r.identityOf(owner), name)
		return !ok
	}
}

// toolsFor is the tool rules in force on rt.
func (r *Relay) toolsFor(rt *route) toolrule.ToolSet {
	ts := r.currentPolicy().ToolsFor(rt.name)
	if own := rt.c.tools.Load(); own != nil && !own.Empty() {
		ts = append(ts, *own)
	}
	return ts
}

// setTunnelTools takes one of the POMDEV_TOOLS_* env requests.
func (c *conn) setTunnelTools(name, value string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	allow, deny := c.toolsAllow, c.toolsDeny
	if name == toolrule.EnvAllow {
		allow = value
	} else {
		deny = value
	}
	t, err := toolrule.ParseTunnel(allow, deny)
	if err != nil {
		return err
	}
	c.toolsAllow, c.toolsDeny = allow, deny
	c.tools.Store(&t)
	return nil
}
