package preview

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Browsers are the names a headless browser is looked up by on PATH.
var Browsers = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"}

// NoBrowserError is a --check with no Chromium to run it in.
type NoBrowserError struct{ Tried []string }

func (e *NoBrowserError) Error() string {
	return "no headless browser found on PATH (tried " + strings.Join(e.Tried, ", ") + ")"
}

// FindBrowser returns path if set, else the first of Browsers on PATH.
func FindBrowser(path string) (string, error) {
	if path != "" {
		p, err := exec.LookPath(path)
		if err != nil {
			return "", fmt.Errorf("--browser %s: %w", path, err)
		}
		return p, nil
	}
	for _, b := range Browsers {
		if p, err := exec.LookPath(b); err == nil {
			return p, nil
		}
	}
	return "", &NoBrowserError{Tried: Browsers}
}

// CheckOptions configure a headless render.
type CheckOptions struct {
	Browser string // a path, or "" to look one up
	Tool    string
	Args    json.RawMessage
	Profile string
	Theme   string // light (default) or dark
	Locale  string
	// Width and Height are the browser window (default 1024×768); the
	// widget gets the whole page.
	Width, Height int
	// Screenshot, when set, is where the page is saved as PNG.
	Screenshot string
	// Wait bounds how long the page waits for the widget to render
	// anything, on the browser's virtual clock (default 5 s).
	Wait time.Duration
	// Timeout bounds the whole run in real time (default 60 s).
	Timeout time.Duration
}

// CheckResult is what a headless render saw.
type CheckResult struct {
	// Done is the page's final report; nil if it never finished.
	Done *Report
	// Problems are the reports that fail the check, in order.
	Problems []Report
	Reports  []Report
}

// OK reports whether the widget rendered with no problem.
func (r *CheckResult) OK() bool { return r.Done != nil && r.Done.Mounted && len(r.Problems) == 0 }

// Check renders one tool call's widget in headless Chromium and collects
// what the page reports. It returns an error only when the render could
// not run (no browser, a browser that failed); a widget's problems are in
// the result.
func (s *Server) Check(ctx context.Context, o CheckOptions) (*CheckResult, error) {
	browser, err := FindBrowser(o.Browser)
	if err != nil {
		return nil, err
	}
	if _, err := LookupProfile(o.Profile); err != nil {
		return nil, err
	}
	if o.Width <= 0 {
		o.Width = 1024
	}
	if o.Height <= 0 {
		o.Height = 768
	}
	if o.Wait <= 0 {
		o.Wait = 5 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Theme == "" {
		o.Theme = "light"
	}
	q := url.Values{"check": {"1"}, "tool": {o.Tool}, "args": {string(o.Args)}, "theme": {o.Theme},
		"width": {strconv.Itoa(o.Width)}, "wait": {strconv.FormatInt(o.Wait.Milliseconds(), 10)}}
	if o.Profile != "" {
		q.Set("profile", o.Profile)
	}
	if o.Locale != "" {
		q.Set("locale", o.Locale)
	}
	page := s.URL() + "?" + q.Encode()

	removeStaleProfiles()
	profileDir, err := os.MkdirTemp("", "pomdev-preview-")
	if err != nil {
		return nil, err
	}
	defer removeProfile(profileDir)
	args := []string{"--headless", "--disable-gpu", "--hide-scrollbars", "--mute-audio", "--no-first-run",
		"--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
		"--user-data-dir=" + profileDir, fmt.Sprintf("--window-size=%d,%d", o.Width, o.Height),
		// A widget with a dedicated origin (*.localhost) is another site
		// than the page; the virtual clock below drives one renderer
		// process, so frames of every site stay in it.
		"--disable-site-isolation-trials", "--disable-features=IsolateOrigins,site-per-process",
		// Virtual time runs the page's timers at once while waiting for
		// the network, and ends the run when the page is idle.
		"--virtual-time-budget=" + strconv.FormatInt((o.Wait+10*time.Second).Milliseconds(), 10)}
	if asRoot() {
		args = append(args, "--no-sandbox")
	}
	if o.Screenshot != "" {
		args = append(args, "--screenshot="+o.Screenshot)
	} else {
		args = append(args, "--dump-dom")
	}
	args = append(args, page)

	done := make(chan Report, 1)
	s.mu.Lock()
	s.done = done
	start := len(s.reports)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.done = nil
		s.mu.Unlock()
	}()

	run, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	cmd := exec.CommandContext(run, browser, args...)
	var stderr bytes.Buffer
	cmd.Stdout = nil
	cmd.Stderr = &limitWriter{buf: &stderr, n: 64 << 10}
	ownGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", browser, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	res := &CheckResult{}
	var waitErr error
	select {
	case r := <-done:
		res.Done = &r
		if o.Screenshot == "" {
			cancel() // nothing more to wait for
		}
		waitErr = <-exited
		if o.Screenshot == "" {
			waitErr = nil
		}
	case waitErr = <-exited:
		select {
		case r := <-done:
			res.Done = &r
		default:
		}
	}
	s.mu.Lock()
	res.Reports = append([]Report(nil), s.reports[start:]...)
	s.mu.Unlock()
	for _, r := range res.Reports {
		if r.Failure() && r.Kind != "done" {
			res.Problems = append(res.Problems, r)
		}
	}
	switch {
	case ctx.Err() != nil:
		return res, ctx.Err()
	case run.Err() != nil && res.Done == nil:
		return res, fmt.Errorf("the page did not finish within %s (a widget holding the browser busy, or a server that does not answer)", o.Timeout)
	case waitErr != nil && res.Done == nil:
		return res, fmt.Errorf("%s: %v\n%s", browser, waitErr, lastLines(stderr.String(), 8))
	case o.Screenshot != "" && waitErr != nil:
		return res, fmt.Errorf("%s: %v (no screenshot)\n%s", browser, waitErr, lastLines(stderr.String(), 8))
	}
	return res, nil
}

type limitWriter struct {
	buf *bytes.Buffer
	n   int
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if room := w.n - w.buf.Len(); room > 0 {
		if len(p) > room {
			w.buf.Write(p[:room])
		} else {
			w.buf.Write(p)
		}
	}
	return len(p), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// removeProfile deletes a check's browser profile and the directory of
// the browser's singleton socket, which the browser makes in the
// temporary directory and links from the profile, and leaves behind
// when it is stopped rather than closed.
func removeProfile(dir string) {
	if target, err := os.Readlink(filepath.Join(dir, "SingletonSocket")); err == nil {
		sock := filepath.Dir(target)
		if filepath.Dir(sock) == filepath.Clean(os.TempDir()) && strings.HasPrefix(filepath.Base(sock), "org.chromium.") {
			_ = os.RemoveAll(sock)
		}
	}
	_ = os.RemoveAll(dir)
}

// removeStaleProfiles deletes browser profiles of earlier checks that
// could not remove their own (a pomdev killed with SIGKILL): those more
// than a day old, far beyond any check's timeout.
func removeStaleProfiles() {
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), "pomdev-preview-*"))
	for _, dir := range old {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() && time.Since(fi.ModTime()) > 24*time.Hour {
			removeProfile(dir)
		}
	}
}
