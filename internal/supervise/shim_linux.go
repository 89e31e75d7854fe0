//go:build linux

package supervise

import (
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The shim keeps the no-orphan promise when pomdev itself is SIGKILLed:
// the kernel's parent-death signal reaches only a direct child, so pomdev
// runs each command through a copy of itself (POMDEV_SHIM=1) that leads
// the process group, receives SIGTERM when pomdev dies, and then ends the
// whole group — grandchildren included (npm → node → esbuild). It also
// ends what the command left behind when the command exits.
const shimEnv = "POMDEV_SHIM"

// shimGrace is how long the group has between SIGTERM and SIGKILL.
const shimGrace = 5 * time.Second

// ShimMain runs the shim when this process was started as one and never
// returns then; otherwise it returns at once. main (and test binaries that
// supervise) call it first.
func ShimMain() {
	if os.Getenv(shimEnv) != "1" {
		shimReady = true
		return
	}
	os.Exit(runShim(os.Args[1:]))
}

// shimReady says this binary called ShimMain, so a copy of it started
// with POMDEV_SHIM=1 is a shim (and not, say, a test binary running its
// tests again).
var shimReady bool

// shimCommand is how start runs command: through the shim when this
// binary can be re-executed.
func shimCommand(command string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil || !shimReady {
		return shellCommand(command)
	}
	cmd := exec.Command(self, "/bin/sh", "-c", command)
	// Named pomdev whatever the file is called (a binary that dispatches on
	// its name, like a test binary, then runs pomdev's main).
	cmd.Args[0] = "pomdev"
	cmd.Env = []string{shimEnv + "=1", "POMDEV_SHIM_PARENT=" + strconv.Itoa(os.Getpid())}
	return cmd
}

func runShim(argv []string) int {
	if len(argv) == 0 {
		return 2
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	// pomdev may have died before the parent-death signal was armed.
	if ppid := os.Getenv("POMDEV_SHIM_PARENT"); ppid != "" && strconv.Itoa(os.Getppid()) != ppid {
		return 1
	}
	child := exec.Command(argv[0], argv[1:]...)
	child.Stdin, child.Stdout, child.Stderr = os.Stdin, os.Stdout, os.Stderr
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, shimEnv+"=") && !strings.HasPrefix(e, "POMDEV_SHIM_PARENT=") {
			env = append(env, e)
		}
	}
	child.Env = env
	if err := child.Start(); err != nil {
		os.Stderr.WriteString("pomdev: " + err.Error() + "\n")
		return 127
	}
	done := make(chan struct{})
	var state *os.ProcessState
	go func() {
		state, _ = child.Process.Wait()
		close(done)
	}()
	pgid := syscall.Getpgrp()
	var deadline <-chan time.Time
	for {
		select {
		case <-sigs:
			// pomdev stops the group or has died: pass it on to everyone
			// (this process ignores its own copy), then wait a little.
			if deadline == nil {
				_ = syscall.Kill(-pgid, syscall.SIGTERM)
				deadline = time.After(shimGrace)
			}
			continue
		case <-deadline:
			killGroupButMe(pgid)
			<-done
		case <-done:
		}
		break
	}
	// Whatever the command left behind in its group goes with it.
	killGroupButMe(pgid)
	ws, _ := state.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		signal.Reset()
		_ = syscall.Kill(os.Getpid(), ws.Signal())
		time.Sleep(time.Second) // the signal ends the process
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// killGroupButMe SIGKILLs every process of group pgid except this one
// (read from /proc: a kill of the whole group would end the shim before it
// reports the command's status).
func killGroupButMe(pgid int) {
	me := os.Getpid()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == me {
			continue
		}
		if g, err := syscall.Getpgid(pid); err == nil && g == pgid {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
