//go:build linux

package supervise

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// When POMDEV_SUPERVISE_HELPER is set, the test binary acts as a tiny
// pomdev: it supervises one child and prints the child's pid.
func TestMain(m *testing.M) {
	ShimMain()
	if os.Getenv("POMDEV_SUPERVISE_HELPER") == "1" {
		command := os.Getenv("POMDEV_SUPERVISE_COMMAND")
		if command == "" {
			command = "exec sleep 600"
		}
		p := New(Spec{Name: "child", Command: command}, func(e Event) {
			if e.Kind == Started {
				fmt.Println("child", e.PID)
			}
		})
		_ = p.Run(context.Background())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A SIGKILLed supervisor leaves no orphan: the kernel kills the child
// (parent-death signal).
func TestNoOrphanAfterSIGKILL(t *testing.T) {
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), "POMDEV_SUPERVISE_HELPER=1")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	pid := 0
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "child" {
			pid, _ = strconv.Atoi(f[1])
			break
		}
	}
	if pid == 0 || !alive(pid) {
		t.Fatalf("child pid %d not running", pid)
	}
	_ = helper.Process.Kill()
	_ = helper.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		// A zombie (reaped by init later) no longer runs; check its state.
		if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d outlived its SIGKILLed supervisor", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A SIGKILLed supervisor leaves nothing of a three-level tree (shell →
// shell → sleep, in the child's process group): the shim that leads the
// group gets the parent-death signal and ends the group.
func TestNoOrphanTreeAfterSIGKILL(t *testing.T) {
	dir := t.TempDir()
	cmd := `echo $$ > ` + dir + `/1; sh -c 'echo $$ > ` + dir + `/2; sleep 600 & echo $! > ` + dir + `/3; wait' & wait`
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), "POMDEV_SUPERVISE_HELPER=1", "POMDEV_SUPERVISE_COMMAND="+cmd)
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	var pids []int
	deadline := time.Now().Add(10 * time.Second)
	for len(pids) < 3 {
		pids = pids[:0]
		for _, f := range []string{"1", "2", "3"} {
			b, err := os.ReadFile(dir + "/" + f)
			if n, err2 := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && err2 == nil {
				pids = append(pids, n)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the tree never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("pid %d not running", pid)
		}
	}
	_ = helper.Process.Kill()
	_ = helper.Wait()
	deadline = time.Now().Add(15 * time.Second)
	for _, pid := range pids {
		for running(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d (level %d of the tree) outlived its SIGKILLed supervisor", pid, slicesIndex(pids, pid)+1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// running is alive and not a zombie.
func running(pid int) bool {
	if !alive(pid) {
		return false
	}
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(st), ") Z ")
}

func slicesIndex(s []int, v int) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
