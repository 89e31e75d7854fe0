//go:build !windows

package preview

import (
	"os"
	"os/exec"
	"syscall"
)

// ownGroup puts the browser in its own process group and makes the
// command's cancellation kill the whole group (its renderers too). On
// Linux the browser also gets SIGKILL if pomdev dies (kill -9), so no
// headless browser outlives it.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// asRoot: Chromium refuses to run as root without --no-sandbox.
func asRoot() bool { return os.Geteuid() == 0 }
