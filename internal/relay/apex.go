package relay

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/pomdev/pomdev/internal/relay/access"
	"github.com/pomdev/pomdev/internal/relay/front"
	"github.com/pomdev/pomdev/internal/relay/oidcrp"
)

// The relay's own pages, on the bare domain: /healthz, /readyz, the authorization
// server, the OpenID Connect callback and the sign-in page. The front
// (relay/front) passes the apex here.

// ServeHTTP is the relay's public HTTP(S) listener: its front.
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) { r.front.ServeHTTP(w, req) }

func (r *Relay) serveApex(w http.ResponseWriter, req *http.Request) {
	if (req.URL.Path == "/healthz" || req.URL.Path == "/readyz") && req.Method == http.MethodGet {
		r.serveApexPage(w, req)
		return
	}
	r.guardApex(w, req, r.serveApexPage)
}

func (r *Relay) serveApexPage(w http.ResponseWriter, req *http.Request) {
	switch {
	case req.URL.Path == "/healthz":
		w.Header().Set("Content-Type", "application/json")
		r.mu.Lock()
		n := len(r.routes)
		r.mu.Unlock()
		fmt.Fprintf(w, `{"status":"ok","tunnels":%d}`+"\n", n)
	case req.URL.Path == "/readyz":
		r.serveReady(w, req)
	case r.access != nil && access.Handles(req.URL.Path):
		r.access.ServeHTTP(w, req)
	case req.URL.Path == oidcrp.CallbackPath && r.rp != nil:
		r.rp.ServeCallback(w, req)
	case req.URL.Path == signinOIDCPath && r.signin != nil:
		r.serveSigninOIDC(w, req)
	case strings.HasPrefix(req.URL.Path, "/.pomdev/sign_in") && r.signin != nil:
		r.signin.servePage(w, req, r.tokenSafe(req))
	default:
		r.page(w, http.StatusNotFound, "pomdev relay",
			fmt.Sprintf("This is a pomdev relay. Open a tunnel with: ssh -R 0 -p PORT %s (or pomdev tunnel), then use the URL it prints.", r.cfg.Domain))
	}
}

// tokenSafe reports whether the admin token may be sent to req's front:
// not in clear over a network.
func (r *Relay) tokenSafe(req *http.Request) bool {
	if req.TLS != nil || r.cfg.Scheme == "https" {
		return true
	}
	a, ok := r.cfg.HTTPListener.Addr().(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}

// page writes a small HTML answer that names the relay.
func (r *Relay) page(w http.ResponseWriter, code int, title, msg string) {
	front.Page(w, code, title, msg)
}
