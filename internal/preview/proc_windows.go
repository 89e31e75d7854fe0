package preview

import "os/exec"

func ownGroup(cmd *exec.Cmd) {}

func asRoot() bool { return false }
