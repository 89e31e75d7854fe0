//go:build unix && !linux

package supervise

import (
	"os/exec"
	"syscall"
)

// setProcAttr starts the child in its own process group (no parent-death
// signal outside Linux).
func setProcAttr(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// command runs c with the shell; outside Linux there is no shim (see
// docs/ARCHITECTURE.md for what holds there).
func command(c string) *exec.Cmd { return shellCommand(c) }

// ShimMain does nothing outside Linux.
func ShimMain() {}
