package sshserver

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The client closes a channel while the server's reader is about to send
// the window adjust its last read earned. The adjust must not follow the
// server's CLOSE: x/crypto ends the connection over a message for a
// channel it has closed. The hook lets the client close only once the
// adjust is decided, and holds the adjust until the connection's loop has
// answered the client's CLOSE.
func TestAdjustAfterCloseIsDropped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan *Conn, 1)
	served := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		c, err := Handshake(nc, &Config{HostKey: testHostKey(t), PublicKey: func(net.Addr, string, ssh.PublicKey) error { return nil }})
		if err != nil {
			served <- err
			return
		}
		conns <- c
		served <- c.Serve(Handlers{Global: func(r *Request) {
			_ = r.Reply(r.Type == "tcpip-forward", ssh.Marshal(struct{ Port uint32 }{4242}))
		}})
	}()
	client, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{User: "t", Auth: []ssh.AuthMethod{ssh.PublicKeys(testHostKey(t))},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c := <-conns
	fl, err := client.Listen("tcp", "localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	closeNow := make(chan struct{})
	go func() {
		fc, err := fl.Accept()
		if err != nil {
			return
		}
		_, _ = fc.Write(make([]byte, channelWindow/2)) // exactly what makes an adjust due
		<-closeNow
		_ = fc.Close()
	}()

	hooked := false
	testHookAdjust = func(ch *Channel) {
		hooked = true
		close(closeNow) // the client closes now that the adjust is decided
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			ch.mu.Lock()
			closed := ch.sentClose
			ch.mu.Unlock()
			if closed {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Error("the loop never answered the client's CLOSE")
	}
	defer func() { testHookAdjust = nil }()

	ch, err := c.OpenChannel("forwarded-tcpip", ssh.Marshal(struct {
		Addr       string
		Port       uint32
		OriginAddr string
		OriginPort uint32
	}{"localhost", 4242, "127.0.0.1", 1}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(ch)
	if err != nil || len(got) != channelWindow/2 {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if !hooked {
		t.Fatal("no window adjust came due")
	}
	if _, _, err := client.SendRequest("ping@example.test", true, nil); err != nil {
		t.Fatalf("the client dropped the connection: %v", err)
	}
	_ = client.Close()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}
