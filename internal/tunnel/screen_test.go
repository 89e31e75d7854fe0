package tunnel

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/pomdev/pomdev/internal/fuzzwatch"

	rt "github.com/pomdev/pomdev/internal/relay/relaytest"
	"golang.org/x/crypto/ssh"
)

func generateKey() (ed25519.PublicKey, ssh.Signer, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	s, err := ssh.NewSignerFromKey(priv)
	return pub, s, err
}

// A frame shaped like pom.run's status screen (PROTOCOL.md §1): alt screen,
// colours, box drawing, cursor positioning, the Remote row with :443.
const pomRunFrame = "\x1b[?1049h\x1b[?25l\x1b[2J\x1b[H" +
	"\x1b[1;1H\x1b[1m╭ Active Connections ──────────╮\x1b[0m\x1b[1;40H\x1b[1m╭ Port Forward Status ─────────────────────────────────────╮\x1b[0m" +
	"\x1b[2;40H│ Status  \x1b[32mACTIVE\x1b[0m" +
	"\x1b[3;40H│ Remote  \x1b[4mhttps://brave-otter.mcp-tunnels.pom.run:443\x1b[24m" +
	"\x1b[4;40H│ Local   http://localhost:8080" +
	"\x1b[6;1H╭ Client Requests ─╮\x1b[10;1H╭ Logs ─╮\x1b[11;1H│ 12:00:01 tunnel ready"

func TestRemoteFromScreen(t *testing.T) {
	scr := newScreen(220, 60)
	// Split the frame mid-sequence, as reads from a channel do.
	scr.Write([]byte(pomRunFrame[:57]))
	scr.Write([]byte(pomRunFrame[57:]))
	if got := RemoteFromScreen(scr.Lines()); got != "https://brave-otter.mcp-tunnels.pom.run" {
		t.Fatalf("got %q from\n%s", got, strings.Join(scr.Lines(), "\n"))
	}

	// A narrow terminal: the URL wraps onto the next row.
	narrow := newScreen(60, 20)
	narrow.Write([]byte("\x1b[2J\x1b[H Port Forward Status\r\n Status  ACTIVE\r\n Remote  https://a-very-long-route-name.mcp-tunnels.pom.r" + "un:443\r\n Local   http://localhost:8080\r\n"))
	if got := RemoteFromScreen(narrow.Lines()); got != "https://a-very-long-route-name.mcp-tunnels.pom.run" {
		t.Fatalf("wrapped: got %q from\n%s", got, strings.Join(narrow.Lines(), "\n"))
	}

	// pomdev relay's own screen (plain http with a port).
	relayScr := newScreen(120, 30)
	relayScr.Write([]byte("\x1b[HPort Forward Status ───\r\n  Status  ACTIVE\r\n  Remote  http://brave-otter-042.localhost:8088\r\n  Local   localhost:8080\r\n"))
	if got := RemoteFromScreen(relayScr.Lines()); got != "http://brave-otter-042.localhost:8088" {
		t.Fatalf("relay screen: %q", got)
	}
	if got := RemoteFromScreen([]string{"nothing here"}); got != "" {
		t.Fatalf("got %q", got)
	}
}

func TestLogsFromScreen(t *testing.T) {
	scr := newScreen(220, 60)
	scr.Write([]byte(pomRunFrame + "\x1b[12;1H│ 12:00:02 hint: static mode expected, got SOCKS"))
	got := LogsFromScreen(scr.Lines())
	want := []string{"12:00:01 tunnel ready", "12:00:02 hint: static mode expected, got SOCKS"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
	relay := []string{"Port Forward Status ───", "  Status  ACTIVE", "", "Logs ─────────", "  remote forward x:81 refused: use -R 0", "  q: quit", ""}
	if got := LogsFromScreen(relay); len(got) != 1 || got[0] != "remote forward x:81 refused: use -R 0" {
		t.Fatalf("relay screen: %q", got)
	}
}

func TestScreenBasics(t *testing.T) {
	s := newScreen(10, 3)
	s.Write([]byte("abc\x1b[2;5Hxy\x1b[1;2H\x1b[K\r\nq\x1b[3;1Hzzzzzzzzzzzz"))
	want := []string{"a", "q   xy", "zzzzzzzzzz"}
	got := s.Lines()
	// The last row overflowed and scrolled.
	if got[0] != "q   xy" || got[1] != "zzzzzzzzzz" || got[2] != "zz" {
		t.Fatalf("got %q (want scrolled form of %q)", got, want)
	}
}

// FuzzScreen: arbitrary terminal output never panics the emulator or the
// reader, and lines never exceed the width.
func FuzzScreen(f *testing.F) {
	f.Add([]byte(pomRunFrame))
	f.Add([]byte("\x1b[999;999H\x1b[?1049l\x1b]0;title\x07\x1b[38;2;1;2;3mX"))
	f.Add([]byte{0x1b, '[', '1', ';'})
	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzwatch.Run(t, fuzzwatch.Limits{}, func() {
			s := newScreen(40, 10)
			s.Write(in)
			for _, l := range s.Lines() {
				if len([]rune(l)) > 40 {
					t.Fatalf("line of %d runes", len([]rune(l)))
				}
			}
			_ = RemoteFromScreen(s.Lines())
		})
	})
}

// The reader against a real status screen: pomdev relay's, drawn with Bubble
// Tea into a 220-column PTY session, as pom.run draws its own.
func TestURLFromRelayScreen(t *testing.T) {
	h := rt.StartRelay(t, nil)
	_, signer, _ := generateKey()
	client, err := ssh.Dial("tcp", h.SSHAddr, &ssh.ClientConfig{User: "t", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.Listen("tcp", "localhost:0"); err != nil {
		t.Fatal(err)
	}
	routes := h.WaitRoute(1)
	c, err := New(Config{Addr: h.SSHAddr, Signers: []ssh.Signer{signer}, Targets: []string{"localhost:8080"}, URLTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	got := c.urlFromScreen(context.Background(), client)
	for _, want := range routes {
		if got != want {
			t.Fatalf("read %q from the screen, relay says %q", got, want)
		}
	}
}
