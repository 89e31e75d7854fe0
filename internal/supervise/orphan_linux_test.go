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
	if os.Getenv("POMDEV_SUPERVISE_HELPER") == "1" {
		p := New(Spec{Name: "child", Command: "exec sleep 600"}, func(e Event) {
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
