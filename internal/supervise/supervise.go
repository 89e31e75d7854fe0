// Package supervise runs the child processes of `pomdev up`: each in its
// own process group with its environment and directory, output captured
// line by line into a ring buffer, readiness by port and/or health URL,
// restarts after crashes with exponential backoff (1 s to 30 s) and on
// request, and stopping by signalling the group, waiting a grace period,
// then killing it. On Linux children get a parent-death signal so even a
// killed pomdev leaves no orphans.
package supervise

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/pomdev/pomdev/internal/backoff"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Restart policies.
const (
	OnFailure = "on-failure"
	Always    = "always"
	Never     = "never"
)

// Spec describes one process.
type Spec struct {
	Name         string
	Command      string // run by the shell
	Dir          string
	Env          []string // added to the inherited environment
	Port         int      // readiness: accepts TCP on 127.0.0.1:Port
	Health       string   // readiness: answers 2xx
	ReadyTimeout time.Duration
	Restart      string
	Grace        time.Duration // between SIGTERM and SIGKILL (5 s)
	BackoffMin   time.Duration // first restart delay after a crash (1 s)
	BackoffMax   time.Duration // (30 s)
}

// Event kinds.
const (
	Started    = "started"
	Ready      = "ready"
	NotReady   = "not-ready"
	Output     = "output"
	Exited     = "exited"
	Restarting = "restarting"
	CrashLoop  = "crash-loop"
	Stopped    = "stopped"
)

// Event is something a process did.
type Event struct {
	Process string
	Kind    string
	PID     int
	Line    string // Output
	Code    int    // Exited: exit code (-1 for a signal)
	Cause   string // Restarting: why
	// Output is, for Exited with a non-zero code, the run's first
	// error-looking lines (else its last ones), joined by " | ".
	Output string
	Wait   time.Duration
	Err    error
}

// Process supervises one Spec.
type Process struct {
	spec    Spec
	emit    func(Event)
	restart chan string

	mu       sync.Mutex
	pid      int
	restarts int
	ring     []string
	ringNext int
	added    int // lines ever added
	runStart int // added when the current run started
}

const ringSize = 200

// New returns a Process; onEvent receives its events (it must not block).
func New(spec Spec, onEvent func(Event)) *Process {
	if spec.Restart == "" {
		spec.Restart = OnFailure
	}
	if spec.Grace <= 0 {
		spec.Grace = 5 * time.Second
	}
	if spec.BackoffMin <= 0 {
		spec.BackoffMin = time.Second
	}
	if spec.BackoffMax <= 0 {
		spec.BackoffMax = 30 * time.Second
	}
	if spec.ReadyTimeout <= 0 {
		spec.ReadyTimeout = 60 * time.Second
	}
	if onEvent == nil {
		onEvent = func(Event) {}
	}
	return &Process{spec: spec, emit: onEvent, restart: make(chan string, 1)}
}

// PID is the running child's pid, 0 when none.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// Restarts counts restarts so far.
func (p *Process) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// Lines returns the last lines of output, oldest first.
func (p *Process) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for i := 0; i < len(p.ring); i++ {
		out = append(out, p.ring[(p.ringNext+i)%len(p.ring)])
	}
	return out
}

func (p *Process) addLine(l string) {
	p.mu.Lock()
	p.added++
	if len(p.ring) < ringSize {
		p.ring = append(p.ring, l)
		p.ringNext = 0
	} else {
		p.ring[p.ringNext] = l
		p.ringNext = (p.ringNext + 1) % ringSize
	}
	p.mu.Unlock()
	p.emit(Event{Process: p.spec.Name, Kind: Output, Line: l})
}

// Restart asks for a restart (a watched file changed, the user pressed r).
func (p *Process) Restart(cause string) {
	select {
	case p.restart <- cause:
	default: // one is pending already
	}
}

// Run keeps the process running until ctx ends, then stops it (group
// SIGTERM, grace, SIGKILL) and returns.
func (p *Process) Run(ctx context.Context) error {
	delays := &backoff.Backoff{Min: p.spec.BackoffMin, Max: p.spec.BackoffMax}
	crashes := 0 // quick exits in a row; requested restarts do not count
	for {
		started := time.Now()
		cmd, waitc, err := p.start()
		if err != nil {
			return fmt.Errorf("%s: %w", p.spec.Name, err)
		}
		readyCtx, cancelReady := context.WithCancel(ctx)
		go p.waitReady(readyCtx, cmd.Process.Pid)
		var cause string
		announce := false // a requested restart, reported with its cause
		select {
		case <-ctx.Done():
			cancelReady()
			p.stop(cmd, waitc)
			p.emit(Event{Process: p.spec.Name, Kind: Stopped, PID: cmd.Process.Pid})
			return nil
		case cause = <-p.restart:
			cancelReady()
			p.stop(cmd, waitc)
			delays.Reset()
			crashes = 0
			announce = true
		case exit := <-waitc:
			cancelReady()
			code := exitCode(exit)
			ev := Event{Process: p.spec.Name, Kind: Exited, PID: cmd.Process.Pid, Code: code, Err: exit}
			if code != 0 {
				ev.Output = strings.Join(ErrorLines(p.runLines(), 3), " | ")
			}
			p.emit(ev)
			if p.spec.Restart == Never || (p.spec.Restart == OnFailure && code == 0) {
				p.setPID(0)
				// Wait for a requested restart or the end.
				select {
				case <-ctx.Done():
					return nil
				case cause = <-p.restart:
					announce = true
				}
				break
			}
			if time.Since(started) > time.Minute {
				delays.Reset()
			}
			if time.Since(started) < 10*time.Second {
				crashes++
			} else {
				crashes = 0
			}
			if crashes > 3 {
				p.emit(Event{Process: p.spec.Name, Kind: CrashLoop, Wait: delays.Peek(),
					Cause: fmt.Sprintf("exited with %d again; output: %s", code, strings.Join(ErrorLines(p.runLines(), 3), " | "))})
			}
			cause = fmt.Sprintf("exited with code %d", code)
			wait := delays.Next()
			p.emit(Event{Process: p.spec.Name, Kind: Restarting, Cause: cause, Wait: wait})
			select {
			case <-ctx.Done():
				return nil
			case cause = <-p.restart:
				announce = true
			case <-time.After(wait):
			}
		}
		p.mu.Lock()
		p.restarts++
		p.mu.Unlock()
		if announce {
			p.emit(Event{Process: p.spec.Name, Kind: Restarting, Cause: cause})
		}
	}
}

// runLines are the lines of the current (or last) run that the ring
// still holds.
func (p *Process) runLines() []string {
	lines := p.Lines()
	p.mu.Lock()
	n := p.added - p.runStart
	p.mu.Unlock()
	return lastN(lines, n)
}

// errorLine matches lines that say what went wrong, in the words of Node,
// esbuild/tsx, Go, Python and shells; stack frames do not.
var errorLine = regexp.MustCompile(`(?i)(error\b|\bERR!|exception|panic:|fatal|cannot find|not found|failed|EADDRINUSE|✘)`)

// stackFrame matches a stack trace's frames (Node's "at …", Go's
// "\tfile.go:12", Python's "  File …").
var stackFrame = regexp.MustCompile(`^\s+(at |File "|[\w./-]+\.go:\d+)`)

// ErrorLines picks up to n lines that say what went wrong: the first
// error-looking ones (a crash's cause comes before its stack), else the
// last ones.
func ErrorLines(lines []string, n int) []string {
	var out []string
	for _, l := range lines {
		if len(out) == n {
			break
		}
		if errorLine.MatchString(l) && !stackFrame.MatchString(l) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	if len(out) > 0 {
		return out
	}
	return lastN(lines, n)
}

func lastN(l []string, n int) []string {
	if len(l) > n {
		return l[len(l)-n:]
	}
	return l
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

func (p *Process) setPID(pid int) {
	p.mu.Lock()
	p.pid = pid
	p.mu.Unlock()
}

// start launches the command in its own process group.
func (p *Process) start() (*exec.Cmd, chan error, error) {
	cmd := command(p.spec.Command)
	cmd.Dir = p.spec.Dir
	cmd.Env = append(append(os.Environ(), p.spec.Env...), cmd.Env...)
	setProcAttr(cmd)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pw.Close()
		return nil, nil, err
	}
	p.setPID(cmd.Process.Pid)
	p.mu.Lock()
	p.runStart = p.added
	p.mu.Unlock()
	p.emit(Event{Process: p.spec.Name, Kind: Started, PID: cmd.Process.Pid})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.addLine(sc.Text())
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	waitc := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.Close()
		waitc <- err
	}()
	return cmd, waitc, nil
}

// stop signals the group, waits the grace period, then kills the group.
func (p *Process) stop(cmd *exec.Cmd, waitc chan error) {
	terminateGroup(cmd)
	select {
	case <-waitc:
	case <-time.After(p.spec.Grace):
		killGroup(cmd)
		<-waitc
	}
	p.setPID(0)
}

// waitReady polls the port and health URL until both answer, reporting
// Ready, or NotReady with the last output lines after ReadyTimeout.
func (p *Process) waitReady(ctx context.Context, pid int) {
	if p.spec.Port == 0 && p.spec.Health == "" {
		return
	}
	deadline := time.Now().Add(p.spec.ReadyTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		ok := true
		if p.spec.Port != 0 {
			c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.spec.Port)), time.Second)
			if err != nil {
				ok = false
			} else {
				c.Close()
			}
		}
		if ok && p.spec.Health != "" {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.spec.Health, nil)
			resp, err := client.Do(req)
			if err != nil || resp.StatusCode/100 != 2 {
				ok = false
			}
			if resp != nil {
				resp.Body.Close()
			}
		}
		if ok {
			p.emit(Event{Process: p.spec.Name, Kind: Ready, PID: pid})
			return
		}
		if time.Now().After(deadline) {
			p.emit(Event{Process: p.spec.Name, Kind: NotReady, PID: pid,
				Err: fmt.Errorf("not ready after %s; last output:\n%s", p.spec.ReadyTimeout, strings.Join(lastN(p.Lines(), 10), "\n"))})
			return
		}
		// Poll quickly at first (most servers start in well under a
		// second), then every 100 ms.
		interval := 100 * time.Millisecond
		if time.Until(deadline) > p.spec.ReadyTimeout-2*time.Second {
			interval = 20 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
