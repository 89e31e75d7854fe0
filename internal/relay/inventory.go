package relay

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"time"
)

// RouteInfo is one live route in the relay's inventory: who holds it, what
// it reaches, what guards it and when it was last used.
type RouteInfo struct {
	Name       string    `json:"name"`
	URL        string    `json:"url"`
	Static     bool      `json:"static,omitempty"`
	OwnerKey   string    `json:"owner_key"`
	OwnerSub   string    `json:"owner_sub,omitempty"`
	OwnerEmail string    `json:"owner_email,omitempty"`
	Remote     string    `json:"remote"` // the SSH client's address
	Target     string    `json:"target"` // as the tunnel asked; the client side resolves it
	HTTPAuth   string    `json:"http_auth"`
	Tools      string    `json:"tools"` // the tool rules in force
	Grants     int       `json:"grants"`
	Since      time.Time `json:"since"`
	Requests   int64     `json:"requests"`
	Last       time.Time `json:"last_request,omitzero"`
}

// Inventory lists every live route, by name.
func (r *Relay) Inventory(ctx context.Context) []RouteInfo {
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
	out := make([]RouteInfo, 0, len(routes))
	for _, rt := range routes {
		id := r.identityOf(rt.c.fp)
		ri := RouteInfo{Name: rt.name, URL: rt.url, Static: rt.static, OwnerKey: rt.c.fp, OwnerSub: id.Sub, OwnerEmail: id.Email,
			Remote: rt.c.sc.RemoteAddr().String(), Since: rt.created, Requests: rt.requests.Load(), Grants: grants[rt.c.fp]}
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
		if n := rt.last.Load(); n != 0 {
			ri.Last = time.Unix(0, n)
		}
		out = append(out, ri)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (r *Relay) inventoryControl(mux *http.ServeMux) {
	mux.HandleFunc("GET /routes", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ControlAnswer{Routes: r.Inventory(req.Context())})
	})
}
