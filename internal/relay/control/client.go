package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Client calls a running relay's socket.
type Client struct {
	Sock string
	http *http.Client
}

// NewClient is a client of the relay whose state directory is dir.
func NewClient(dir string) *Client {
	sock := SocketPath(dir)
	return &Client{Sock: sock, http: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}}
}

// ErrUnreachable: no relay answers on the socket.
var ErrUnreachable = errors.New("no relay answers")

// ErrNoAccess: the relay answers but does not authorize HTTP requests.
var ErrNoAccess = errors.New("the relay does not authorize HTTP requests")

// ErrNoSignin: the relay answers but has no sign-in.
var ErrNoSignin = errors.New("the relay has no sign-in")

// maxAnswer bounds what the client reads of an answer.
const maxAnswer = 1 << 20

// Call sends body (nil for none) to path and returns the relay's answer;
// an answer's error is returned as an error.
func (c *Client) Call(ctx context.Context, method, path string, body any) (Answer, error) {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && resp.Header.Get("Content-Type") != "application/json" {
		return Answer{}, fmt.Errorf("%w (%s)", ErrNoAccess, c.Sock)
	}
	var a Answer
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(&a); err != nil {
		return Answer{}, fmt.Errorf("relay answered %s with an unreadable body: %w", resp.Status, err)
	}
	if a.Error != "" {
		return a, errors.New(strings.TrimSpace(a.Error))
	}
	return a, nil
}

// Approve decides a pending SSH sign-in and returns the key it was for.
func (c *Client) Approve(ctx context.Context, code string, deny bool) (fingerprint string, err error) {
	resp, err := c.do(ctx, http.MethodPost, "/approve", Approve{Code: code, Deny: deny})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && resp.Header.Get("Content-Type") != "application/json" {
		return "", fmt.Errorf("%w (%s)", ErrNoSignin, c.Sock)
	}
	var ar Approved
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(&ar); err != nil {
		return "", fmt.Errorf("relay answered %s with an unreadable body: %w", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(strings.TrimSpace(ar.Error))
	}
	return ar.Fingerprint, nil
}

func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://relay"+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w on %s: %w", ErrUnreachable, c.Sock, err)
	}
	return resp, nil
}
