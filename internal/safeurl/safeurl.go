// Package safeurl decides which URLs pomdev may open in a browser: it
// opens sign-in links and the like that come from relays and servers, so a
// hostile peer must not make it open a file, a custom-scheme handler or an
// argument for the opener.
package safeurl

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/pomdev/pomdev/internal/loopback"
)

// ForBrowser returns nil if raw may be opened in a browser: an absolute
// https URL with a host, or an http URL to this machine (localhost,
// *.localhost, 127.0.0.0/8, ::1).
func ForBrowser(raw string) error {
	if raw == "" || raw != strings.TrimSpace(raw) || strings.ContainsAny(raw, " \t\r\n") {
		return fmt.Errorf("not a single URL: %q", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q has no host", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if loopback.IsLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q is plain http to another machine; only https is opened", raw)
	default:
		return fmt.Errorf("%q: scheme %q is not opened (only https, and http to this machine)", raw, u.Scheme)
	}
}
