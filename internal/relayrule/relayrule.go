// Package relayrule is the relay's defaults and cross-field setting
// rules, written once: pomdev.yaml's validation (internal/config, which says where each
// value came from: a file's line, an environment variable, a flag) and the
// relay itself (relay.New, for programs that embed it) both check with
// them, and both name the settings by their configuration keys.
package relayrule

import (
	"net/url"
	"time"
)

// Settings are the relay settings the rules read.
type Settings struct {
	Auth                 string // relay.auth: open, keys, signin
	AuthorizedKeys       string // relay.authorized_keys
	HTTPAuth             string // relay.http_auth: owner, oidc, none ("" for the default)
	OIDCIssuer           string // relay.oidc_issuer
	OIDCClientID         string // relay.oidc_client_id
	OIDCClientSecretFile string // relay.oidc_client_secret_file
	OwnerApproval        bool   // relay.owner_approval
	Store                string // relay.store: "" (relay.db) or postgres://…
	FleetAddr            string // relay.fleet_addr
}

// IsPostgresURL reports whether s names a PostgreSQL database
// (postgres:// or postgresql://), the one store a relay takes besides its
// own relay.db.
func IsPostgresURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql")
}

// Problem is a rule a setting breaks: Key is the setting to change.
type Problem struct {
	Key, Msg, Hint string
}

func (p Problem) Error() string {
	s := p.Key + ": " + p.Msg
	if p.Hint != "" {
		s += " (" + p.Hint + ")"
	}
	return s
}

// Check returns the rules s breaks, none when it is consistent.
func Check(s Settings) []Problem {
	var out []Problem
	bad := func(key, msg, hint string) { out = append(out, Problem{key, msg, hint}) }
	if s.Auth == "keys" && s.AuthorizedKeys == "" {
		bad("relay.authorized_keys", "missing", "keys mode needs an OpenSSH authorized_keys file")
	}
	if s.OIDCIssuer == "" {
		if s.OIDCClientID != "" || s.OIDCClientSecretFile != "" {
			bad("relay.oidc_issuer", "missing", "relay.oidc_client_id and relay.oidc_client_secret_file are for an identity provider; name it")
		}
	} else {
		if s.OIDCClientID == "" {
			bad("relay.oidc_client_id", "missing", "relay.oidc_issuer needs the relay's client ID at the provider")
		}
		if s.Auth != "signin" {
			bad("relay.auth", "an identity provider (relay.oidc_issuer) binds keys to people when they sign in", "use signin")
		}
	}
	if s.HTTPAuth == "oidc" && s.OIDCIssuer == "" {
		bad("relay.http_auth", "oidc signs apps' users in with an identity provider", "give relay.oidc_issuer and relay.oidc_client_id, with relay.auth signin")
	}
	if s.Store != "" && !IsPostgresURL(s.Store) {
		// The value is not repeated: it may hold a password.
		bad("relay.store", "is not a postgres:// URL", "give postgres://user@host/db (the password in PGPASSWORD or ~/.pgpass), or leave it unset for relay.db in the state directory")
	}
	if s.FleetAddr != "" && s.Store == "" {
		bad("relay.fleet_addr", "is where a relay of a fleet takes other relays' requests", "give relay.store, the PostgreSQL store the fleet shares, or leave it unset")
	}
	if s.OwnerApproval && s.HTTPAuth != "oidc" {
		bad("relay.owner_approval", "adds the owner's approval to relay.http_auth oidc", "with owner, the owner's approval is the only check already")
	}
	return out
}

// The relay's defaults, by key, for pomdev.yaml's defaults and for a relay
// embedded with a zero Config alike.
const (
	DefaultDomain            = "localhost"         // relay.domain
	DefaultTarget            = "localhost:8080"    // relay.default_target
	DefaultSessionTTL        = 24 * time.Hour      // relay.session_ttl
	DefaultKeepaliveInterval = 15 * time.Second    // relay.keepalive_interval
	DefaultMaxTunnelsPerKey  = 8                   // relay.max_tunnels_per_key
	DefaultRouteNameTTL      = 90 * 24 * time.Hour // relay.route_name_ttl
	DefaultGrantTTL          = 30 * 24 * time.Hour // relay.grant_ttl
)
