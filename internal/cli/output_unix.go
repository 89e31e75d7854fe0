//go:build unix

package cli

import "golang.org/x/sys/unix"

// outputClosed reports whether stdout or stderr can no longer be written:
// the write end of a pipe whose reader is gone, or a socket shut down,
// polls as an error or a hangup.
func outputClosed() bool {
	fds := []unix.PollFd{{Fd: 1, Events: unix.POLLOUT}, {Fd: 2, Events: unix.POLLOUT}}
	n, err := unix.Poll(fds, 0)
	if err != nil || n == 0 {
		return false
	}
	for _, f := range fds {
		if f.Revents&(unix.POLLERR|unix.POLLHUP) != 0 && f.Revents&unix.POLLNVAL == 0 {
			return true
		}
	}
	return false
}
