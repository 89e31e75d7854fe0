package relaycmd

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/cli/factory/factorytest"
	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/pomdev/pomdev/internal/pgtest"
	"github.com/pomdev/pomdev/internal/relay"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
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
	if err != nil || !regexp.MustCompile(`routes +1\n(.*\n)*  secrets +5\n`).MatchString(out) || !strings.Contains(out, "Start the relay with --store") || strings.Contains(out, "s3cret-pw") {
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
	status := func() (string, error) { return fleetStatusString(t, pg) }
	st, err := status()
	if err != nil || !regexp.MustCompile(`(?m)^[0-9a-f]{16} +127\.0\.0\.1:\d+ .* live +0$`).MatchString(st) || strings.Contains(st, "s3cret-pw") {
		t.Fatalf("fleet status of a running relay: %v\n%s", err, st)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	banner := out.String()
	if !regexp.MustCompile(`Store +postgres://.*\(PostgreSQL; schema version \d+\)\n +Fleet +node [0-9a-f]{16}, internal address 127\.0\.0\.1:\d+`).MatchString(banner) || strings.Contains(banner, "s3cret-pw") {
		t.Fatalf("banner:\n%s", banner)
	}
	// The relay left the fleet when it stopped.
	if st, err := status(); exitcode.Code(err) != exitcode.Failure || !strings.Contains(st, "No relay is running") {
		t.Fatalf("fleet status after the relay stopped: %v\n%s", err, st)
	}
	if _, err := fleetStatusString(t, "mysql://x"); exitcode.Code(err) != exitcode.Usage {
		t.Fatalf("fleet status of a non-postgres store: %v", err)
	}
	if _, err := os.Stat(filepath.Join(rc.StateDir, relaystore.File)); err == nil {
		t.Fatal("a relay on a store made relay.db")
	}
}

// Two relays on one PostgreSQL store: a key signed in on one is signed in
// on the other (no second link), and both have one host key and one admin
// token, kept in the store, not in either state directory.
func TestSigninSharedByStore(t *testing.T) {
	rt.RequireOpenSSH(t)
	pg := pgtest.DB(t)
	o := rt.NewOrigin(t, "fleet")
	mod := func(c *relay.Config) { c.Auth = relay.AuthSignin; c.DefaultTarget = o.HostPort(); c.Store = pg }
	a, b := rt.StartRelay(t, mod), rt.StartRelay(t, mod)
	if a.Info.HostKeyFingerprint != b.Info.HostKeyFingerprint || a.Info.AdminToken == "" || a.Info.AdminToken != b.Info.AdminToken {
		t.Fatalf("host keys %s, %s; admin tokens %q, %q", a.Info.HostKeyFingerprint, b.Info.HostKeyFingerprint, a.Info.AdminToken, b.Info.AdminToken)
	}
	if !a.Info.HostKeyCreated || b.Info.HostKeyCreated {
		t.Fatalf("host key created by A %v, by B %v: want A only", a.Info.HostKeyCreated, b.Info.HostKeyCreated)
	}
	for _, h := range []*rt.Harness{a, b} {
		if _, err := os.Stat(filepath.Join(h.StateDir, "ssh_host_ed25519_key")); err == nil {
			t.Fatal("a relay on a store wrote its host key to its state directory")
		}
	}
	key, _ := rt.WriteKey(t)
	args := []string{"-o", "LogLevel=INFO", "-o", "KbdInteractiveAuthentication=yes",
		"-o", "PreferredAuthentications=publickey,keyboard-interactive", "-T", "-R", "0"}
	p := a.RunSSH(key, args...)
	approve(t, a.StateDir, waitCode(t, p), false)
	url := strings.TrimPrefix(p.WaitLine(t, "Remote: "), "Remote: ")
	p.Kill()
	a.WaitRoute(0)
	q := b.RunSSH(key, args...)
	if got := strings.TrimPrefix(q.WaitLine(t, "Remote: "), "Remote: "); strings.TrimSuffix(got, portOfURL(got)) != strings.TrimSuffix(url, portOfURL(url)) {
		t.Fatalf("on relay B the route is %s, on A it was %s", got, url)
	}
	if codeRe.MatchString(q.Stderr()) {
		t.Fatalf("relay B asked the signed-in key to sign in again: %s", q.Stderr())
	}
}

// portOfURL is the ":port" of a printed URL ("" without one).
func portOfURL(u string) string {
	if i := strings.LastIndex(u, ":"); i > len("https:") {
		return u[i:]
	}
	return ""
}

func fleetStatusString(t *testing.T, store string) (string, error) {
	ios, _, out, _ := iostreams.Test()
	err := FleetStatusRun(context.Background(), &FleetStatusOptions{IO: ios, Store: store})
	return out.String(), err
}

// pomdev relay audit --store reads the fleet's trail from the store's
// table, in order, with --route and --decisions as from the files, and
// escapes what it prints.
func TestAuditFromStore(t *testing.T) {
	pg := pgtest.DB(t)
	db, err := relaystore.Open("", pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i, l := range []struct{ kind, route, line string }{
		{"request", "a", `{"time":"2026-12-08T10:00:00Z","kind":"request","route":"a","client":"c1","method":"tools/call","tool":"echo","decision":"allow","status":200}`},
		{"decision", "b", `{"time":"2026-12-08T10:00:01Z","kind":"decision","route":"b","decision":"approved","reason":"evil\u001b[2Jname"}`},
		{"refused", "a", `{"time":"2026-12-08T10:00:02Z","kind":"refused","route":"a","decision":"deny","status":401}`},
	} {
		if _, err := db.Exec(`INSERT INTO audit (at, kind, route, line) VALUES ($1, $2, $3, $4)`, i, l.kind, l.route, l.line); err != nil {
			t.Fatal(err)
		}
	}
	run := func(o AuditOptions) string {
		t.Helper()
		ios, _, out, _ := iostreams.Test()
		o.IO, o.Store = ios, pg
		if err := AuditRun(&o); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	all := run(AuditOptions{})
	if strings.Count(all, "\n") != 3 || !strings.Contains(all, "request a allow client=c1 tools/call echo 200") || strings.Contains(all, "\x1b") ||
		strings.Index(all, "request a") > strings.Index(all, "decision b") || strings.Index(all, "decision b") > strings.Index(all, "refused a") {
		t.Fatalf("the store's trail:\n%s", all)
	}
	if got := run(AuditOptions{Route: "a"}); strings.Count(got, "\n") != 2 || strings.Contains(got, "decision b") {
		t.Fatalf("--route a:\n%s", got)
	}
	if got := run(AuditOptions{Decisions: true}); strings.Count(got, "\n") != 1 || !strings.Contains(got, "decision b") {
		t.Fatalf("--decisions:\n%s", got)
	}
}
