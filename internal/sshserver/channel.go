package sshserver

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"

	"golang.org/x/crypto/ssh"
)

// Channel is an open SSH channel. It implements ssh.Channel.
type Channel struct {
	c             *Conn
	local, remote uint32
	reqs          chan *Request // client requests (accepted channels only)
	reqsClosed    bool          // loop goroutine only
	opened        chan error    // the client's answer (channels we open)
	reqMu         sync.Mutex    // orders our channel requests with replies

	mu           sync.Mutex
	cond         *sync.Cond
	buf          []byte // received, not yet read
	off          int
	eof          bool // no more data will come
	remoteClosed bool
	sentEOF      bool
	sentClose    bool
	dead         bool   // the connection ended
	rwin, rmax   uint32 // what the client still accepts, its packet size
	lwin         uint32 // what the client may still send
	consumed     uint32 // read since the last window adjust
	replies      []chan bool
}

var _ ssh.Channel = (*Channel)(nil)

func newChannel(c *Conn) *Channel {
	ch := &Channel{c: c, lwin: channelWindow}
	ch.cond = sync.NewCond(&ch.mu)
	return ch
}

// testHookAdjust runs between deciding on a window adjust and sending it.
var testHookAdjust func(*Channel)

var (
	errWindow = errors.New("data beyond the window")
	errState  = errors.New("unexpected message")
)

// handle processes a channel message on the loop goroutine.
func (ch *Channel) handle(msg byte, r *parser) error {
	switch msg {
	case msgChannelOpenConfirm, msgChannelOpenFailure:
		if ch.opened == nil {
			return errState
		}
		var err error
		if msg == msgChannelOpenConfirm {
			remote, win, max := r.uint32(), r.uint32(), r.uint32()
			if max == 0 {
				return errState
			}
			ch.mu.Lock()
			ch.remote, ch.rwin, ch.rmax = remote, win, max
			ch.mu.Unlock()
		} else {
			reason := ssh.RejectionReason(r.uint32())
			err = &OpenChannelError{Reason: reason, Message: r.string()}
		}
		if !r.ok() {
			return errState
		}
		ch.opened <- err
		ch.opened = nil

	case msgChannelWindowAdjust:
		n := r.uint32()
		ch.mu.Lock()
		defer ch.mu.Unlock()
		if ch.rwin+n < ch.rwin {
			return errWindow
		}
		ch.rwin += n
		ch.cond.Broadcast()

	case msgChannelData, msgChannelExtendedData:
		extended := msg == msgChannelExtendedData
		if extended {
			r.uint32()
		}
		data := r.bytes()
		if !r.ok() {
			return errState
		}
		ch.mu.Lock()
		if uint32(len(data)) > ch.lwin || len(data) > maxChannelPacket {
			ch.mu.Unlock()
			return errWindow
		}
		ch.lwin -= uint32(len(data))
		if extended || ch.sentClose {
			// Nothing reads it: credit the window at once.
			adjust := ch.credit(uint32(len(data)))
			ch.mu.Unlock()
			return ch.adjust(adjust)
		}
		ch.buf = append(ch.buf, data...)
		ch.cond.Broadcast()
		ch.mu.Unlock()

	case msgChannelEOF:
		ch.mu.Lock()
		ch.eof = true
		ch.cond.Broadcast()
		ch.mu.Unlock()

	case msgChannelClose:
		ch.end(func() { ch.remoteClosed = true })
		ch.c.forget(ch)
		// Our CLOSE in answer, unless it went out already.
		return ch.c.sendOn(ch, sendClose, appendUint32([]byte{msgChannelClose}, ch.remote))

	case msgChannelRequest:
		req := &Request{Type: r.string(), WantReply: r.bool()}
		req.Payload = append([]byte(nil), r.rest()...)
		if !r.ok() {
			return errState
		}
		req.reply = func(ok bool, _ []byte) error {
			m := byte(msgChannelFailure)
			if ok {
				m = msgChannelSuccess
			}
			return ch.c.sendOn(ch, sendControl, appendUint32([]byte{m}, ch.remote))
		}
		if ch.reqs == nil || ch.reqsClosed {
			return req.Reply(false, nil)
		}
		ch.reqs <- req

	case msgChannelSuccess, msgChannelFailure:
		ch.mu.Lock()
		if len(ch.replies) == 0 {
			ch.mu.Unlock()
			return errState
		}
		w := ch.replies[0]
		ch.replies = ch.replies[1:]
		ch.mu.Unlock()
		w <- msg == msgChannelSuccess
	}
	return nil
}

// end stops the channel's input on the loop goroutine: mark (under ch.mu)
// records why, reads see EOF once the buffer is drained, requests waiting
// for a reply get none, and the request channel closes.
func (ch *Channel) end(mark func()) {
	ch.mu.Lock()
	mark()
	ch.eof = true
	replies := ch.replies
	ch.replies = nil
	ch.cond.Broadcast()
	ch.mu.Unlock()
	for _, w := range replies {
		close(w)
	}
	if ch.reqs != nil && !ch.reqsClosed {
		ch.reqsClosed = true
		close(ch.reqs)
	}
}

// gone marks the channel dead when the connection ended (loop goroutine).
func (ch *Channel) gone() {
	ch.end(func() { ch.dead = true })
	if ch.opened != nil {
		ch.opened <- io.EOF
		ch.opened = nil
	}
}

// credit counts n bytes as consumed and returns the window adjustment to
// send, if one is due. ch.mu is held.
func (ch *Channel) credit(n uint32) uint32 {
	ch.consumed += n
	if ch.consumed < channelWindow/2 || ch.remoteClosed || ch.dead {
		return 0
	}
	n, ch.consumed = ch.consumed, 0
	ch.lwin += n
	return n
}

func (ch *Channel) adjust(n uint32) error {
	if n == 0 {
		return nil
	}
	p := appendUint32([]byte{msgChannelWindowAdjust}, ch.remote)
	err := ch.c.sendOn(ch, sendControl, appendUint32(p, n))
	if err == io.EOF {
		return nil // closed meanwhile: no more data to make room for
	}
	return err
}

// Read reads channel data; io.EOF after the client's EOF or close.
func (ch *Channel) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	ch.mu.Lock()
	for len(ch.buf) == ch.off && !ch.eof {
		ch.cond.Wait()
	}
	if len(ch.buf) == ch.off {
		ch.mu.Unlock()
		return 0, io.EOF
	}
	n := copy(p, ch.buf[ch.off:])
	ch.off += n
	if ch.off == len(ch.buf) {
		ch.off = 0
		if cap(ch.buf) > maxChannelPacket {
			ch.buf = nil
		} else {
			ch.buf = ch.buf[:0]
		}
	}
	adjust := ch.credit(uint32(n))
	ch.mu.Unlock()
	if adjust > 0 && testHookAdjust != nil {
		testHookAdjust(ch)
	}
	return n, ch.adjust(adjust)
}

// Write sends data, as much at a time as the client's window allows.
func (ch *Channel) Write(p []byte) (int, error) { return ch.write(false, p) }

func (ch *Channel) write(stderr bool, p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		ch.mu.Lock()
		for ch.rwin == 0 && !ch.sentEOF && !ch.sentClose && !ch.dead {
			ch.cond.Wait()
		}
		if ch.sentEOF || ch.sentClose || ch.dead {
			ch.mu.Unlock()
			return written, io.EOF
		}
		n := min(uint32(len(p)), ch.rwin, ch.rmax, maxChannelPacket)
		ch.rwin -= n
		remote := ch.remote
		ch.mu.Unlock()
		var hdr []byte
		if stderr {
			var h [13]byte
			h[0] = msgChannelExtendedData
			binary.BigEndian.PutUint32(h[1:], remote)
			binary.BigEndian.PutUint32(h[5:], 1) // SSH_EXTENDED_DATA_STDERR
			binary.BigEndian.PutUint32(h[9:], n)
			hdr = h[:]
		} else {
			var h [9]byte
			h[0] = msgChannelData
			binary.BigEndian.PutUint32(h[1:], remote)
			binary.BigEndian.PutUint32(h[5:], n)
			hdr = h[:]
		}
		if err := ch.c.sendOn(ch, sendData, hdr, p[:n]); err != nil {
			return written, err
		}
		written += int(n)
		p = p[n:]
	}
	return written, nil
}

// CloseWrite sends EOF.
func (ch *Channel) CloseWrite() error {
	ch.mu.Lock()
	if ch.sentEOF || ch.sentClose || ch.dead {
		ch.mu.Unlock()
		return nil
	}
	ch.sentEOF = true
	ch.cond.Broadcast()
	ch.mu.Unlock()
	return ch.c.sendOn(ch, sendControl, appendUint32([]byte{msgChannelEOF}, ch.remote))
}

// Close closes the channel; reads still return what had arrived.
func (ch *Channel) Close() error {
	ch.mu.Lock()
	dead := ch.dead
	ch.mu.Unlock()
	if dead {
		return nil
	}
	// Data still in flight is credited and dropped from now on.
	return ch.c.sendOn(ch, sendClose, appendUint32([]byte{msgChannelClose}, ch.remote))
}

// SendRequest sends a channel request and, with wantReply, waits for the
// answer.
func (ch *Channel) SendRequest(name string, wantReply bool, payload []byte) (bool, error) {
	p := appendUint32([]byte{msgChannelRequest}, ch.remote)
	p = appendString(p, name)
	p = appendBool(p, wantReply)
	ch.reqMu.Lock()
	var w chan bool
	ch.mu.Lock()
	if ch.sentClose || ch.dead {
		ch.mu.Unlock()
		ch.reqMu.Unlock()
		return false, io.EOF
	}
	if wantReply {
		w = make(chan bool, 1)
		ch.replies = append(ch.replies, w)
	}
	ch.mu.Unlock()
	err := ch.c.sendOn(ch, sendControl, p, payload)
	ch.reqMu.Unlock()
	if err != nil || !wantReply {
		return false, err
	}
	ok, open := <-w
	if !open {
		return false, io.EOF
	}
	return ok, nil
}

// Stderr writes extended data (stderr) to a session; it reads nothing.
func (ch *Channel) Stderr() io.ReadWriter { return stderr{ch} }

type stderr struct{ ch *Channel }

func (s stderr) Read([]byte) (int, error)    { return 0, io.EOF }
func (s stderr) Write(p []byte) (int, error) { return s.ch.write(true, p) }
