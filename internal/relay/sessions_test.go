package relay_test

import (
	"errors"
	"strings"
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
