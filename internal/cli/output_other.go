//go:build !unix

package cli

// outputClosed is never true where there is no SIGPIPE.
func outputClosed() bool { return false }
