package config

import (
	"errors"
	"fmt"
	"github.com/pomdev/pomdev/internal/publicpath"
	"github.com/pomdev/pomdev/internal/toolrule"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/pomdev/pomdev/internal/loopback"
	"github.com/pomdev/pomdev/internal/relayrule"
)

// Error is a configuration problem. It names where the value came from (a
// file and line, an environment variable or a flag), the key, and what to
// do. Config errors are usage errors (exit code 2).
type Error struct {
	File   string
	Line   int
	Source Source
	Key    string
	Msg    string
	Hint   string
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "":
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
	case e.Source.Kind == FromDefault || e.Source.Kind == "":
		b.WriteString("configuration")
	case e.Source.Kind == FromProject || e.Source.Kind == FromUser:
		b.WriteString(e.Source.Where)
	default:
		b.WriteString(e.Source.String())
	}
	if e.Key != "" {
		b.WriteString(": " + e.Key)
	}
	b.WriteString(": " + e.Msg)
	if e.Hint != "" {
		b.WriteString(" (" + e.Hint + ")")
	}
	return b.String()
}

var processName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

func validate(l *Loaded) error {
	var errs []error
	// An error names the file and line its key came from, when it came
	// from a file.
	at := func(src Source, key string) *Error {
		e := &Error{Source: src, Key: key}
		if src.Kind == FromProject || src.Kind == FromUser {
			e.File, e.Line = src.Where, l.line(key)
		}
		return e
	}
	bad := func(key, msg, hint string) {
		e := at(l.Source(key), key)
		e.Msg, e.Hint = msg, hint
		errs = append(errs, e)
	}
	oneOf := func(key, val string, allowed []string) {
		if !slices.Contains(allowed, val) {
			bad(key, fmt.Sprintf("%q is not valid", val), "allowed: "+strings.Join(allowed, ", "))
		}
	}
	c := &l.Config
	oneOf("log.level", c.Log.Level, LogLevels)
	if len(c.Tunnel.PublicPaths) > 0 {
		if _, err := publicpath.Parse(strings.Join(c.Tunnel.PublicPaths, ",")); err != nil {
			e := at(l.Source("tunnel.public_paths"), "tunnel.public_paths")
			if e.Line == 0 {
				e.Line = l.line("tunnel.public_paths")
			}
			e.Msg, e.Hint = err.Error(), "globs under one directory of the app, such as /widgets/**"
			errs = append(errs, e)
		}
	}
	for _, rules := range []struct {
		key   string
		globs []string
	}{{"tunnel.tools.allow", c.Tunnel.Tools.Allow}, {"tunnel.tools.deny", c.Tunnel.Tools.Deny}} {
		for i, g := range rules.globs {
			err := toolrule.Check(g)
			if err == nil && strings.Contains(g, ",") {
				err = errors.New("one name per list item")
			}
			if err != nil {
				key := fmt.Sprintf("%s[%d]", rules.key, i)
				e := at(l.Source("tunnel.tools"), key)
				if e.Line == 0 {
					e.Line = l.line(rules.key)
				}
				e.Msg, e.Hint = fmt.Sprintf("%q: %v", g, err), "a tool name, or a prefix ending in * (delete_*)"
				errs = append(errs, e)
			}
		}
	}
	oneOf("log.format", c.Log.Format, LogFormats)

	// A process error names the key with its index; its source is the file
	// that set processes.
	procErr := func(i int, key, msg, hint string) {
		e := at(l.Source("processes"), fmt.Sprintf("processes[%d].%s", i, key))
		if e.Line == 0 {
			e.Line = l.line(fmt.Sprintf("processes[%d]", i))
		}
		e.Msg, e.Hint = msg, hint
		errs = append(errs, e)
	}
	seen := map[string]int{}
	for i := range c.Processes {
		p := &c.Processes[i]
		switch {
		case p.Name == "":
			procErr(i, "name", "missing", "every process needs a name such as server or widgets")
		case !processName.MatchString(p.Name):
			procErr(i, "name", fmt.Sprintf("%q is not valid", p.Name), "use lowercase letters, digits, - and _ (at most 32)")
		default:
			if j, dup := seen[p.Name]; dup {
				procErr(i, "name", fmt.Sprintf("%q is already used by processes[%d]", p.Name, j), "names must be unique")
			}
			seen[p.Name] = i
		}
		if strings.TrimSpace(p.Command) == "" {
			procErr(i, "command", "missing", "the shell command to run, for example: npm run dev:server")
		}
		if p.Port < 0 || p.Port > 65535 {
			procErr(i, "port", fmt.Sprintf("%d is out of range", p.Port), "use 1-65535, or leave it out")
		}
		if p.Health != "" {
			if err := checkHTTPURL(p.Health); err != nil {
				procErr(i, "health", err.Error(), "for example: http://127.0.0.1:8080/health")
			}
		}
		if p.Restart == "" {
			p.Restart = DefaultRestart
		} else if !slices.Contains(RestartPolices, p.Restart) {
			procErr(i, "restart", fmt.Sprintf("%q is not valid", p.Restart), "allowed: "+strings.Join(RestartPolices, ", "))
		}
		if p.ReadyTimeout == 0 {
			p.ReadyTimeout = DefaultReadyTimeout
		} else if p.ReadyTimeout < 0 {
			procErr(i, "ready_timeout", "must be positive", "for example: 60s")
		}
		for _, g := range append(slices.Clone(p.Watch), p.Ignore...) {
			if !doublestar.ValidatePattern(g) {
				procErr(i, "watch", fmt.Sprintf("glob %q is malformed", g), "globs use *, **, ?, [abc] and {ts,tsx}; brackets and braces must be closed")
			}
		}
		for key, env := range map[string]map[string]string{"env": p.Env, "inline.env": p.Inline.Env} {
			for k := range env {
				if k == "" || strings.ContainsAny(k, "=\x00") {
					procErr(i, key, fmt.Sprintf("%q is not a valid variable name", k), "names cannot be empty or contain '='")
				}
			}
		}
		if p.Inline.Port < 0 || p.Inline.Port > 65535 {
			procErr(i, "inline.port", fmt.Sprintf("%d is out of range", p.Inline.Port), "use 1-65535, or leave it out")
		}
		if p.Inline.Health != "" {
			if err := checkHTTPURL(p.Inline.Health); err != nil {
				procErr(i, "inline.health", err.Error(), "for example: http://127.0.0.1:8080/health")
			}
		}
		if p.Inline.Command == "" && (p.Inline.Port != 0 || p.Inline.Health != "") {
			procErr(i, "inline", "port and health need a command", "set inline.command, or drop inline.port and inline.health")
		}
	}

	if c.Tunnel.Relay == "" {
		bad("tunnel.relay", "empty", "use pom.run, [user@]host[:port] or local")
	} else if _, err := ParseRelay(c.Tunnel.Relay); err != nil {
		bad("tunnel.relay", err.Error(), "use pom.run, [user@]host[:port] or local")
	}
	if err := checkHostPort(c.Tunnel.Target); err != nil {
		bad("tunnel.target", err.Error(), "for example: localhost:8080")
	} else {
		errs = append(errs, portsAgree(l)...)
	}
	if c.Tunnel.RemoteURL != "" {
		if err := checkHTTPURL(c.Tunnel.RemoteURL); err != nil {
			bad("tunnel.remote_url", err.Error(), "for example: https://my-app.pom.run")
		}
	}
	if c.Inspect.URL != "" {
		if err := checkHTTPURL(c.Inspect.URL); err != nil {
			bad("inspect.url", err.Error(), "for example: http://127.0.0.1:8080/mcp")
		}
	}
	for k := range c.Inspect.Headers {
		if !validHeaderName(k) {
			bad("inspect.headers", fmt.Sprintf("%q is not a valid header name", k), "letters, digits and - only")
		}
	}
	if c.Inspect.Timeout <= 0 {
		bad("inspect.timeout", "must be positive", "for example: 30s")
	}

	rl := &c.Relay
	if rl.FleetAddr != "" {
		if _, _, err := net.SplitHostPort(rl.FleetAddr); err != nil {
			bad("relay.fleet_addr", fmt.Sprintf("%q is not host:port", rl.FleetAddr), "for example: 10.0.0.5:7000, or 10.0.0.5:0 for a free port")
		}
	}
	for key, addr := range map[string]string{"relay.ssh_addr": rl.SSHAddr, "relay.http_addr": rl.HTTPAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(key, fmt.Sprintf("%q is not host:port", addr), "for example: 127.0.0.1:2222, or :22 for every interface")
		}
	}
	if rl.Domain == "" || strings.ContainsAny(rl.Domain, "/: ") {
		bad("relay.domain", fmt.Sprintf("%q is not a domain name", rl.Domain), "for example: localhost or tunnels.example.com")
	}
	oneOf("relay.public_url_scheme", rl.PublicURLScheme, URLSchemes)
	oneOf("relay.auth", rl.Auth, RelayAuths)
	if rl.PublicPort < 0 || rl.PublicPort > 65535 {
		bad("relay.public_port", fmt.Sprintf("%d is out of range", rl.PublicPort), "use 1-65535, or 0 for the listener's port")
	}
	for _, p := range relayrule.Check(relayrule.Settings{Auth: rl.Auth, AuthorizedKeys: rl.AuthorizedKeys, HTTPAuth: rl.HTTPAuth,
		OIDCIssuer: rl.OIDCIssuer, OIDCClientID: rl.OIDCClientID, OIDCClientSecretFile: rl.OIDCClientSecretFile, OwnerApproval: rl.OwnerApproval, Store: rl.Store, FleetAddr: rl.FleetAddr}) {
		bad(p.Key, p.Msg, p.Hint)
	}
	if err := checkHostPort(rl.DefaultTarget); err != nil {
		bad("relay.default_target", err.Error(), "for example: localhost:8080")
	}
	if (rl.TLSCert == "") != (rl.TLSKey == "") {
		bad("relay.tls_cert", "tls_cert and tls_key go together", "give both, or neither for plain HTTP")
	}
	if rl.SessionTTL <= 0 {
		bad("relay.session_ttl", "must be positive", "for example: 24h")
	}
	if rl.KeepaliveInterval <= 0 {
		bad("relay.keepalive_interval", "must be positive", "for example: 15s")
	}
	if rl.MaxTunnelsPerKey <= 0 {
		bad("relay.max_tunnels_per_key", "must be positive", "for example: 8")
	}
	if rl.RouteNameTTL <= 0 {
		bad("relay.route_name_ttl", "must be positive", "for example: 2160h (90 days)")
	}
	oneOf("relay.http_auth", rl.HTTPAuth, HTTPAuths)
	if _, err := ParseTrustedProxies(rl.TrustedProxies); err != nil {
		bad("relay.trusted_proxies", err.Error(), "for example: 10.0.0.0/8,192.0.2.7")
	}
	if rl.GrantTTL <= 0 {
		bad("relay.grant_ttl", "must be positive", "for example: 720h (30 days)")
	}
	return errors.Join(errs...)
}

// portsAgree checks that a process's port, its env PORT and its health
// URL name one port, and that tunnel.target is the port of a process when
// processes declare ports: changing one and not the others makes up wait
// for a port nobody serves.
func portsAgree(l *Loaded) []error {
	c := &l.Config
	var errs []error
	ports := map[int]string{}
	for i, p := range c.Processes {
		if p.Port == 0 {
			continue
		}
		key := fmt.Sprintf("processes[%d]", i)
		ports[p.Port] = p.Name
		want := strconv.Itoa(p.Port)
		if v, ok := p.Env["PORT"]; ok && v != want {
			errs = append(errs, &Error{Source: l.Source("processes"), Key: key + ".env.PORT",
				Msg: fmt.Sprintf("%q but %s.port is %d", v, key, p.Port), Hint: "the port the process listens on, its env PORT, its health URL and tunnel.target must agree"})
		}
		if p.Health != "" {
			if u, err := url.Parse(p.Health); err == nil && loopback.IsLoopback(u.Hostname()) && u.Port() != "" && u.Port() != want {
				errs = append(errs, &Error{Source: l.Source("processes"), Key: key + ".health",
					Msg: fmt.Sprintf("%s is on port %s but %s.port is %d", p.Health, u.Port(), key, p.Port), Hint: "the port the process listens on, its env PORT, its health URL and tunnel.target must agree"})
			}
		}
	}
	host, port, _ := net.SplitHostPort(c.Tunnel.Target)
	if n, _ := strconv.Atoi(port); len(ports) > 0 && loopback.IsLoopback(host) && ports[n] == "" {
		var list []string
		for p, name := range ports {
			list = append(list, fmt.Sprintf("%s on %d", name, p))
		}
		slices.Sort(list)
		errs = append(errs, &Error{Source: l.Source("tunnel.target"), Key: "tunnel.target",
			Msg: fmt.Sprintf("%s is not the port of any process (%s)", c.Tunnel.Target, strings.Join(list, ", ")), Hint: "set tunnel.target to the server's port, for example localhost:" + strconv.Itoa(firstPort(ports))})
	}
	return errs
}

func firstPort(ports map[int]string) int {
	best := 0
	for p, name := range ports {
		if name == "server" || best == 0 {
			best = p
		}
	}
	return best
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q has an invalid port", s)
	}
	return nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return http.CanonicalHeaderKey(s) != ""
}

// RelayAddr is a parsed tunnel.relay value.
type RelayAddr struct {
	// Local is true for "local": the relay embedded in the process.
	Local bool
	User  string
	Host  string
	Port  int
}

// Addr returns host:port for dialing.
func (r RelayAddr) Addr() string { return net.JoinHostPort(r.Host, strconv.Itoa(r.Port)) }

// DefaultRelayPort is the SSH port used when tunnel.relay has none.
const DefaultRelayPort = 22

// ParseRelay parses "local" or [user@]host[:port] (IPv6 in brackets).
func ParseRelay(s string) (RelayAddr, error) {
	if s == "local" {
		return RelayAddr{Local: true}, nil
	}
	var r RelayAddr
	rest := s
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		r.User, rest = rest[:i], rest[i+1:]
		if r.User == "" {
			return RelayAddr{}, fmt.Errorf("%q has an empty user before @", s)
		}
	}
	r.Port = DefaultRelayPort
	host := rest
	if h, p, err := net.SplitHostPort(rest); err == nil {
		n, perr := strconv.Atoi(p)
		if perr != nil || n < 1 || n > 65535 {
			return RelayAddr{}, fmt.Errorf("%q has an invalid port", s)
		}
		host, r.Port = h, n
	} else if strings.Contains(rest, ":") && !strings.HasPrefix(rest, "[") {
		return RelayAddr{}, fmt.Errorf("%q is not [user@]host[:port]", s)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" || strings.ContainsAny(host, " /\\@[]") {
		return RelayAddr{}, fmt.Errorf("%q has no valid host", s)
	}
	r.Host = host
	return r, nil
}

// ParseTrustedProxies reads relay.trusted_proxies: IPs and CIDRs,
// comma-separated ("" none).
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
