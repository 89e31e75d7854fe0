package relay

import (
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"time"
)

// keyOptions are the authorized_keys options of one key that the relay
// honours (sshd(8), AUTHORIZED_KEYS FILE FORMAT). A nil *keyOptions
// restricts nothing.
type keyOptions struct {
	from         []string // from="pattern-list": the client's address must match
	noForwarding bool     // restrict, no-port-forwarding: no tunnels
	noPTY        bool     // restrict, no-pty: no status screen
	permitListen []string // permitlisten="host:port": the forwards allowed
	expires      time.Time
	noTouch      bool // no-touch-required (security keys)
}

// keyOptionsKey carries a key's options in ssh.Permissions.ExtraData.
type keyOptionsKey struct{}

// parseKeyOptions reads the options of one authorized_keys line. Options
// that restrict what the relay does not offer anyway (agent and X11
// forwarding, user rc, local forwards) are accepted; options it cannot
// honour (command=, environment=, tunnel=, certificates) make the line an
// error, so that a key is never let in with less restriction than its line
// says.
func parseKeyOptions(opts []string) (*keyOptions, error) {
	if len(opts) == 0 {
		return nil, nil
	}
	ko := &keyOptions{}
	for _, o := range opts {
		name, value, hasValue := strings.Cut(o, "=")
		if hasValue {
			v, err := strconv.Unquote(value)
			if err != nil {
				return nil, fmt.Errorf("option %s: the value must be in double quotes", name)
			}
			value = v
		}
		switch strings.ToLower(name) {
		case "restrict":
			ko.noForwarding, ko.noPTY = true, true
		case "port-forwarding":
			ko.noForwarding = false
		case "no-port-forwarding":
			ko.noForwarding = true
		case "pty":
			ko.noPTY = false
		case "no-pty":
			ko.noPTY = true
		case "from":
			if value == "" {
				return nil, fmt.Errorf("from= needs a pattern list")
			}
			for _, p := range strings.Split(value, ",") {
				if err := checkFromPattern(p); err != nil {
					return nil, err
				}
				ko.from = append(ko.from, p)
			}
		case "permitlisten":
			host, port, err := splitListen(value)
			if err != nil {
				return nil, err
			}
			ko.permitListen = append(ko.permitListen, host+":"+port)
		case "expiry-time":
			t, err := parseExpiry(value)
			if err != nil {
				return nil, err
			}
			ko.expires = t
		case "no-touch-required":
			ko.noTouch = true
		case "no-agent-forwarding", "agent-forwarding", "no-x11-forwarding", "x11-forwarding",
			"no-user-rc", "user-rc", "permitopen":
			// Nothing to restrict: the relay offers none of these.
		default:
			return nil, fmt.Errorf("option %s is not supported by pomdev relay (remove it, or the line)", name)
		}
	}
	return ko, nil
}

// checkFromPattern accepts an address, a CIDR block, or an address pattern
// with * and ?, each optionally negated with !.
func checkFromPattern(p string) error {
	p = strings.TrimPrefix(p, "!")
	if p == "" {
		return fmt.Errorf("from=: empty pattern")
	}
	if strings.Contains(p, "/") {
		if _, _, err := net.ParseCIDR(p); err != nil {
			return fmt.Errorf("from=: %q is not a CIDR block", p)
		}
		return nil
	}
	if strings.ContainsAny(p, `[]\`) {
		return fmt.Errorf("from=: %q: only * and ? are wildcards", p)
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("from=: %q: %v", p, err)
	}
	return nil
}

// allowsFrom reports whether ip matches the from= patterns as sshd matches
// them without DNS: a negated match refuses, else any match allows.
// Patterns naming hosts never match (the relay does not resolve names).
func (ko *keyOptions) allowsFrom(ip net.IP) bool {
	if ko == nil || ko.from == nil {
		return true
	}
	if ip == nil {
		return false
	}
	s := ip.String()
	if v4 := ip.To4(); v4 != nil {
		s = v4.String()
	}
	allowed := false
	for _, p := range ko.from {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		var hit bool
		if strings.Contains(p, "/") {
			_, n, _ := net.ParseCIDR(p)
			hit = n != nil && n.Contains(ip)
		} else {
			hit, _ = path.Match(p, s)
		}
		if hit && neg {
			return false
		}
		allowed = allowed || hit
	}
	return allowed
}

// splitListen reads permitlisten's "[host:]port", port a number or *.
func splitListen(v string) (host, port string, err error) {
	host, port = "localhost", v
	if i := strings.LastIndexByte(v, ':'); i >= 0 {
		host, port = v[:i], v[i+1:]
	}
	if host == "" {
		return "", "", fmt.Errorf("permitlisten=%q: empty host", v)
	}
	if port != "*" {
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return "", "", fmt.Errorf("permitlisten=%q: the port must be a number or *", v)
		}
	}
	return host, port, nil
}

// allowsListen reports whether a tcpip-forward for addr:port is allowed.
func (ko *keyOptions) allowsListen(addr string, port uint32) bool {
	if ko == nil {
		return true
	}
	if ko.noForwarding {
		return false
	}
	if ko.permitListen == nil {
		return true
	}
	p := strconv.Itoa(int(port))
	for _, l := range ko.permitListen {
		h, lp, _ := strings.Cut(l, ":")
		if (h == "*" || h == addr || h == "localhost" && isDynamicAddr(addr)) && (lp == "*" || lp == p) {
			return true
		}
	}
	return false
}

// parseExpiry reads expiry-time's YYYYMMDD[HHMM[SS]], in local time unless
// it ends in Z.
func parseExpiry(v string) (time.Time, error) {
	loc := time.Local
	if s, ok := strings.CutSuffix(v, "Z"); ok {
		v, loc = s, time.UTC
	}
	for _, layout := range []string{"20060102", "200601021504", "20060102150405"} {
		if len(v) == len(layout) {
			if t, err := time.ParseInLocation(layout, v, loc); err == nil {
				return t, nil
			}
		}
	}
	return time.Time{}, fmt.Errorf("expiry-time=%q is not YYYYMMDD[HHMM[SS]][Z]", v)
}
