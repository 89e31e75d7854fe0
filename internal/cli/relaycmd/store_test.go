package relaycmd

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/cli/factory/factorytest"
	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/pgtest"
	relaystore "github.com/pomdev/pomdev/internal/relay/store"
)

// pomdev relay store import copies a relay's relay.db into a new
// PostgreSQL store once; it refuses a store that holds rows, a running
// relay's state directory, a directory without relay.db and a URL that is
// not PostgreSQL's, each with what to do; the password never shows.
func TestStoreImport(t *testing.T) {
	rc := config.Defaults().Relay
	rc.SSHAddr, rc.HTTPAddr, rc.StateDir, rc.HTTPAuth = "127.0.0.1:0", "127.0.0.1:0", t.TempDir(), "owner"
	run := func(args ...string) (string, error) {
		f, s := factorytest.New(t, "", nil)
		err := factorytest.Execute(f, NewCmdRelay(f, nil), append([]string{"store", "import"}, args...)...)
		return s.Out.String(), err
	}
	pg := pgtest.DB(t)
	withPassword := strings.Replace(pg, "user=postgres", "user=postgres&password=s3cret-pw", 1)

	if _, err := run("--state-dir", rc.StateDir, "--store", pg); exitcode.Code(err) != exitcode.Usage || !strings.Contains(err.Error(), "relay.db") {
		t.Fatalf("no relay.db: %v", err)
	}
	_, stop := runRelay(t, rc)
	if _, err := run("--state-dir", rc.StateDir, "--store", pg); err == nil || !strings.Contains(err.Error(), "a relay is running") {
		t.Fatalf("a running relay: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := run("--state-dir", rc.StateDir, "--store", "mysql://u:s3cret-pw@h/db"); exitcode.Code(err) != exitcode.Usage || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("not postgres: %v", err)
	}
	db, err := relaystore.Open(rc.StateDir, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO routes (name, fp, used) VALUES ('calm-otter-1', 'SHA256:k', 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, err := run("--state-dir", rc.StateDir, "--store", withPassword)
	if err != nil || !regexp.MustCompile(`routes +1\n`).MatchString(out) || !strings.Contains(out, "Start the relay with --store") || strings.Contains(out, "s3cret-pw") {
		t.Fatalf("import: %q %v", out, err)
	}
	_, err = run("--state-dir", rc.StateDir, "--store", withPassword)
	if exitcode.Code(err) != exitcode.Failure || !strings.Contains(err.Error(), "already holds 1 routes") || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("a second import: %v", err)
	}
	// A relay on the store has the imported name.
	dst, err := relaystore.Open("", pg)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	var fp string
	if err := dst.QueryRow(`SELECT fp FROM routes WHERE name = 'calm-otter-1'`).Scan(&fp); err != nil || fp != "SHA256:k" {
		t.Fatalf("the imported route: %q %v", fp, err)
	}
}

// pomdev relay --store runs on PostgreSQL and says so, without the
// password; relay.db is not made.
func TestRelayOnStore(t *testing.T) {
	rc := config.Defaults().Relay
	pg := strings.Replace(pgtest.DB(t), "user=postgres", "user=postgres&password=s3cret-pw", 1)
	rc.SSHAddr, rc.HTTPAddr, rc.StateDir, rc.Store = "127.0.0.1:0", "127.0.0.1:0", t.TempDir(), pg
	out, stop := runRelay(t, rc)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	banner := out.String()
	if !regexp.MustCompile(`Store +postgres://.*\(PostgreSQL; schema version \d+\)`).MatchString(banner) || strings.Contains(banner, "s3cret-pw") {
		t.Fatalf("banner:\n%s", banner)
	}
	if _, err := os.Stat(filepath.Join(rc.StateDir, relaystore.File)); err == nil {
		t.Fatal("a relay on a store made relay.db")
	}
}
