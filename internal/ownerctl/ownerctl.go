// Package ownerctl lets `pomdev access approve CODE` reach the running
// `pomdev up` or `pomdev tunnel` whose relay asked: each listens on a Unix
// socket of its own in <config dir>/access/ (0700, the socket 0600), and
// the command asks each in turn until one's relay knows the code.
package ownerctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Dir is where the sockets live under the config dir.
const Dir = "access"

// Decide runs an access verb (approve, deny, list) against the tunnel's
// relay and returns what it said.
type Decide func(ctx context.Context, verb, code string) (string, error)

type call struct {
	Verb string `json:"verb"`
	Code string `json:"code,omitempty"`
}

type answer struct {
	Output string `json:"output,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Listen serves decide on this process's socket until the returned stop
// is called (which removes the socket).
func Listen(configDir string, decide Decide) (stop func(), err error) {
	dir := filepath.Join(configDir, Dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, strconv.Itoa(os.Getpid())+".sock")
	_ = os.Remove(path) // a socket left by a process that had this pid
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c call
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&c); err != nil {
			_ = json.NewEncoder(w).Encode(answer{Error: "bad request"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		out, err := decide(ctx, c.Verb, c.Code)
		a := answer{Output: out}
		if err != nil {
			a.Error = err.Error()
		}
		_ = json.NewEncoder(w).Encode(a)
	})}
	go func() { _ = srv.Serve(ln) }()
	return func() {
		_ = srv.Close()
		_ = os.Remove(path)
	}, nil
}

// ErrNoneRunning means no pomdev up or pomdev tunnel answers.
var ErrNoneRunning = errors.New("no running pomdev up or pomdev tunnel answers")

// Send asks every running pomdev up / tunnel of configDir. For approve,
// deny and revoke it stops at the first that succeeds (only the relay that
// asked knows the code); list and grants gather them all. Sockets nobody answers on are
// removed.
func Send(ctx context.Context, configDir, verb, code string) (string, error) {
	paths, _ := filepath.Glob(filepath.Join(configDir, Dir, "*.sock"))
	var outs []string
	var lastErr error
	reached := false
	for _, p := range paths {
		a, err := send(ctx, p, call{Verb: verb, Code: code})
		if err != nil {
			var ne *net.OpError
			if errors.As(err, &ne) {
				_ = os.Remove(p) // its process is gone
			}
			continue
		}
		reached = true
		if a.Error != "" {
			lastErr = errors.New(a.Error)
			continue
		}
		if !gathers(verb) {
			return a.Output, nil
		}
		if a.Output != "" {
			outs = append(outs, a.Output)
		}
	}
	if !reached {
		return "", ErrNoneRunning
	}
	if gathers(verb) {
		return strings.Join(outs, "\n"), nil
	}
	return "", lastErr
}

// gathers reports whether verb asks every tunnel (list, grants) rather
// than the one whose relay knows the code.
func gathers(verb string) bool { return verb == "list" || verb == "grants" }

func send(ctx context.Context, path string, c call) (answer, error) {
	hc := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	body, _ := json.Marshal(c)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://pomdev/access", bytes.NewReader(body))
	resp, err := hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	var a answer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&a); err != nil {
		return answer{}, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}
