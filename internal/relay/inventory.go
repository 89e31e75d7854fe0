package relay

import (
	"context"
	"github.com/pomdev/pomdev/internal/relay/control"
	"sort"
)

// Inventory lists every live route, by name.
func (r *Relay) Inventory(ctx context.Context) []control.RouteInfo {
	r.mu.Lock()
	routes := make([]*route, 0, len(r.routes))
	for _, rt := range r.routes {
		routes = append(routes, rt)
	}
	r.mu.Unlock()
	grants := map[string]int{}
	if r.access != nil {
		if gs, err := r.access.Grants(ctx, ""); err == nil {
			for _, g := range gs {
				grants[g.Owner]++
			}
		}
	}
	out := make([]control.RouteInfo, 0, len(routes))
	for _, rt := range routes {
		id := r.identityOf(rt.c.fp)
		ri := control.RouteInfo{Name: rt.name, URL: rt.url, Static: rt.static, OwnerKey: rt.c.fp, OwnerSub: id.Sub, OwnerEmail: id.Email,
			Remote: rt.c.sc.RemoteAddr().String(), Since: rt.created, Requests: rt.link.Requests(), Grants: grants[rt.c.fp]}
		if rt.static {
			ri.Target = "static (the client's -R target)"
		} else {
			ri.Target = rt.c.targetOf()
		}
		switch {
		case r.access == nil:
			ri.HTTPAuth = HTTPAuthNone
		case rt.c.appAuth.Load():
			ri.HTTPAuth = "app"
		default:
			ri.HTTPAuth = HTTPAuthOwner
		}
		ri.Tools = "all"
		if ts := r.toolsFor(rt); !ts.Empty() {
			ri.Tools = ""
			for i, t := range ts {
				if i > 0 {
					ri.Tools += " + "
				}
				ri.Tools += t.String()
			}
		}
		ri.Last = rt.link.Last()
		out = append(out, ri)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// controlBackend is the relay as its control socket sees it.
func (r *Relay) controlBackend() control.Backend {
	b := control.Backend{Routes: r.Inventory}
	if r.signin != nil {
		b.Approve = r.signin.decide
	}
	if r.access != nil {
		b.Access = r.access
	}
	return b
}
