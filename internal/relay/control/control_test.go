package control

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/relay/access"
)

// serve runs Handler(b) on the socket of a fresh state directory.
func serve(t *testing.T, b Backend) *Client {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctl") // short: socket paths are bounded
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Handler(b)}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return NewClient(dir)
}

type fakeAccess struct{ revoked []string }

func (f *fakeAccess) Decide(_ context.Context, code string, allow bool, owner, by string) (access.Request, error) {
	if code != "ABCD" || owner != "" || by != "relay admin" {
		return access.Request{}, errors.New("no pending request " + code)
	}
	return access.Request{Code: code}, nil
}
func (f *fakeAccess) Pending(context.Context, string) ([]access.Request, error) {
	return []access.Request{{Code: "ABCD"}}, nil
}
func (f *fakeAccess) Grants(context.Context, string) ([]access.Grant, error) { return nil, nil }
func (f *fakeAccess) RevokeGrant(_ context.Context, id, _ string) error {
	if id != "g1" {
		return errors.New("no grant " + id)
	}
	f.revoked = append(f.revoked, id)
	return nil
}

func TestSocket(t *testing.T) {
	ctx := context.Background()
	fa := &fakeAccess{}
	c := serve(t, Backend{
		Approve: func(code string, approve bool) (string, error) {
			if code != "WXYZ" {
				return "", errors.New("unknown code " + code)
			}
			return "SHA256:key", nil
		},
		Access: fa,
		Routes: func(context.Context) []RouteInfo { return []RouteInfo{{Name: "demo"}} },
	})
	st, err := os.Stat(c.Sock)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", st, err)
	}
	if fp, err := c.Approve(ctx, "WXYZ", false); err != nil || fp != "SHA256:key" {
		t.Fatalf("approve: %q %v", fp, err)
	}
	if _, err := c.Approve(ctx, "NOPE", false); err == nil || err.Error() != "unknown code NOPE" {
		t.Fatalf("approve of an unknown code: %v", err)
	}
	if a, err := c.Call(ctx, http.MethodPost, "/access", AccessDecision{Code: "ABCD"}); err != nil || a.Request == nil || a.Request.Code != "ABCD" {
		t.Fatalf("access decision: %+v %v", a, err)
	}
	if _, err := c.Call(ctx, http.MethodPost, "/access", AccessDecision{Code: "EFGH"}); err == nil || !strings.Contains(err.Error(), "EFGH") {
		t.Fatalf("unknown access code: %v", err)
	}
	if a, err := c.Call(ctx, http.MethodGet, "/access", nil); err != nil || len(a.Requests) != 1 {
		t.Fatalf("pending: %+v %v", a, err)
	}
	if _, err := c.Call(ctx, http.MethodPost, "/grants/revoke", Revoke{ID: "g1"}); err != nil || len(fa.revoked) != 1 {
		t.Fatalf("revoke: %v %v", fa.revoked, err)
	}
	if a, err := c.Call(ctx, http.MethodGet, "/routes", nil); err != nil || len(a.Routes) != 1 || a.Routes[0].Name != "demo" {
		t.Fatalf("routes: %+v %v", a, err)
	}
	// A body past 4 KiB is refused, not read.
	if _, err := c.Call(ctx, http.MethodPost, "/access", AccessDecision{Code: strings.Repeat("A", 5000)}); err == nil || !strings.Contains(err.Error(), "bad request") {
		t.Fatalf("a 5 KB body: %v", err)
	}
	// A second relay on the same state directory is refused.
	if _, err := Listen(strings.TrimSuffix(c.Sock, "/"+SocketFile)); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Listen: %v", err)
	}
}

func TestSocketWithout(t *testing.T) {
	ctx := context.Background()
	c := serve(t, Backend{Routes: func(context.Context) []RouteInfo { return nil }})
	if _, err := c.Approve(ctx, "WXYZ", false); !errors.Is(err, ErrNoSignin) {
		t.Fatalf("approve without sign-in: %v", err)
	}
	if _, err := c.Call(ctx, http.MethodGet, "/access", nil); !errors.Is(err, ErrNoAccess) {
		t.Fatalf("access without access: %v", err)
	}
	if _, err := NewClient(t.TempDir()).Call(ctx, http.MethodGet, "/routes", nil); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("no relay: %v", err)
	}
}

// A stale socket (its relay killed) is replaced.
func TestListenStale(t *testing.T) {
	dir, _ := os.MkdirTemp("", "ctl")
	defer os.RemoveAll(dir)
	if err := os.WriteFile(SocketPath(dir), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(dir)
	if err != nil {
		t.Fatalf("over a stale file: %v", err)
	}
	ln.Close()
}
