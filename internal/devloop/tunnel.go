package devloop

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/pomdev/pomdev/internal/backoff"
	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/ownerctl"
	"github.com/pomdev/pomdev/internal/relay"
	"github.com/pomdev/pomdev/internal/tunnel"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sync/errgroup"
)

// startTunnel opens the tunnel (and the embedded relay for --relay
// local) in g; a relay never reached is retried with backoff.
func (s *Session) startTunnel(ctx context.Context, g *errgroup.Group) (*tunnel.Client, error) {
	app, ra := s.app, s.relay
	signer, _, created, err := tunnel.LoadOrCreateIdentity(s.cfg.ConfigDir)
	if err != nil {
		return nil, err
	}
	if created {
		s.emit(IdentityCreated{Fingerprint: ssh.FingerprintSHA256(signer.PublicKey())})
	}
	addr, remoteURL, known := ra.Addr(), app.Tunnel.RemoteURL, filepath.Join(s.cfg.ConfigDir, tunnel.KnownHostsFile)
	if ra.Local {
		sl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		hl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			sl.Close()
			return nil, err
		}
		relayLog := slog.New(slog.DiscardHandler) // its events are the tunnel's already
		if app.Log.Level == "debug" {
			relayLog = s.cfg.Logger.With("component", "local-relay")
		}
		r, _, err := relay.New(relay.Config{SSHListener: sl, HTTPListener: hl, StateDir: filepath.Join(s.cfg.ConfigDir, "local-relay"),
			SingleRoute: true, Logger: relayLog, HTTPAuth: s.cfg.HTTPAuth})
		if err != nil {
			sl.Close()
			hl.Close()
			return nil, err
		}
		g.Go(func() error { _ = r.Serve(ctx); return nil })
		addr = sl.Addr().String()
		remoteURL = "http://" + hl.Addr().String()
		if s.cfg.HTTPAuth == relay.HTTPAuthOwner {
			// OAuth resources are the route's own URL, as on a public relay.
			remoteURL = ""
		}
		known = filepath.Join(s.cfg.ConfigDir, "local-relay", "known_hosts") // its key is per state dir
		s.emit(LocalRelay{URL: "http://" + hl.Addr().String(), SSHAddr: addr})
	}
	var firstURL sync.Once
	tc, err := tunnel.New(tunnel.Config{
		Addr: addr, User: ra.User, Signers: []ssh.Signer{signer}, KnownHosts: known,
		Targets: []string{s.target}, RemoteURL: remoteURL, Logger: s.cfg.Logger,
		ToolsAllow: app.Tunnel.Tools.Allow, ToolsDeny: app.Tunnel.Tools.Deny, PublicPaths: app.Tunnel.PublicPaths,
		SignIn: func(name, link string) {
			// The link is in the sign-in event either way.
			if s.cfg.OpenBrowser != nil {
				_ = s.cfg.OpenBrowser(link)
			}
		},
		OnEvent: func(e event.Tunnel) {
			s.emit(Tunnel{Tunnel: e, Local: ra.Local})
			if e.Kind == event.TunnelReady {
				// The check runs when the server is ready; if it already
				// was, check through the new tunnel now.
				firstURL.Do(func() {
					if s.ready.Load() {
						s.Check("tunnel ready")
					}
				})
			}
		},
	})
	if err != nil {
		return nil, err
	}
	// `pomdev access approve CODE` from another terminal reaches the
	// relay through this tunnel's SSH connection.
	if stop, err := ownerctl.Listen(s.cfg.ConfigDir, func(ctx context.Context, verb, code string) (string, error) {
		if code == "" {
			return tc.Access(ctx, verb)
		}
		return tc.Access(ctx, verb, code)
	}); err == nil {
		context.AfterFunc(ctx, stop)
	} else {
		s.emit(OwnerControlUnavailable{Err: err})
	}
	g.Go(func() error {
		// A relay never reached (pom.run down, no network) is retried with
		// backoff; a tunnel that was up reconnects inside Run.
		delays := &backoff.Backoff{Min: time.Second, Max: 30 * time.Second}
		for {
			err := tc.Run(ctx)
			if err == nil || ctx.Err() != nil {
				return nil
			}
			var unreachable *tunnel.UnreachableError
			if !errors.As(err, &unreachable) {
				s.emit(TunnelFailed{Err: err})
				return nil
			}
			wait := delays.Next()
			s.emit(RelayUnreachable{Relay: app.Tunnel.Relay, Reason: netReason(err), Wait: wait})
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
	})
	return tc, nil
}

// netReason says in a few words why a peer could not be reached.
func netReason(err error) string {
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		return "DNS lookup failed (" + dns.Name + ")"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "no route to the network"
	}
	return err.Error()
}
