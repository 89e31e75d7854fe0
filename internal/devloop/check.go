package devloop

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/pomdev/pomdev/internal/mcpcheck"
)

// checkTimeout bounds each check (local, and through the tunnel).
const checkTimeout = 15 * time.Second

// check lists tools locally and through the tunnel and reports what
// changed since the last check (tool name to schema signature; nil before
// the first). It returns the tools now.
func (s *Session) check(ctx context.Context, cause string, last map[string]string) map[string]string {
	local := "http://" + s.target + "/mcp"
	rep, err := mcpcheck.Run(ctx, mcpcheck.Options{URL: local, Timeout: checkTimeout})
	if err != nil {
		s.emit(CheckLocal{Cause: cause, URL: local, Err: err})
		return last
	}
	now := map[string]string{}
	names := make([]string, 0, len(rep.Tools))
	for _, t := range rep.Tools {
		names = append(names, t.Name)
		now[t.Name] = t.Signature()
	}
	slices.Sort(names)
	var errs []mcpcheck.Finding
	for _, f := range rep.Findings {
		if f.Severity == mcpcheck.SeverityError {
			errs = append(errs, f)
		}
	}
	s.emit(CheckLocal{Cause: cause, URL: local, Tools: names, Errors: errs})
	if last != nil {
		added, removed, changed := diffTools(last, now)
		if len(added)+len(removed)+len(changed) > 0 {
			s.emit(ToolsChanged{Added: added, Removed: removed, Changed: changed})
		}
	}
	if tc := s.tc.Load(); tc != nil && tc.URL() != "" {
		remote := tc.URL() + "/mcp"
		ev := CheckTunnel{URL: remote}
		topts := mcpcheck.Options{URL: remote, Timeout: checkTimeout}
		trep, err := mcpcheck.Run(ctx, topts)
		var ae *mcpcheck.AuthError
		if errors.As(err, &ae) {
			// A pomdev relay's OAuth gate: pass it as the owner, with a
			// token the relay mints over the SSH connection, so that the
			// check goes through everything a host goes through.
			if tok, _, terr := tc.OwnerToken(ctx); terr == nil {
				ev.Gated = true
				topts.Headers = map[string]string{"Authorization": "Bearer " + tok}
				trep, err = mcpcheck.Run(ctx, topts)
			}
		}
		switch {
		case err == nil:
			for _, f := range trep.Findings {
				if f.Rule == "APP010" && !slices.Contains(ev.LocalhostWidgets, f.Subject) {
					ev.LocalhostWidgets = append(ev.LocalhostWidgets, f.Subject)
				}
			}
			// What ChatGPT and Claude will do with the widgets, read
			// through the tunnel as they read it.
			if trep.Findings = nil; mcpcheck.CheckHosts(ctx, topts, trep, mcpcheck.Hosts) == nil {
				ev.HostsChecked = true
				for _, f := range trep.Findings {
					if f.Host != "" && f.Severity != mcpcheck.SeverityInfo {
						ev.Hosts = append(ev.Hosts, f)
					}
				}
			}
		case errors.As(err, &ae):
			ev.Gated, ev.Protected = false, true
		default:
			ev.Err = err
		}
		s.emit(ev)
	}
	return now
}

// diffTools compares two tool lists (name to schema signature), each
// result sorted.
func diffTools(last, now map[string]string) (added, removed, changed []string) {
	for n, sig := range now {
		old, ok := last[n]
		switch {
		case !ok:
			added = append(added, n)
		case old != sig:
			changed = append(changed, n)
		}
	}
	for n := range last {
		if _, ok := now[n]; !ok {
			removed = append(removed, n)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	slices.Sort(changed)
	return added, removed, changed
}
