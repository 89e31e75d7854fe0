//go:build windows

package supervise

import "os/exec"

func shellCommand(command string) *exec.Cmd { return exec.Command("cmd", "/C", command) }

func setProcAttr(cmd *exec.Cmd) {}

// terminateGroup: Windows has no process-group signals; kill the process.
func terminateGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }

func killGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }

func command(c string) *exec.Cmd { return shellCommand(c) }

// ShimMain does nothing on Windows.
func ShimMain() {}
