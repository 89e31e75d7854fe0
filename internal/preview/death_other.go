//go:build !linux && !windows

package preview

import "syscall"

func setDeathSignal(*syscall.SysProcAttr) {}
