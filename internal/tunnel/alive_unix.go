//go:build unix

package tunnel

import (
	"errors"
	"net"
	"syscall"
)

// idleAlive reports whether an idle connection is still open, with one
// non-blocking read: EAGAIN means open and quiet; end of file (the target
// closed it, as a restarting server does) or unasked bytes mean unusable.
// A read deadline cannot do this: Go reports an expired deadline without
// trying the read.
func idleAlive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var buf [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, rerr := syscall.Read(int(fd), buf[:])
		alive = errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK)
		return true // one try, never wait
	})
	return err == nil && alive
}
