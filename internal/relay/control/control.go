// Package control is the relay's control socket: a Unix socket in the
// state directory (0600 in the 0700 directory) on which `pomdev relay
// approve`, `access`, `grants` and `routes` reach a running relay. It holds
// the socket, its wire types, the handler over a Backend and the client
// relaycmd uses; it knows nothing of SSH or routes beyond RouteInfo.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/pomdev/pomdev/internal/relay/access"
)

// SocketFile is the socket's name in the state directory.
const SocketFile = "relay.sock"

// SocketPath is where a relay with stateDir listens.
func SocketPath(stateDir string) string { return filepath.Join(stateDir, SocketFile) }

// Approve is the body of POST /approve: a pending SSH sign-in's code.
type Approve struct {
	Code string `json:"code"`
	Deny bool   `json:"deny,omitempty"`
}

// Approved is its answer.
type Approved struct {
	Fingerprint string `json:"fingerprint,omitempty"`
	Error       string `json:"error,omitempty"`
}

// AccessDecision is the body of POST /access: an app's pending request.
type AccessDecision struct {
	Code string `json:"code"`
	Deny bool   `json:"deny,omitempty"`
}

// Revoke is the body of POST /grants/revoke.
type Revoke struct {
	ID string `json:"id"`
}

// Answer is the answer of the access, grants and routes calls.
type Answer struct {
	Error    string           `json:"error,omitempty"`
	Request  *access.Request  `json:"request,omitempty"`
	Requests []access.Request `json:"requests,omitempty"`
	Grants   []access.Grant   `json:"grants,omitempty"`
	Routes   []RouteInfo      `json:"routes,omitempty"`
}

// RouteInfo is one live route in the relay's inventory: who holds it, what
// it reaches, what guards it and when it was last used.
type RouteInfo struct {
	Name       string    `json:"name"`
	URL        string    `json:"url"`
	Static     bool      `json:"static,omitempty"`
	OwnerKey   string    `json:"owner_key"`
	OwnerSub   string    `json:"owner_sub,omitempty"`
	OwnerEmail string    `json:"owner_email,omitempty"`
	Remote     string    `json:"remote"` // the SSH client's address
	Target     string    `json:"target"` // as the tunnel asked; the client side resolves it
	HTTPAuth   string    `json:"http_auth"`
	Tools      string    `json:"tools"` // the tool rules in force
	Grants     int       `json:"grants"`
	Since      time.Time `json:"since"`
	Requests   int64     `json:"requests"`
	Last       time.Time `json:"last_request,omitzero"`
}

// Access is what the socket asks of the authorization server
// (*access.Server); owner "" acts for the relay's admin.
type Access interface {
	Decide(ctx context.Context, code string, allow bool, owner, by string) (access.Request, error)
	Pending(ctx context.Context, owner string) ([]access.Request, error)
	Grants(ctx context.Context, owner string) ([]access.Grant, error)
	RevokeGrant(ctx context.Context, id, owner string) error
}

// Backend is the relay as the socket sees it.
type Backend struct {
	// Approve decides a pending SSH sign-in; nil on a relay without
	// --auth signin.
	Approve func(code string, approve bool) (fingerprint string, err error)
	// Access is nil on a relay that does not authorize HTTP requests.
	Access Access
	// Routes is the inventory of live routes.
	Routes func(ctx context.Context) []RouteInfo
}

// maxBody bounds a request body on the socket.
const maxBody = 4096

// Handler serves the socket's calls.
func Handler(b Backend) http.Handler {
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, status int, a Answer) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(a)
	}
	read := func(w http.ResponseWriter, req *http.Request, v any) bool {
		if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxBody)).Decode(v); err != nil {
			answer(w, http.StatusBadRequest, Answer{Error: "bad request: " + err.Error()})
			return false
		}
		return true
	}
	if a := b.Access; a != nil {
		mux.HandleFunc("POST /access", func(w http.ResponseWriter, req *http.Request) {
			var d AccessDecision
			if !read(w, req, &d) {
				return
			}
			q, err := a.Decide(req.Context(), d.Code, !d.Deny, "", "relay admin")
			if err != nil {
				answer(w, http.StatusNotFound, Answer{Error: err.Error()})
				return
			}
			answer(w, http.StatusOK, Answer{Request: &q})
		})
		mux.HandleFunc("GET /access", func(w http.ResponseWriter, req *http.Request) {
			qs, err := a.Pending(req.Context(), "")
			if err != nil {
				answer(w, http.StatusInternalServerError, Answer{Error: err.Error()})
				return
			}
			answer(w, http.StatusOK, Answer{Requests: qs})
		})
		mux.HandleFunc("GET /grants", func(w http.ResponseWriter, req *http.Request) {
			gs, err := a.Grants(req.Context(), "")
			if err != nil {
				answer(w, http.StatusInternalServerError, Answer{Error: err.Error()})
				return
			}
			answer(w, http.StatusOK, Answer{Grants: gs})
		})
		mux.HandleFunc("POST /grants/revoke", func(w http.ResponseWriter, req *http.Request) {
			var d Revoke
			if !read(w, req, &d) {
				return
			}
			if err := a.RevokeGrant(req.Context(), d.ID, ""); err != nil {
				answer(w, http.StatusNotFound, Answer{Error: err.Error()})
				return
			}
			answer(w, http.StatusOK, Answer{})
		})
	}
	if b.Routes != nil {
		mux.HandleFunc("GET /routes", func(w http.ResponseWriter, req *http.Request) {
			answer(w, http.StatusOK, Answer{Routes: b.Routes(req.Context())})
		})
	}
	mux.HandleFunc("POST /approve", func(w http.ResponseWriter, req *http.Request) {
		if b.Approve == nil {
			http.Error(w, "this relay has no sign-in (--auth signin)", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		var ar Approve
		if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxBody)).Decode(&ar); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(Approved{Error: "bad request: " + err.Error()})
			return
		}
		fp, err := b.Approve(ar.Code, !ar.Deny)
		if err != nil {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(Approved{Error: err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(Approved{Fingerprint: fp})
	})
	return mux
}

// ErrRunning: another relay answers on the state directory's socket.
var ErrRunning = errors.New("another relay is running with this state directory")

// Listen opens the socket of the state directory dir, replacing a stale
// one; it refuses when another relay answers there.
func Listen(dir string) (net.Listener, error) {
	path := SocketPath(dir)
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("%w (%s: its control socket answers)", ErrRunning, dir)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}
