package relay_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pomdev/pomdev/internal/relay"
	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
)

// Concurrent requests through one OpenSSH tunnel that rekeys every 128 KiB
// (RekeyLimit): key exchanges land in the middle of many channels'
// traffic, and every request still gets its own body back intact.
func TestOpenSSHRekeyUnderLoad(t *testing.T) {
	o := rt.NewOrigin(t, "rekey")
	h := rt.StartRelay(t, func(c *relay.Config) { c.DefaultTarget = o.HostPort() })
	key, _ := rt.WriteKey(t)
	p := h.RunSSH(key, "-N", "-o", "RekeyLimit=128K", "-o", "LogLevel=DEBUG1", "-R", "0")
	url := h.WaitURL()
	const workers, each = 8, 12
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				raw := make([]byte, 24<<10)
				_, _ = rand.Read(raw)
				body := base64.StdEncoding.EncodeToString(raw)
				resp, err := h.Client().Post(url+fmt.Sprintf("/w%d/%d", w, i), "text/plain", bytes.NewReader([]byte(body)))
				if err != nil {
					errs <- err
					continue
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("status %d, %v", resp.StatusCode, err)
					continue
				}
				if m := rt.Decode(t, string(got)); m["body"] != body {
					errs <- fmt.Errorf("request %d/%d: body of %d bytes came back as %d", w, i, len(body), len(m["body"]))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// ssh logs each key exchange; the first is the initial one.
	if n := strings.Count(p.Stderr(), "SSH2_MSG_NEWKEYS received"); n < 10 {
		t.Errorf("%d key exchanges; want rekeying every 128 KiB of the ≈ 6 MiB", n)
	} else {
		t.Logf("%d key exchanges", n)
	}
}
