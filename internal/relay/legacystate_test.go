package relay_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/pgtest"
	"github.com/pomdev/pomdev/internal/relay"
	"github.com/pomdev/pomdev/internal/relay/store"
)

// TestLegacyStateMigrates: a relay started on a state directory that the
// relay of main before relay.db had a schema version wrote
// (testdata/legacy-state: one route name, one OAuth client with its grant,
// a refresh token, the audit files; written by that relay's own test
// harness with its GrantTTL at 50 years and its public port at 8443)
// migrates it to store.Version and keeps everything: the tunnel's key gets
// its old name back, the old refresh token buys an access token that
// passes the gate, the grant is listed and the old audit lines stay.
func TestLegacyStateMigrates(t *testing.T) { legacyState(t, "") }

// TestLegacyStateToPostgres: the same state directory, its relay.db
// imported into a new PostgreSQL store as pomdev relay store import does
// (store.Copy), serves a relay started with that store just the same.
func TestLegacyStateToPostgres(t *testing.T) { legacyState(t, pgtest.DB(t)) }

func legacyState(t *testing.T, pg string) {
	src := filepath.Join("testdata", "legacy-state")
	var fx struct {
		URL      string `json:"url"`
		ClientID string `json:"client_id"`
		Refresh  string `json:"refresh"`
	}
	b, err := os.ReadFile(filepath.Join(src, "fixture.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	key := filepath.Join(t.TempDir(), "id_ed25519")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(state, e.Name())
		switch e.Name() {
		case "fixture.json":
			continue
		case "fixture_key":
			dst = key
		}
		if err := os.WriteFile(dst, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if v := schemaVersion(t, filepath.Join(state, "relay.db")); v != 0 {
		t.Fatalf("the fixture's relay.db has user_version %d, want 0 (a relay.db from before versions)", v)
	}
	oldAudit, _ := os.ReadFile(filepath.Join(state, "audit.jsonl"))
	if pg != "" {
		lite, err := store.Open(state, "")
		if err != nil {
			t.Fatal(err)
		}
		dst, err := store.Open("", pg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Copy(context.Background(), dst, lite, state); err != nil {
			t.Fatal(err)
		}
		lite.Close()
		dst.Close()
		// The relay must not fall back on relay.db.
		if err := os.Remove(filepath.Join(state, store.File)); err != nil {
			t.Fatal(err)
		}
	}

	g := newGated(t, func(c *relay.Config) {
		c.StateDir = state
		c.Store = pg
		c.PublicPort = 8443
		c.GrantTTL = 50 * 365 * 24 * time.Hour
	}, true)
	if pg != "" {
		if _, err := os.Stat(filepath.Join(state, store.File)); err == nil {
			t.Fatal("a relay with a store made a relay.db")
		}
	} else if v := schemaVersion(t, filepath.Join(state, "relay.db")); v != store.Version {
		t.Fatalf("after the relay started, user_version is %d, want %d", v, store.Version)
	}
	g.key = key
	g.ssh = g.h.RunSSH(key, "-T", "-o", "SetEnv=POMDEV_TARGET="+g.target(), "-R", "0")
	g.ssh.WaitLine(t, "Remote: ")
	g.url = g.h.WaitURL()
	if g.url != fx.URL {
		t.Errorf("the key's route is %s, want its old name %s", g.url, fx.URL)
	}

	status, tk := g.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {fx.Refresh},
		"client_id": {fx.ClientID}, "resource": {fx.URL + "/mcp"}})
	if status != http.StatusOK || tk.Access == "" {
		t.Fatalf("refresh with the old token: %d %+v", status, tk)
	}
	if resp := g.post(t, g.url+"/mcp", tk.Access); resp.StatusCode != http.StatusOK {
		t.Fatalf("tools/list with the new access token: %d", resp.StatusCode)
	}
	if resp := g.post(t, g.url+"/mcp", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tools/list without a token: %d, want 401 (the gate is on)", resp.StatusCode)
	}
	grants, err := g.h.R.Access().Grants(context.Background(), "")
	if err != nil || len(grants) != 1 || grants[0].ClientID != fx.ClientID {
		t.Fatalf("grants after the migration: %+v %v", grants, err)
	}
	audit, _ := os.ReadFile(filepath.Join(state, "audit.jsonl"))
	if len(oldAudit) == 0 || !strings.HasPrefix(string(audit), string(oldAudit)) {
		t.Errorf("the old audit lines are gone:\n%s", audit)
	}
}

func schemaVersion(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, err := store.SchemaVersion(db)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
