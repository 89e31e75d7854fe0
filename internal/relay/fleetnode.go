package relay

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/pomdev/pomdev/internal/relay/control"
	"github.com/pomdev/pomdev/internal/relay/fleet"
	relaystore "github.com/pomdev/pomdev/internal/relay/store"
)

// joinFleet makes the relay a node of its store's fleet (PostgreSQL
// stores only): its internal listener on FleetAddr, or by default the
// host of the HTTP listener on a free port.
func (r *Relay) joinFleet() error {
	if relaystore.EngineOf(r.db) != relaystore.Postgres {
		return nil
	}
	listen, announce, err := fleetAddrs(r.cfg.FleetAddr, r.cfg.HTTPListener.Addr())
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("relay: fleet address %s: %w (choose another with relay.fleet_addr)", listen, err)
	}
	if announce == "" {
		announce = ln.Addr().String()
	} else if _, port, _ := net.SplitHostPort(announce); port == "0" {
		host, _, _ := net.SplitHostPort(announce)
		_, p, _ := net.SplitHostPort(ln.Addr().String())
		announce = net.JoinHostPort(host, p)
	}
	r.fleet, err = fleet.Start(fleet.Config{DB: r.db, Listener: ln, Addr: announce, StateDir: r.cfg.StateDir, Handler: r, Gone: http.HandlerFunc(r.front.NoTunnel),
		DSN: r.cfg.Store, Changed: r.fleetChanged, Log: r.log})
	if err != nil {
		ln.Close()
		return fmt.Errorf("relay: %w", err)
	}
	return nil
}

// fleetAddrs is where the internal listener listens and what it announces
// ("" for its own address): FleetAddr as given, else the HTTP listener's
// host on port 0. A wildcard host listens everywhere and announces the
// machine's first non-loopback address.
func fleetAddrs(given string, httpAddr net.Addr) (listen, announce string, err error) {
	if given != "" {
		host, _, err := net.SplitHostPort(given)
		if err != nil {
			return "", "", fmt.Errorf("relay: fleet address %q: %w", given, err)
		}
		if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
			return given, "", nil
		}
		listen = given
	} else {
		host, _, _ := net.SplitHostPort(httpAddr.String())
		listen = net.JoinHostPort(host, "0")
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			return listen, "", nil
		}
	}
	_, port, _ := net.SplitHostPort(listen)
	ip, err := firstAddress()
	if err != nil {
		return "", "", fmt.Errorf("relay: the fleet address to announce: %w (set relay.fleet_addr)", err)
	}
	return listen, net.JoinHostPort(ip, port), nil
}

// firstAddress is the machine's first up, non-loopback unicast IP.
func firstAddress() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.IsGlobalUnicast() {
			return n.IP.String(), nil
		}
	}
	return "", fmt.Errorf("no non-loopback address")
}

// remote is the front's handler for a route this relay does not hold: the
// node of the fleet that does, if any.
func (r *Relay) remote(req *http.Request, name string) http.Handler {
	if r.fleet == nil {
		return nil
	}
	return r.fleet.Remote(req, name)
}

// holdRoute and releaseRoute's lease: other nodes pass rt's requests here
// while it is live.
func (r *Relay) leaseRoute(name string, held bool) {
	if r.fleet == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if held {
		err = r.fleet.Hold(ctx, name)
	} else {
		err = r.fleet.Release(ctx, name)
	}
	if err != nil {
		r.log.Warn("fleet: cannot record a route's node", "route", name, "held", held, "err", err)
	}
}

// closeBeforeFleet undoes New's steps when joining the fleet fails.
func (r *Relay) closeBeforeFleet() {
	if r.access != nil {
		r.access.Close()
	}
	if r.controlLn != nil {
		r.controlLn.Close()
		_ = os.Remove(control.SocketPath(r.cfg.StateDir))
	}
	if r.policy != nil {
		r.policy.Close()
	}
	r.db.Close()
}

// revokedHere tells the fleet that the access server revoked tokens.
func (r *Relay) revokedHere() {
	if r.fleet != nil {
		r.fleet.Revoked()
	}
}

// cacheFresh says whether cached token verdicts may be used: always on
// one relay; in a fleet while revocations elsewhere are heard.
func (r *Relay) cacheFresh() bool { return r.fleet == nil || r.fleet.Fresh() }

// fleetChanged acts on what another node changed.
func (r *Relay) fleetChanged(kind, route string) {
	switch kind {
	case "revoked":
		if r.access != nil {
			r.access.ForgetVerdicts()
		}
	case "held":
		// The same key's tunnel is on another node now (a reconnect
		// through the load balancer): a connection here holding it is
		// stale, as when the key reconnects to this relay.
		r.mu.Lock()
		rt := r.routes[route]
		r.mu.Unlock()
		if rt != nil {
			rt.c.log.Info("taken over by a connection to another relay of the fleet", "route", route)
			_ = rt.c.sc.Close()
		}
	}
}

// serveReady answers a load balancer: 200 while the relay serves and its
// store answers, 503 (with why) when it is stopping or the store does not.
func (r *Relay) serveReady(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	closed, n := r.closed, len(r.routes)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	node := ""
	if r.fleet != nil {
		node = r.fleet.ID()
	}
	if closed {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, `{"status":"stopping","tunnels":%d,"node":%q}`+"\n", n, node)
		return
	}
	if err := r.readiness.Check(req.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, `{"status":"store unreachable","tunnels":%d,"node":%q}`+"\n", n, node)
		return
	}
	fmt.Fprintf(w, `{"status":"ready","tunnels":%d,"node":%q}`+"\n", n, node)
}

// FleetNode is the relay's id and internal address in its store's fleet
// ("" when it is on relay.db).
func (r *Relay) FleetNode() (id, addr string) {
	if r.fleet == nil {
		return "", ""
	}
	return r.fleet.ID(), r.fleet.Addr()
}
