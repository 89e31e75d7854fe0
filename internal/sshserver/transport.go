package sshserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// rekeyBytes is how much may pass in one direction before the server asks
// for new keys (RFC 4253 §9 recommends 1 GB). Tests lower it.
var rekeyBytes uint64 = 1 << 30

// readBufSize is the pooled read buffer: big enough for a full channel
// data packet (maxChannelPacket) and what follows it in one read.
const readBufSize = 64 << 10

var readPool = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// reader reads packets from the connection. It holds a pooled buffer only
// while bytes are waiting in it: an idle connection blocks in a 4-byte read
// and owns no buffer at all.
type reader struct {
	nc   net.Conn
	pb   *[]byte // pooled buffer, nil while idle
	buf  []byte  // *pb, or a larger one-off buffer
	r, w int
	hdr  [4]byte
	have bool // hdr holds the next packet's first bytes
}

// release gives the buffer back when nothing is left in it.
func (rd *reader) release() {
	if rd.buf != nil && rd.r == rd.w {
		if rd.pb != nil {
			readPool.Put(rd.pb)
		}
		rd.pb, rd.buf, rd.r, rd.w = nil, nil, 0, 0
	}
}

// fill makes n bytes available at buf[r:].
func (rd *reader) fill(n int) error {
	if rd.w-rd.r >= n {
		return nil
	}
	if rd.buf == nil {
		rd.pb = readPool.Get().(*[]byte)
		rd.buf = *rd.pb
	}
	if n > len(rd.buf) {
		nb := make([]byte, n)
		rd.w = copy(nb, rd.buf[rd.r:rd.w])
		rd.r = 0
		if rd.pb != nil {
			readPool.Put(rd.pb)
			rd.pb = nil
		}
		rd.buf = nb
	} else if rd.r+n > len(rd.buf) {
		rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
		rd.r = 0
	}
	for rd.w-rd.r < n {
		m, err := rd.nc.Read(rd.buf[rd.w:])
		rd.w += m
		if err != nil && rd.w-rd.r < n {
			if err == io.EOF && rd.w > rd.r {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// await waits for the next packet's first 4 bytes without holding a
// buffer.
func (rd *reader) await() error {
	rd.release()
	if rd.buf != nil || rd.have {
		return nil
	}
	if _, err := io.ReadFull(rd.nc, rd.hdr[:]); err != nil {
		return err
	}
	rd.have = true
	return nil
}

// header reads the 4 bytes that carry packet_length.
func (rd *reader) header() ([]byte, error) {
	if rd.have {
		rd.have = false
		return rd.hdr[:], nil
	}
	rd.release()
	if rd.buf == nil {
		if _, err := io.ReadFull(rd.nc, rd.hdr[:]); err != nil {
			return nil, err
		}
		return rd.hdr[:], nil
	}
	if err := rd.fill(4); err != nil {
		return nil, err
	}
	copy(rd.hdr[:], rd.buf[rd.r:])
	rd.r += 4
	return rd.hdr[:], nil
}

// line reads the client's identification string (RFC 4253 §4.2), which
// may follow other lines.
func (rd *reader) line() ([]byte, error) {
	const maxLine = 255
	for lines := 0; lines < 64; lines++ {
		var line []byte
		for {
			if err := rd.fill(1); err != nil {
				return nil, err
			}
			b := rd.buf[rd.r]
			rd.r++
			if b == '\n' {
				break
			}
			if len(line) == maxLine {
				return nil, errors.New("ssh: identification line too long")
			}
			line = append(line, b)
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) >= 4 && string(line[:4]) == "SSH-" {
			return line, nil
		}
	}
	return nil, errors.New("ssh: no identification string")
}

// readPacket returns the next packet's payload, which stays valid until the
// next call.
func (c *Conn) readPacket() ([]byte, error) {
	rd := &c.rd
	hdr, err := rd.header()
	if err != nil {
		return nil, err
	}
	bs, tag := 8, 0
	var length uint32
	if c.rcipher == nil {
		length = binary.BigEndian.Uint32(hdr)
		if (length+4)%uint32(bs) != 0 {
			return nil, errors.New("ssh: packet length not a multiple of the block size")
		}
	} else {
		bs, tag = c.rcipher.blockSize(), tagSize
		length = c.rcipher.length(c.rseq, hdr)
		if length%uint32(bs) != 0 {
			return nil, errors.New("ssh: packet length not a multiple of the block size")
		}
	}
	if length < 8 || length > maxPacket {
		return nil, fmt.Errorf("ssh: invalid packet length %d", length)
	}
	n := int(length) + tag
	if err := rd.fill(n); err != nil {
		return nil, err
	}
	body := rd.buf[rd.r : rd.r+n]
	rd.r += n
	plain := body
	if c.rcipher != nil {
		if plain, err = c.rcipher.open(c.rseq, hdr, body); err != nil {
			return nil, err
		}
	}
	pad := int(plain[0])
	if pad < 4 || 1+pad >= len(plain) {
		return nil, errors.New("ssh: invalid padding")
	}
	c.rseq++
	c.rbytes += uint64(length)
	return plain[1 : len(plain)-pad], nil
}

// writePool holds packet buffers: a full data packet and the overhead.
var writePool = sync.Pool{New: func() any { b := make([]byte, 0, maxChannelPacket+128); return &b }}

// writeLocked sends one packet whose payload is parts concatenated. c.wmu
// is held.
func (c *Conn) writeLocked(parts ...[]byte) error {
	if c.werr != nil {
		return c.werr
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	bs, lenInBlock := 8, 4
	if c.wcipher != nil {
		bs, lenInBlock = c.wcipher.blockSize(), 0
	}
	pad := bs - (lenInBlock+1+n)%bs
	if pad < 4 {
		pad += bs
	}
	length := 1 + n + pad
	pb := writePool.Get().(*[]byte)
	pkt := *pb
	if cap(pkt) < 4+length+tagSize {
		pkt = make([]byte, 0, 4+length+tagSize)
	}
	pkt = binary.BigEndian.AppendUint32(pkt[:0], uint32(length))
	pkt = append(pkt, byte(pad))
	for _, p := range parts {
		pkt = append(pkt, p...)
	}
	var zero [32]byte
	pkt = append(pkt, zero[:pad]...)
	if c.wcipher != nil {
		pkt = c.wcipher.seal(c.wseq, pkt)
	}
	_, err := c.nc.Write(pkt)
	if cap(pkt) <= maxChannelPacket+128 {
		*pb = pkt[:0]
		writePool.Put(pb)
	}
	c.wseq++
	c.wbytes += uint64(length)
	if err != nil {
		c.werr = err
		return err
	}
	if c.wbytes > rekeyBytes && !c.kexing && c.sessionID != nil {
		return c.startKexLocked()
	}
	return nil
}

// send writes a control message from any goroutine. During a key exchange
// it is queued and sent right after the new keys are in use, so the loop
// goroutine (which runs the exchange) never waits on itself.
func (c *Conn) send(parts ...[]byte) error { return c.sendOn(nil, sendControl, parts...) }

// How sendOn treats a message about a channel.
const (
	sendControl = iota // queued during a key exchange
	sendData           // waits for a key exchange to end
	sendClose          // the channel's CLOSE: nothing about it follows
)

// sendOn writes a message, about channel ch if it is not nil. Under the
// write lock it checks that ch has not been closed on our side, so no
// message about a channel can follow its CLOSE, whichever goroutine sends
// them (the peer would take that for a protocol error).
func (c *Conn) sendOn(ch *Channel, kind int, parts ...[]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for kind == sendData && c.kexing && c.werr == nil {
		c.wcond.Wait()
	}
	if ch != nil {
		ch.mu.Lock()
		closed := ch.sentClose
		if kind == sendClose {
			ch.sentClose = true
			ch.cond.Broadcast()
		}
		ch.mu.Unlock()
		if closed {
			if kind == sendClose {
				return nil
			}
			return io.EOF
		}
	}
	if c.kexing && c.werr == nil {
		var p []byte
		for _, part := range parts {
			p = append(p, part...)
		}
		c.pending = append(c.pending, p)
		return nil
	}
	return c.writeLocked(parts...)
}
