package relaycmd

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/pomdev/pomdev/internal/relay"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"golang.org/x/crypto/ssh"
)

var codeRe = regexp.MustCompile(`user_code=([A-Z0-9-]+)`)

func approve(t *testing.T, stateDir, code string, deny bool) string {
	t.Helper()
	ios, _, out, _ := iostreams.Test()
	if err := ApproveRun(&ApproveOptions{IO: ios, Code: code, Deny: deny, StateDir: stateDir}); err != nil {
		t.Fatalf("approve %s: %v", code, err)
	}
	return out.String()
}

// Sign-in through the Go SSH client: one keyboard-interactive request with
// zero prompts carrying the link, answered at once; the connection waits
// until `pomdev relay approve` approves the code; a reconnect (and a relay
// restart) skips sign-in.
func TestSigninXCrypto(t *testing.T) {
	o := rt.NewOrigin(t, "signin")
	mod := func(c *relay.Config) { c.Auth = relay.AuthSignin; c.DefaultTarget = o.HostPort() }
	h := rt.StartRelay(t, mod)
	if h.Info.AdminToken == "" || !h.Info.AdminTokenCreated {
		t.Fatalf("admin token not created: %+v", h.Info)
	}
	_, signer := rt.WriteKey(t)
	approved := make(chan error, 4)

	dial := func() (*ssh.Client, []string, error) {
		var asked []string
		cfg := &ssh.ClientConfig{
			User: "dev",
			Auth: []ssh.AuthMethod{
				ssh.PublicKeys(signer),
				ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
					if len(questions) != 0 {
						return nil, errors.New("unexpected questions")
					}
					asked = append(asked, name+"|"+instruction)
					if m := codeRe.FindStringSubmatch(instruction); m != nil {
						// Approve from "another terminal" while this client waits.
						go func() {
							ios, _, _, _ := iostreams.Test()
							approved <- ApproveRun(&ApproveOptions{IO: ios, Code: m[1], StateDir: h.StateDir})
						}()
					}
					return []string{}, nil
				}),
			},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(),
			Timeout:         10 * time.Second,
		}
		c, err := ssh.Dial("tcp", h.SSHAddr, cfg)
		return c, asked, err
	}

	c, asked, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-approved; err != nil {
		t.Fatalf("approve: %v", err)
	}
	if len(asked) != 1 || !strings.HasPrefix(asked[0], relay.SigninName+"|"+h.R.BaseURL()+"/.pomdev/sign_in?user_code=") {
		t.Fatalf("keyboard-interactive requests: %q", asked)
	}
	// The tunnel works once signed in.
	ln, err := c.Listen("tcp", "localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	c.Close()

	c, asked, err = dial()
	if err != nil || len(asked) != 0 {
		t.Fatalf("reconnect: err %v, asked %q (want no sign-in)", err, asked)
	}
	c.Close()
	h.Restart(mod)
	c, asked, err = dial()
	if err != nil || len(asked) != 0 {
		t.Fatalf("after restart: err %v, asked %q (want no sign-in)", err, asked)
	}
	c.Close()
}

// Sign-in through the stock OpenSSH client, as people use pom.run: the
// link is shown on stderr, the test approves it, the URL follows. A
// denied code ends with a message and no tunnel.
func TestSigninOpenSSH(t *testing.T) {
	rt.RequireOpenSSH(t)
	o := rt.NewOrigin(t, "signin")
	h := rt.StartRelay(t, func(c *relay.Config) { c.Auth = relay.AuthSignin; c.DefaultTarget = o.HostPort() })
	key, _ := rt.WriteKey(t)
	args := []string{"-o", "LogLevel=INFO", "-o", "KbdInteractiveAuthentication=yes",
		"-o", "PreferredAuthentications=publickey,keyboard-interactive", "-T", "-R", "0"}
	p := h.RunSSH(key, args...)
	code := waitCode(t, p)
	if out := approve(t, h.StateDir, code, false); !strings.Contains(out, "approved") {
		t.Fatalf("approve said %q", out)
	}
	url := strings.TrimPrefix(p.WaitLine(t, "Remote: "), "Remote: ")
	if status, body := h.Get(url + "/"); status != 200 || rt.Decode(t, body)["origin"] != "signin" {
		t.Fatalf("%d %s", status, body)
	}
	if !strings.Contains(p.Stderr(), relay.SigninName) {
		t.Errorf("stderr lacks the sign-in name: %q", p.Stderr())
	}

	key2, _ := rt.WriteKey(t)
	p2 := h.RunSSH(key2, args...)
	approve(t, h.StateDir, waitCode(t, p2), true)
	select {
	case <-p2.Done:
	case <-time.After(15 * time.Second):
		t.Fatal("denied client still running")
	}
	if s := p2.Stderr(); !strings.Contains(s, "denied") || !strings.Contains(s, "Permission denied") {
		t.Fatalf("stderr %q", s)
	}
	if len(h.R.Routes()) != 1 {
		t.Fatalf("routes %v", h.R.Routes())
	}
}

func waitCode(t *testing.T, p *rt.SSH) string {
	t.Helper()
	var code string
	rt.WaitFor(t, func() bool {
		m := codeRe.FindStringSubmatch(p.Stderr())
		if m != nil {
			code = m[1]
		}
		return m != nil
	}, "the sign-in link on ssh's stderr")
	return code
}

func TestApproveErrors(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	err := ApproveRun(&ApproveOptions{IO: ios, Code: "AAAA-BBBB", StateDir: t.TempDir()})
	if exitcode.Code(err) != exitcode.Unreachable || !strings.Contains(err.Error(), "no relay answers") {
		t.Fatalf("no relay: %v", err)
	}
	h := rt.StartRelay(t, func(c *relay.Config) { c.Auth = relay.AuthSignin })
	err = ApproveRun(&ApproveOptions{IO: ios, Code: "AAAA-BBBB", StateDir: h.StateDir})
	if err == nil || !strings.Contains(err.Error(), "no pending sign-in with code AAAA-BBBB") {
		t.Fatalf("unknown code: %v", err)
	}
}
