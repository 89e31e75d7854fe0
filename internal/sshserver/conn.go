package sshserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"golang.org/x/crypto/ssh"
)

// Channel flow control: what the server lets a client send before a window
// adjust, and the largest data packet it accepts.
const (
	channelWindow    = 1 << 20
	maxChannelPacket = 32 << 10
)

// Handlers receive what a client asks for. Both run on the connection's
// loop goroutine: they must not block (start a goroutine for long work).
type Handlers struct {
	// Global handles a global request; nil refuses them all.
	Global func(*Request)
	// Channel handles a channel the client opens; nil rejects them all.
	Channel func(*NewChannel)
}

// Request is a global or channel request from the client.
type Request struct {
	Type      string
	WantReply bool
	Payload   []byte

	reply func(ok bool, payload []byte) error
	once  sync.Once
}

// Reply answers the request once; without WantReply it does nothing.
func (r *Request) Reply(ok bool, payload []byte) error {
	var err error
	r.once.Do(func() {
		if r.WantReply {
			err = r.reply(ok, payload)
		}
	})
	return err
}

// Serve reads and dispatches packets until the connection ends, then
// closes every channel. It returns why the connection ended (nil when it
// was closed with Close).
func (c *Conn) Serve(h Handlers) error {
	return c.shutdown(c.loop(h))
}

// loop is where an idle connection waits. Its goroutine keeps the stack it
// has while parked, and the runtime halves a stack only when less than a
// quarter is in use: the wait for the next packet is a few small frames
// deep (dispatch, with its larger frame, runs between waits).
func (c *Conn) loop(h Handlers) error {
	for {
		if err := c.rd.await(); err != nil {
			return err
		}
		if err := c.dispatch(h); err != nil {
			return err
		}
	}
}

// shutdown closes everything once the loop has ended.
func (c *Conn) shutdown(err error) error {
	c.mu.Lock()
	closedByUs := c.closed
	c.closed = true
	chans := c.chans
	c.chans = map[uint32]*Channel{}
	c.mu.Unlock()
	_ = c.nc.Close()
	c.wmu.Lock()
	if c.werr == nil {
		c.werr = net.ErrClosed
	}
	c.wcond.Broadcast()
	c.wmu.Unlock()
	for _, ch := range chans {
		ch.gone()
	}
	c.rmu.Lock()
	for _, w := range c.replies {
		close(w)
	}
	c.replies, c.ended = nil, true
	c.rmu.Unlock()
	c.rd.release()
	if closedByUs || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Close ends the connection; Serve returns.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.nc.Close()
}

// protocolError ends the connection with a DISCONNECT.
func (c *Conn) protocolError(format string, args ...any) error {
	return c.fail(disconnectProtocolError, fmt.Sprintf(format, args...))
}

// dispatch reads one message (the reader has its first bytes) and acts on
// it.
func (c *Conn) dispatch(h Handlers) error {
	p, err := c.readMsg()
	if err != nil {
		return err
	}
	r := parser{b: p[1:]}
	switch p[0] {
	case msgGlobalRequest:
		req := &Request{Type: r.string(), WantReply: r.bool()}
		req.Payload = append([]byte(nil), r.rest()...)
		if !r.ok() {
			return c.protocolError("malformed global request")
		}
		req.reply = func(ok bool, payload []byte) error {
			if ok {
				return c.send([]byte{msgRequestSuccess}, payload)
			}
			return c.send([]byte{msgRequestFailure})
		}
		if h.Global != nil {
			h.Global(req)
		} else {
			_ = req.Reply(false, nil)
		}

	case msgRequestSuccess, msgRequestFailure:
		c.rmu.Lock()
		if len(c.replies) == 0 {
			c.rmu.Unlock()
			return c.protocolError("unexpected global request reply")
		}
		w := c.replies[0]
		c.replies = c.replies[1:]
		c.rmu.Unlock()
		w <- reply{ok: p[0] == msgRequestSuccess, payload: append([]byte(nil), r.rest()...)}

	case msgChannelOpen:
		nc := &NewChannel{c: c, typ: r.string(), remote: r.uint32(), window: r.uint32(), maxPacket: r.uint32()}
		if !r.ok() {
			return c.protocolError("malformed channel open")
		}
		if h.Channel != nil {
			h.Channel(nc)
		} else {
			_ = nc.Reject(ssh.UnknownChannelType, "no channels here")
		}

	default:
		if p[0] < msgChannelOpenConfirm || p[0] > msgChannelFailure {
			if p[0] >= msgUserAuthRequest && p[0] < msgGlobalRequest {
				return nil // authentication is over
			}
			return c.send(appendUint32([]byte{msgUnimplemented}, c.rseq-1))
		}
		id := r.uint32()
		c.mu.Lock()
		ch := c.chans[id]
		c.mu.Unlock()
		if ch == nil || !r.ok() {
			return c.protocolError("message %d for unknown channel %d", p[0], id)
		}
		if err := ch.handle(p[0], &r); err != nil {
			return c.protocolError("channel %d: %v", id, err)
		}
	}
	return nil
}

// SendRequest sends a global request and, with wantReply, waits for the
// answer.
func (c *Conn) SendRequest(name string, wantReply bool, payload []byte) (bool, []byte, error) {
	p := appendString([]byte{msgGlobalRequest}, name)
	p = appendBool(p, wantReply)
	var w chan reply
	c.gmu.Lock()
	if wantReply {
		c.rmu.Lock()
		if c.ended {
			c.rmu.Unlock()
			c.gmu.Unlock()
			return false, nil, net.ErrClosed
		}
		w = make(chan reply, 1)
		c.replies = append(c.replies, w)
		c.rmu.Unlock()
	}
	err := c.send(p, payload)
	c.gmu.Unlock()
	if err != nil || !wantReply {
		return false, nil, err
	}
	rep, ok := <-w
	if !ok {
		return false, nil, net.ErrClosed
	}
	return rep.ok, rep.payload, nil
}

// OpenChannelError is a client's refusal to open a channel.
type OpenChannelError struct {
	Reason  ssh.RejectionReason
	Message string
}

func (e *OpenChannelError) Error() string {
	return fmt.Sprintf("ssh: channel refused (%v): %s", e.Reason, e.Message)
}

// OpenChannel opens a channel to the client (forwarded-tcpip for a remote
// forward) and waits for the answer.
func (c *Conn) OpenChannel(typ string, extra []byte) (*Channel, error) {
	ch := newChannel(c)
	opened := make(chan error, 1)
	ch.opened = opened
	if err := c.register(ch); err != nil {
		return nil, err
	}
	p := appendString([]byte{msgChannelOpen}, typ)
	p = appendUint32(p, ch.local)
	p = appendUint32(p, channelWindow)
	p = appendUint32(p, maxChannelPacket)
	if err := c.send(p, extra); err != nil {
		c.forget(ch)
		return nil, err
	}
	if err := <-opened; err != nil {
		c.forget(ch)
		return nil, err
	}
	return ch, nil
}

func (c *Conn) register(ch *Channel) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	ch.local = c.nextID
	c.nextID++
	c.chans[ch.local] = ch
	return nil
}

func (c *Conn) forget(ch *Channel) {
	c.mu.Lock()
	if c.chans[ch.local] == ch {
		delete(c.chans, ch.local)
	}
	c.mu.Unlock()
}

// NewChannel is a channel the client asks to open.
type NewChannel struct {
	c                 *Conn
	typ               string
	remote            uint32
	window, maxPacket uint32
}

// ChannelType is the channel's type, such as "session".
func (n *NewChannel) ChannelType() string { return n.typ }

// Accept opens the channel. Its requests arrive on the returned Go
// channel, which is closed when the channel is; every request must be
// answered (Reply) in order.
func (n *NewChannel) Accept() (*Channel, <-chan *Request, error) {
	ch := newChannel(n.c)
	ch.remote, ch.rwin, ch.rmax = n.remote, n.window, n.maxPacket
	ch.reqs = make(chan *Request, 16)
	if err := n.c.register(ch); err != nil {
		return nil, nil, err
	}
	p := appendUint32([]byte{msgChannelOpenConfirm}, n.remote)
	p = appendUint32(p, ch.local)
	p = appendUint32(p, channelWindow)
	p = appendUint32(p, maxChannelPacket)
	if err := n.c.send(p); err != nil {
		n.c.forget(ch)
		return nil, nil, err
	}
	return ch, ch.reqs, nil
}

// Reject refuses the channel.
func (n *NewChannel) Reject(reason ssh.RejectionReason, message string) error {
	p := appendUint32([]byte{msgChannelOpenFailure}, n.remote)
	p = appendUint32(p, uint32(reason))
	p = appendString(p, message)
	p = appendString(p, "")
	return n.c.send(p)
}
