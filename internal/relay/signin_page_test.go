package relay_test

import (
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/relay"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"golang.org/x/crypto/ssh"
)

// The sign-in link's page: a wrong admin token is refused (403), the right
// one approves and the waiting client gets in.
func TestSigninPage(t *testing.T) {
	h := rt.StartRelay(t, func(c *relay.Config) { c.Auth = relay.AuthSignin })
	_, signer := rt.WriteKey(t)
	_, link, done := startSigninLink(t, h.SSHAddr, signer)
	if link == "" {
		t.Fatalf("no sign-in link: %v", <-done)
	}
	u, _ := url.Parse(link)
	code := u.Query().Get("user_code")
	client := h.Client()
	resp, err := client.Get(link)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("sign-in page: %v %v", resp, err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// What asks to sign in is on the page before anything is approved.
	for _, want := range []string{ssh.FingerprintSHA256(signer.PublicKey()), "127.0.0.1:", "Requested", " UTC", `name="token"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("sign-in page lacks %q:\n%s", want, page)
		}
	}
	resp, err = client.PostForm(u.Scheme+"://"+u.Host+"/.pomdev/sign_in", url.Values{"user_code": {code}, "token": {"wrong"}, "action": {"approve"}})
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("wrong token: %v %v", resp, err)
	}
	resp, err = client.PostForm(u.Scheme+"://"+u.Host+"/.pomdev/sign_in", url.Values{"user_code": {code}, "token": {h.Info.AdminToken}, "action": {"approve"}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("approve: %v %v", resp, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("client after approval: %v", err)
	}
}
