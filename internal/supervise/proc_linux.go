//go:build linux

package supervise

import (
	"os/exec"
	"syscall"
)

// setProcAttr starts the child (the shim) in its own process group and
// has the kernel send it SIGTERM when pomdev dies, whatever the cause; the
// shim then ends the whole group (shim_linux.go).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

func command(c string) *exec.Cmd { return shimCommand(c) }
