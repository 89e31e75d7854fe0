package relayrule

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	ok := Settings{Auth: "signin", HTTPAuth: "oidc", OIDCIssuer: "https://op.example", OIDCClientID: "relay", OwnerApproval: true}
	if p := Check(ok); len(p) != 0 {
		t.Fatalf("consistent settings: %v", p)
	}
	if p := Check(Settings{Auth: "open"}); len(p) != 0 {
		t.Fatalf("defaults: %v", p)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Settings)
		keys string
	}{
		{"keys without a file", func(s *Settings) { *s = Settings{Auth: "keys"} }, "relay.authorized_keys"},
		{"client without issuer", func(s *Settings) { s.OIDCIssuer = ""; s.HTTPAuth = ""; s.OwnerApproval = false }, "relay.oidc_issuer"},
		{"issuer without client", func(s *Settings) { s.OIDCClientID = "" }, "relay.oidc_client_id"},
		{"issuer without signin", func(s *Settings) { s.Auth = "keys"; s.AuthorizedKeys = "k" }, "relay.auth"},
		{"http oidc without issuer", func(s *Settings) { s.OIDCIssuer, s.OIDCClientID, s.OwnerApproval = "", "", false }, "relay.http_auth"},
		{"approval without oidc", func(s *Settings) { s.HTTPAuth = "owner" }, "relay.owner_approval"},
		{"store not postgres", func(s *Settings) { s.Store = "mysql://u:pw@h/db" }, "relay.store"},
		{"fleet address without a store", func(s *Settings) { s.FleetAddr = "10.0.0.5:7000" }, "relay.fleet_addr"},
	} {
		s := ok
		tc.mod(&s)
		var keys []string
		for _, p := range Check(s) {
			keys = append(keys, p.Key)
			if !strings.HasPrefix(p.Error(), p.Key+": ") || strings.Contains(p.Error(), "--") {
				t.Errorf("%s: %q names a flag or no key", tc.name, p.Error())
			}
		}
		if strings.Join(keys, " ") != tc.keys {
			t.Errorf("%s: problems with %v, want %s", tc.name, keys, tc.keys)
		}
	}
}
