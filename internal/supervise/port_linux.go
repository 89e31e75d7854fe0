//go:build linux

package supervise

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PortHolder names the process listening on a TCP port ("pid 123: node
// server.js"), read from /proc; "" when it cannot be told.
func PortHolder(port int) string {
	inodes := map[string]bool{}
	hexPort := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) > 9 && strings.HasSuffix(fields[1], hexPort) && fields[3] == "0A" { // LISTEN
				inodes[fields[9]] = true
			}
		}
	}
	if len(inodes) == 0 {
		return ""
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		link, err := os.Readlink(fd)
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		if inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
			pid := strings.Split(fd, "/")[2]
			cmdline, _ := os.ReadFile("/proc/" + pid + "/cmdline")
			cmd := strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
			if _, err := strconv.Atoi(pid); err == nil {
				return "pid " + pid + ": " + cmd
			}
		}
	}
	return "another process"
}
