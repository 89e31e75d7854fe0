package relay

import (
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pomdev/pomdev/internal/relay/oidcrp"
	relaystore "github.com/pomdev/pomdev/internal/relay/store"
	"golang.org/x/crypto/ssh"
)

// SigninName is the keyboard-interactive name of the sign-in request, as
// pom.run sends it.
const SigninName = "Please sign in to continue"

type pending struct {
	fp       string
	remote   string // the client's address
	created  time.Time
	expires  time.Time
	done     chan bool       // true approved, false denied
	identity oidcrp.Identity // who approved, when through the identity provider
}

// session is a key's sign-in: until when, and as whom (empty without an
// identity provider).
type session struct {
	expires    time.Time
	sub, email string
}

// signin implements pom.run's sign-in flow: a key that is not signed in
// gets a code and a link; approving the code binds the key's fingerprint
// for the session TTL (persisted, so reconnects and relay restarts skip
// the browser).
type signin struct {
	db           *sql.DB // table sessions
	dir          string
	token        string
	tokenCreated bool
	sessionTTL   time.Duration
	codeTTL      time.Duration
	now          func() time.Time
	rp           *oidcrp.RP // nil without an identity provider

	slots    signinSlots   // sign-ins waiting (signinwait.go)
	quit     chan struct{} // closed at shutdown: waiting sign-ins end
	quitOnce sync.Once

	mu       sync.Mutex
	pending  map[string]*pending
	sessions map[string]session // by fingerprint
	// ended remembers keys whose sign-in was just denied or expired, so
	// the client's automatic retries end at once instead of starting a new
	// wait: the user reconnects for a new link.
	ended map[string]endedSignin
}

type endedSignin struct {
	until  time.Time
	reason string
}

func newSignin(db *sql.DB, dir string, sessionTTL, codeTTL time.Duration, now func() time.Time) (*signin, error) {
	s := &signin{db: db, dir: dir, sessionTTL: sessionTTL, codeTTL: codeTTL, now: now,
		pending: map[string]*pending{}, sessions: map[string]session{}, ended: map[string]endedSignin{}, quit: make(chan struct{})}
	var err error
	if s.token, s.tokenCreated, err = loadOrCreateToken(dir, db); err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	rows, err := db.Query(`SELECT fp, expires, sub, email FROM sessions WHERE expires > $1`, now().Unix())
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var fp, sub, email string
		var exp int64
		if err := rows.Scan(&fp, &exp, &sub, &email); err != nil {
			rows.Close()
			return nil, fmt.Errorf("signed-in keys: %w", err)
		}
		s.sessions[fp] = session{expires: time.Unix(exp, 0), sub: sub, email: email}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("signed-in keys: %w", err)
	}
	// sessions.json of earlier versions: imported once, then renamed.
	legacy := filepath.Join(dir, sessionsFile)
	old := map[string]time.Time{}
	if err := readJSON(legacy, &old); err != nil {
		return nil, err
	}
	for fp, exp := range old {
		if exp.After(now()) && exp.After(s.sessions[fp].expires) {
			s.sessions[fp] = session{expires: exp}
			if err := s.saveSession(fp, s.sessions[fp]); err != nil {
				return nil, err
			}
		}
	}
	if _, err := os.Stat(legacy); err == nil {
		_ = os.Rename(legacy, legacy+".migrated")
	}
	return s, nil
}

// saveSession records a key's sign-in and forgets expired ones.
func (s *signin) saveSession(fp string, ss session) error {
	if _, err := s.db.Exec(`INSERT INTO sessions (fp, expires, sub, email) VALUES ($1, $2, $3, $4)
		ON CONFLICT (fp) DO UPDATE SET expires = excluded.expires, sub = excluded.sub, email = excluded.email`,
		fp, ss.expires.Unix(), relaystore.Text(ss.sub), relaystore.Text(ss.email)); err != nil {
		return err
	}
	_, err := s.db.Exec(`DELETE FROM sessions WHERE expires <= $1`, s.now().Unix())
	return err
}

func (s *signin) signedIn(fp string) bool {
	ss, ok := s.session(fp)
	return ok && s.now().Before(ss.expires)
}

// identity is who signed the key in through the identity provider
// (empty when an admin approved it, or without a provider).
func (s *signin) identity(fp string) (sub, email string) {
	ss, _ := s.session(fp)
	return ss.sub, ss.email
}

// session is fp's sign-in: from memory, or else from the database, where
// another relay of the store may have recorded it (the key signed in
// there, then came here); found ones are kept in memory.
func (s *signin) session(fp string) (session, bool) {
	s.mu.Lock()
	ss, ok := s.sessions[fp]
	s.mu.Unlock()
	if ok && s.now().Before(ss.expires) {
		return ss, true
	}
	var exp int64
	err := s.db.QueryRow(`SELECT expires, sub, email FROM sessions WHERE fp = $1 AND expires > $2`, fp, s.now().Unix()).Scan(&exp, &ss.sub, &ss.email)
	if err != nil {
		// No sign-in (or the store is unreachable: the key signs in
		// again, which needs the store too).
		return session{}, false
	}
	ss.expires = time.Unix(exp, 0)
	s.mu.Lock()
	if cur, ok := s.sessions[fp]; !ok || cur.expires.Before(ss.expires) {
		s.sessions[fp] = ss
	}
	s.mu.Unlock()
	return ss, true
}

// newCode returns a code such as KQ4M-7TXD (no 0/O/1/I).
func newCode() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:4]) + "-" + string(b[4:])
}

// run is the keyboard-interactive step: one request with zero prompts whose
// instruction is the sign-in link, then a wait for approval, denial or
// expiry.
// gone is closed when the client leaves, which ends the wait.
func (s *signin) run(r *Relay, fp, remote string, challenge ssh.KeyboardInteractiveChallenge, gone <-chan struct{}) error {
	s.mu.Lock()
	e, recent := s.ended[fp]
	if recent && !s.now().Before(e.until) {
		delete(s.ended, fp)
		recent = false
	}
	s.mu.Unlock()
	if recent {
		return errors.New(e.reason)
	}
	code := newCode()
	p := &pending{fp: fp, remote: remote, created: s.now(), expires: s.now().Add(s.codeTTL), done: make(chan bool, 1)}
	s.mu.Lock()
	s.pending[code] = p
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, code)
		s.mu.Unlock()
	}()
	link := r.BaseURL() + "/.pomdev/sign_in?user_code=" + url.QueryEscape(code)
	r.log.Info("sign-in requested", "fingerprint", fp, "remote", remote, "code", code, "link", link)
	if _, err := challenge(SigninName, link, nil, nil); err != nil {
		return err
	}
	timer := time.NewTimer(s.codeTTL)
	defer timer.Stop()
	fail := func(name, msg string) error {
		_, _ = challenge(name, msg, nil, nil)
		s.mu.Lock()
		s.ended[fp] = endedSignin{until: s.now().Add(5 * time.Second), reason: msg}
		s.mu.Unlock()
		return errors.New(msg)
	}
	select {
	case ok := <-p.done:
		if !ok {
			return fail("Sign-in denied", "The sign-in request "+code+" was denied.")
		}
	case <-timer.C:
		return fail("Sign-in expired", "The sign-in code "+code+" expired; connect again for a new link.")
	case <-gone:
		r.log.Info("sign-in abandoned: the client left", "fingerprint", fp, "code", code)
		return errors.New("the client left")
	case <-s.quit:
		return errors.New("the relay is shutting down")
	}
	s.mu.Lock()
	ss := session{expires: s.now().Add(s.sessionTTL), sub: p.identity.Sub, email: p.identity.Email}
	s.sessions[fp] = ss
	for k, x := range s.sessions {
		if !s.now().Before(x.expires) {
			delete(s.sessions, k)
		}
	}
	s.mu.Unlock()
	if err := s.saveSession(fp, ss); err != nil {
		r.log.Warn("cannot save sign-in sessions", "err", err)
	}
	r.log.Info("signed in", "fingerprint", fp, "code", code, "sub", ss.sub, "email", ss.email)
	return nil
}

// shutdown ends every waiting sign-in.
func (s *signin) shutdown() { s.quitOnce.Do(func() { close(s.quit) }) }

// decide approves or denies a pending code.
func (s *signin) decide(code string, approve bool) (fingerprint string, err error) {
	return s.decideAs(code, approve, oidcrp.Identity{})
}

// decideAs approves or denies a pending code as the person who signed in
// with the identity provider.
func (s *signin) decideAs(code string, approve bool, id oidcrp.Identity) (fingerprint string, err error) {
	code = strings.ToUpper(strings.TrimSpace(code))
	s.mu.Lock()
	p, ok := s.pending[code]
	if ok {
		delete(s.pending, code)
		p.identity = id
	}
	s.mu.Unlock()
	if !ok || !s.now().Before(p.expires) {
		return "", fmt.Errorf("no pending sign-in with code %s (it may have expired or been used)", code)
	}
	p.done <- approve
	return p.fp, nil
}

// lookup returns a copy of the pending sign-in with code, if any.
func (s *signin) lookup(code string) (pending, bool) {
	code = strings.ToUpper(strings.TrimSpace(code))
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pending[code]
	if !ok || !s.now().Before(p.expires) {
		return pending{}, false
	}
	return *p, true
}

// servePage is the sign-in link's page: what asks to sign in (the key's
// fingerprint, the client's address, when) and a form for the admin token.
// The token is asked for only where it cannot cross a network in clear:
// over TLS, behind a TLS terminator (--public-url-scheme https), or on a
// loopback front.
func (s *signin) servePage(w http.ResponseWriter, req *http.Request, tokenSafe bool) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	// URL-encoded forms only (ParseForm never reads multipart; the front's
	// apex guard has already bounded the body).
	if err := req.ParseForm(); err != nil {
		http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
		return
	}
	code := req.Form.Get("user_code")
	msg := ""
	status := http.StatusOK
	switch {
	case req.Method == http.MethodPost && !tokenSafe:
		status = http.StatusForbidden
		msg = "Refused: this relay's front is plain HTTP on a network address, so the admin token would cross the network in clear. Approve on the relay's machine instead: pomdev relay approve " + strings.ToUpper(strings.TrimSpace(code))
	case req.Method == http.MethodPost:
		if subtle.ConstantTimeCompare([]byte(req.PostForm.Get("token")), []byte(s.token)) != 1 {
			status = http.StatusForbidden
			msg = "Wrong admin token. It is in the relay's state directory (admin_token) and was printed when the relay first started."
		} else if fp, err := s.decide(code, req.PostForm.Get("action") != "deny"); err != nil {
			status = http.StatusNotFound
			msg = err.Error()
		} else if req.PostForm.Get("action") == "deny" {
			msg = "Denied. The key " + fp + " was not signed in."
		} else {
			msg = "Approved. The key " + fp + " is signed in; go back to your terminal."
		}
	}
	w.WriteHeader(status)
	var details string
	if p, ok := s.lookup(code); ok {
		now := s.now()
		details = fmt.Sprintf(`<table>
<tr><th align="left">Key</th><td><code>%s</code></td></tr>
<tr><th align="left">From</th><td><code>%s</code></td></tr>
<tr><th align="left">Requested</th><td>%s (%s ago)</td></tr>
<tr><th align="left">Expires</th><td>in %s</td></tr>
</table>
<p>Approve only if this is your key and your connection: compare the fingerprint with <code>ssh-keygen -lf ~/.ssh/id_ed25519.pub</code> (or the key you use).</p>
`, html.EscapeString(p.fp), html.EscapeString(p.remote), p.created.UTC().Format("2006-01-02 15:04:05 UTC"),
			now.Sub(p.created).Round(time.Second), p.expires.Sub(now).Round(time.Second))
	} else if code != "" && msg == "" {
		details = "<p>No pending sign-in has this code (it may have expired or been used). Connect again for a new link.</p>\n"
	}
	if _, ok := s.lookup(code); ok {
		details += oidcButton(s.rp, code)
	}
	form := `<form method="post" action="/.pomdev/sign_in">
<p>Code: <input name="user_code" value="` + html.EscapeString(code) + `"></p>
<p>Admin token: <input name="token" type="password" autocomplete="off"></p>
<p><button name="action" value="approve">Approve</button> <button name="action" value="deny">Deny</button></p>
</form>`
	if !tokenSafe {
		form = "<p>This relay's front is plain HTTP on a network address, so it does not ask for the admin token here. On the relay's machine, run:</p>\n<pre>pomdev relay approve " +
			html.EscapeString(strings.ToUpper(strings.TrimSpace(code))) + "</pre>"
	}
	fmt.Fprintf(w, `<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in — pomdev relay</title></head>
<body><h1>Sign in to the pomdev relay</h1>
<p>%s</p>
%s%s
</body></html>
`, html.EscapeString(msg), details, form)
}
