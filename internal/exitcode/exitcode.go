// Package exitcode owns pomdev's process exit codes and the typed errors
// that carry them from deep inside a command up to cli.Main.
//
// The codes are part of pomdev's public interface (scripts and CI depend on
// them) and are documented in `pomdev help exit-codes` and the README.
// `pomdev inspect` uses the same codes as the official MCP Inspector CLI.
package exitcode

import (
	"context"
	"errors"
	"fmt"
)

// Exit codes returned by pomdev.
const (
	OK           = 0   // success
	Failure      = 1   // the command failed (lint errors in inspect)
	Usage        = 2   // bad flags, arguments or configuration
	AuthRequired = 3   // the server or relay wants a sign-in or a token
	Unreachable  = 4   // network, transport or protocol failure reaching a peer
	ToolError    = 5   // a called MCP tool reported an error
	Interrupted  = 130 // stopped by Ctrl-C or SIGTERM
)

// Table lists every code with a one-line meaning, in order. It feeds the
// `pomdev help exit-codes` topic so the documentation cannot drift from the
// constants.
var Table = []struct {
	Code    int
	Meaning string
}{
	{OK, "success"},
	{Failure, "the command failed (for inspect: lint errors, or warnings with --strict; for preview --check: a problem in the widget)"},
	{Usage, "usage error: unknown command or flag, bad argument, invalid configuration"},
	{AuthRequired, "authentication required: sign in, log in (inspect --login) or pass a token"},
	{Unreachable, "unreachable: connection refused, DNS, TLS, timeout or a peer speaking garbage"},
	{ToolError, "the MCP tool called with inspect --call (or by preview --check) returned an error"},
	{Interrupted, "interrupted by Ctrl-C, SIGTERM, SIGHUP or SIGQUIT, or its output closed (a reader gone from a pipe)"},
}

// Error is an error with an exit code and an optional hint telling the user
// what to do next.
type Error struct {
	Code int
	Err  error
	Hint string
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *Error) Unwrap() error { return e.Err }

// New wraps err with code and hint. A nil err gives nil.
func New(code int, err error, hint string) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err, Hint: hint}
}

// Usagef returns a usage error (exit code 2).
func Usagef(format string, args ...any) error {
	return &Error{Code: Usage, Err: fmt.Errorf(format, args...)}
}

// Code maps err to the exit code pomdev should return: the code of the
// outermost *Error in the chain, else of the first error with an
// ExitCode() int method, Interrupted for a cancelled context, and
// Failure for anything else.
func Code(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var c interface{ ExitCode() int }
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	if errors.Is(err, context.Canceled) {
		return Interrupted
	}
	return Failure
}

// Hint returns the hint of the outermost *Error in the chain that has one.
func Hint(err error) string {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return ""
		}
		if e.Hint != "" {
			return e.Hint
		}
		err = e.Err
	}
	return ""
}
