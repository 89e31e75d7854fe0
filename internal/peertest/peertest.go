// Package peertest is test support for the tests that run against real
// peers (npm packages, Node, OpenSSH): a peer that is missing fails the
// test in CI, where .ci/run installs every one, and skips it elsewhere.
package peertest

import (
	"fmt"
	"os"
	"testing"
)

// Missing reports a peer that is not there: fatal in CI, a skip elsewhere.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; .ci/run installs it", msg)
	}
	t.Skip(msg)
}

// Env returns the environment variable name that points at a peer, or
// reports it Missing (install says how to get the peer).
func Env(t testing.TB, name, install string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Missing(t, "%s is not set (%s)", name, install)
	}
	return v
}
