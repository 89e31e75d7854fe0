package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// ErrOutputClosed is the cause of a run's cancellation when the reader of
// pomdev's stdout or stderr went away (`pomdev up | head -1`).
var ErrOutputClosed = errors.New("output closed (the reader of stdout or stderr went away)")

// SignalError is the cause of a run's cancellation by a signal.
type SignalError struct{ Signal os.Signal }

func (e *SignalError) Error() string { return "received " + signalName(e.Signal) }

func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	}
	return s.String()
}

// stopSignals cancels ctx, with a *SignalError as its cause, on Ctrl-C,
// SIGTERM, a closed terminal (SIGHUP) or SIGQUIT: each stops pomdev
// cleanly, with its child processes, instead of killing it and leaving them
// running.
//
// SIGPIPE is different. Once a program asks for SIGPIPE, Go delivers it for
// a broken write on any descriptor, so a network peer that resets a
// connection would stop pomdev. Instead SIGPIPE is received and dropped
// (which also keeps the runtime from killing pomdev on a broken stdout), and
// only when the broken descriptor is pomdev's own stdout or stderr does the
// run end, with ErrOutputClosed. A broken socket returns EPIPE to the code
// that wrote to it, which handles it as the peer leaving.
func stopSignals(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	pipes := make(chan os.Signal, 1)
	signal.Notify(pipes, syscall.SIGPIPE)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				cancel(&SignalError{Signal: s})
			case <-pipes:
				if outputClosed() {
					cancel(ErrOutputClosed)
				}
			case <-done:
				return
			}
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		signal.Stop(pipes)
		close(done)
		cancel(nil)
	}
}

// describeStop says why a run was cancelled, for the line pomdev prints as
// it stops ("interrupted (received SIGTERM)").
func describeStop(ctx context.Context) string {
	cause := context.Cause(ctx)
	if cause == nil || cause == context.Canceled {
		return "interrupted"
	}
	return fmt.Sprintf("interrupted (%v)", cause)
}
