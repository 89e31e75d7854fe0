//go:build unix && !linux

package supervise

import (
	"os/exec"
	"syscall"
)

// setProcAttr starts the child in its own process group (no parent-death
// signal outside Linux).
func setProcAttr(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }
