//go:build linux

package supervise

import (
	"os/exec"
	"syscall"
)

// setProcAttr starts the child in its own process group and has the
// kernel send it SIGKILL when pomdev dies, whatever the cause.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
