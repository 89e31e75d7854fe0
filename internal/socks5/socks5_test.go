package socks5

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// pair runs Connect and ReadRequest against each other.
func pair(t *testing.T, host string, port int, reply byte) (Request, error, error) {
	t.Helper()
	// A TCP pair, not net.Pipe: Connect writes greeting and request at once,
	// which needs buffering as in an SSH channel.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer s.Close()
	type res struct {
		req Request
		err error
	}
	done := make(chan res, 1)
	go func() {
		req, err := ReadRequest(s)
		if err == nil {
			err = WriteReply(s, reply)
		}
		done <- res{req, err}
	}()
	cerr := Connect(c, host, port)
	r := <-done
	return r.req, r.err, cerr
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		host string
		port int
		want string
	}{
		{"localhost", 8080, "localhost:8080"},
		{"127.0.0.1", 80, "127.0.0.1:80"},
		{"::1", 443, "[::1]:443"},
		{"a.example", 65535, "a.example:65535"},
	}
	for _, tt := range tests {
		req, serr, cerr := pair(t, tt.host, tt.port, ReplySucceeded)
		if serr != nil || cerr != nil {
			t.Fatalf("%s: server %v, client %v", tt.want, serr, cerr)
		}
		if req.Addr() != tt.want {
			t.Errorf("got %s, want %s", req.Addr(), tt.want)
		}
	}
}

func TestRefusal(t *testing.T) {
	_, serr, cerr := pair(t, "localhost", 9, ReplyConnectionRefused)
	if serr != nil {
		t.Fatal(serr)
	}
	var re *ReplyError
	if !errors.As(cerr, &re) || re.Code != ReplyConnectionRefused {
		t.Fatalf("client error %v", cerr)
	}
	if re.Error() != "socks5: connection refused" {
		t.Fatalf("text %q", re.Error())
	}
}

// rw joins a reader of canned input with a buffer collecting output.
type rw struct {
	io.Reader
	out bytes.Buffer
}

func (r *rw) Write(p []byte) (int, error) { return r.out.Write(p) }
func (r *rw) Bytes() []byte               { return r.out.Bytes() }
func (r *rw) Len() int                    { return r.out.Len() }

func TestServerRejects(t *testing.T) {
	tests := []struct {
		name      string
		in        []byte
		wantReply []byte
	}{
		{"socks4", []byte{4, 1, 0, 80, 127, 0, 0, 1, 0}, nil},
		{"no methods", []byte{5, 0}, nil},
		{"auth only", []byte{5, 1, 2}, []byte{5, 0xff}},
		{"bind command", []byte{5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80}, []byte{5, 0, 5, ReplyCmdNotSupported}},
		{"bad atyp", []byte{5, 1, 0, 5, 1, 0, 9}, []byte{5, 0, 5, ReplyAtypNotSupported}},
		{"truncated", []byte{5, 1, 0, 5, 1, 0, 3, 10, 'a'}, []byte{5, 0}},
		{"http", []byte("GET / HTTP/1.1\r\n"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &rw{Reader: bytes.NewReader(tt.in)}
			if _, err := ReadRequest(c); err == nil {
				t.Fatal("expected an error")
			}
			if !bytes.HasPrefix(c.Bytes(), tt.wantReply) || (tt.wantReply == nil && c.Len() != 0) {
				t.Fatalf("wrote %v, want prefix %v", c.Bytes(), tt.wantReply)
			}
		})
	}
}

func TestClientRejects(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"wrong version", []byte{4, 0}},
		{"auth required", []byte{5, 2}},
		{"eof", []byte{5}},
		{"bad reply version", []byte{5, 0, 4, 0, 0, 1, 0, 0, 0, 0, 0, 0}},
		{"bad atyp", []byte{5, 0, 5, 0, 0, 7}},
	}
	for _, tt := range tests {
		if err := Connect(&rw{Reader: bytes.NewReader(tt.in)}, "localhost", 80); err == nil {
			t.Errorf("%s: expected an error", tt.name)
		}
	}
	if err := Connect(&rw{Reader: bytes.NewReader(nil)}, string(make([]byte, 300)), 80); err == nil {
		t.Error("long host accepted")
	}
}
