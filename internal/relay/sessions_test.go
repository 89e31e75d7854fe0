package relay_test

import (
	"bytes"
	"errors"
	"github.com/pomdev/pomdev/internal/relay"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"golang.org/x/crypto/ssh"
)

// A connection may hold a handful of sessions; one more is refused with
// the reason, and closing one makes room again.
func TestSessionLimit(t *testing.T) {
	h := rt.StartRelay(t, nil)
	_, signer := rt.WriteKey(t)
	c, err := ssh.Dial("tcp", h.SSHAddr, &ssh.ClientConfig{User: "t", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var sessions []*ssh.Session
	for range 8 {
		s, err := c.NewSession()
		if err != nil {
			t.Fatalf("session %d: %v", len(sessions)+1, err)
		}
		sessions = append(sessions, s)
	}
	_, err = c.NewSession()
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != ssh.ResourceShortage || !strings.Contains(oce.Message, "at most 8 sessions") {
		t.Fatalf("ninth session: %v", err)
	}
	_ = sessions[0].Close()
	rt.WaitFor(t, func() bool {
		s, err := c.NewSession()
		if err != nil {
			return false
		}
		sessions[0] = s
		return true
	}, "a session to open after one closed")
}

// A client's terminal size is clamped before the status screen allocates
// its cells: a PTY of 60000 x 2000 and then a window change to the largest
// size the protocol can say leave the relay's heap small, and the relay
// goes on serving.
func TestHugeTerminalSize(t *testing.T) {
	h := rt.StartRelay(t, nil)
	c, err := dialRelay(t, h, &ssh.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	before := heapAlloc()
	s, out := ptyShell(t, c, 2000, 60000)
	rt.WaitFor(t, func() bool { return strings.Contains(out.String(), "Port Forward Status") }, "the status screen")
	if _, err := s.SendRequest("window-change", false, ssh.Marshal(struct{ Cols, Rows, W, H uint32 }{1<<32 - 1, 1<<32 - 1, 0, 0})); err != nil {
		t.Fatal(err)
	}
	n := len(out.String())
	// The screen redraws for the new size.
	rt.WaitFor(t, func() bool { return len(out.String()) > n }, "a redraw after the window change")
	if grown := int64(heapAlloc()) - int64(before); grown > 64<<20 {
		t.Fatalf("the relay's heap grew by %d MiB for one status screen", grown>>20)
	} else {
		t.Logf("heap grew by %d KiB", grown>>10)
	}
	// One screen per connection: a second PTY session gets lines.
	_, out2 := ptyShell(t, c, 40, 100)
	rt.WaitFor(t, func() bool { return strings.Contains(out2.String(), "Log: status screen unavailable") }, "lines on the second PTY session")
	if _, err := dialRelay(t, h, &ssh.ClientConfig{}); err != nil {
		t.Fatalf("relay after the screen: %v", err)
	}
}

// ptyShell opens a session on c with a PTY of rows x cols and starts its
// shell; what the relay draws collects in the returned buffer.
func ptyShell(t *testing.T, c *ssh.Client, rows, cols int) (*ssh.Session, *syncBuffer) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	s.Stdout = out
	if err := s.RequestPty("xterm", rows, cols, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	return s, out
}

// heapAlloc is the test process's live heap after a collection.
func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A key whose authorized_keys line says no-pty gets no PTY: its shell
// session shows plain lines instead of the status screen.
func TestNoPTYOption(t *testing.T) {
	_, signer := rt.WriteKey(t)
	ak := t.TempDir() + "/authorized_keys"
	if err := os.WriteFile(ak, append([]byte("no-pty "), ssh.MarshalAuthorizedKey(signer.PublicKey())...), 0o600); err != nil {
		t.Fatal(err)
	}
	h := rt.StartRelay(t, func(c *relay.Config) { c.Auth, c.AuthorizedKeys = relay.AuthKeys, ak })
	c, err := dialRelay(t, h, &ssh.ClientConfig{Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Listen("tcp", "localhost:0"); err != nil {
		t.Fatal(err)
	}
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	s.Stdout = out
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err == nil {
		t.Fatal("a PTY was granted to a no-pty key")
	}
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	rt.WaitFor(t, func() bool { return strings.Contains(out.String(), "Remote: http://") }, "plain lines")
	if strings.Contains(out.String(), "Port Forward Status") {
		t.Fatal("the status screen was drawn")
	}
}

// TestPTYAfterShell: a pty-req sent after shell (as a hostile client may)
// is refused and races nothing the running session reads (go test -race
// reports the race this guards against); the relay goes on serving.
func TestPTYAfterShell(t *testing.T) {
	h := rt.StartRelay(t, nil)
	c, err := dialRelay(t, h, &ssh.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, first := range []string{"shell", "exec"} {
		ch, reqs, err := c.OpenChannel("session", nil)
		if err != nil {
			t.Fatal(err)
		}
		go ssh.DiscardRequests(reqs)
		go func() { _, _ = io.Copy(io.Discard, ch) }()
		payload := []byte(nil)
		if first == "exec" {
			payload = ssh.Marshal(struct{ Command string }{relay.AccessCommand + " list"})
		}
		if ok, err := ch.SendRequest(first, true, payload); err != nil || !ok {
			t.Fatalf("%s: %v %v", first, ok, err)
		}
		pty := ssh.Marshal(struct {
			Term             string
			Cols, Rows, W, H uint32
			Modes            string
		}{"xterm", 80, 24, 0, 0, ""})
		for i := range 50 {
			ok, err := ch.SendRequest("pty-req", true, pty)
			if err != nil {
				break // an exec'd command may end the channel first
			}
			if ok {
				t.Fatalf("pty-req %d after %s accepted", i, first)
			}
		}
		_ = ch.Close()
	}
	if _, err := dialRelay(t, h, &ssh.ClientConfig{}); err != nil {
		t.Fatalf("the relay after pty-req floods: %v", err)
	}
}
