package devloop

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/supervise"
)

// ConfigError is an app that cannot be run as it is described (nothing
// to run, no inline settings for --inline, a pomdev.yaml in the way).
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func configErrorf(format string, args ...any) error {
	return &ConfigError{Err: fmt.Errorf(format, args...)}
}

// PortInUseError is a process's port that another process holds.
type PortInUseError struct {
	Port    int
	Process string
	Holder  string // "node (pid 123)", or "another process"
}

func (e *PortInUseError) Error() string {
	return fmt.Sprintf("port %d of %s is already in use by %s", e.Port, e.Process, e.Holder)
}

// Prepared is what a session runs: the app with its processes resolved,
// and what Prepare found on the way (Assumed, Inline, MissingModules),
// to report before the session starts.
type Prepared struct {
	App    *config.Loaded
	Events []Event
}

// Prepare resolves the processes of app (from package.json when
// pomdev.yaml has none; their inline settings with inline) and checks
// that they can start: every declared port free. app is not changed.
func Prepare(app *config.Loaded, inline bool) (*Prepared, error) {
	p := &Prepared{App: app}
	if len(app.Processes) == 0 {
		procs, assumed, err := discoverIn(app.Dir)
		if err != nil {
			return nil, err
		}
		copied := *app
		copied.Processes = procs
		p.App = &copied
		p.Events = append(p.Events, Assumed{Summary: assumed})
	}
	if inline {
		copied := *p.App
		copied.Processes = make([]config.Process, len(p.App.Processes))
		changed := false
		for i, proc := range p.App.Processes {
			copied.Processes[i] = proc.ForInline()
			changed = changed || proc.Inline.Command != "" || len(proc.Inline.Env) > 0
		}
		if !changed {
			return nil, configErrorf("--inline: no process has inline settings; add them to pomdev.yaml (see pomdev help config), for example inline: {env: {INLINE: \"1\"}} on the server")
		}
		p.App = &copied
		p.Events = append(p.Events, Inline{})
	}
	if dir := missingNodeModules(p.App); dir != "" {
		p.Events = append(p.Events, MissingModules{Dir: dir})
	}
	for _, proc := range p.App.Processes {
		if proc.Port == 0 {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(proc.Port)))
		if err != nil {
			holder := supervise.PortHolder(proc.Port)
			if holder == "" {
				holder = "another process"
			}
			return nil, &PortInUseError{Port: proc.Port, Process: proc.Name, Holder: holder}
		}
		ln.Close()
	}
	return p, nil
}

// discoverIn is discover with the errors of an app that has nothing to
// run.
func discoverIn(dir string) ([]config.Process, string, error) {
	procs, assumed, err := discover(dir)
	if err != nil {
		return nil, "", &ConfigError{Err: err}
	}
	if len(procs) == 0 {
		_, errYAML := os.Stat(filepath.Join(dir, config.FileName))
		_, errPkg := os.Stat(filepath.Join(dir, "package.json"))
		if errYAML != nil && errPkg != nil {
			return nil, "", configErrorf("nothing to run in %s: no pomdev.yaml and no package.json (create an app with pomdev init, or describe your processes in a pomdev.yaml: pomdev help config)", dir)
		}
		return nil, "", configErrorf("no processes to run: pomdev.yaml has none and package.json has no dev:server/dev:widgets or dev script (see pomdev help config; pomdev init writes one)")
	}
	return procs, assumed, nil
}

// WriteConfig saves the processes assumed from package.json as the app's
// pomdev.yaml and returns its path; never over an existing file.
func WriteConfig(app *config.Loaded) (string, error) {
	if len(app.Processes) > 0 {
		return "", configErrorf("%s already describes the processes; --write-config only writes a new one", app.ProjectFile)
	}
	procs, _, err := discoverIn(app.Dir)
	if err != nil {
		return "", err
	}
	return writeConfig(app.Dir, procs)
}

// missingNodeModules returns the first directory among the app's and its
// processes' that has a package.json and no node_modules (npm workspaces
// install into the app's), or "".
func missingNodeModules(cfg *config.Loaded) string {
	dirs := []string{cfg.Dir}
	for _, p := range cfg.Processes {
		if p.Dir != "" {
			dirs = append(dirs, filepath.Join(cfg.Dir, p.Dir))
		}
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "package.json")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "node_modules")); err == nil {
			return ""
		}
		if d == cfg.Dir {
			return d
		}
		// A workspace package: the app's node_modules serves it.
		if _, err := os.Stat(filepath.Join(cfg.Dir, "node_modules")); err != nil {
			return d
		}
	}
	return ""
}

// missingModules reports crash output that says npm packages are not
// installed.
func missingModules(output string) bool {
	for _, s := range []string{"ERR_MODULE_NOT_FOUND", "Cannot find module", "Cannot find package", ": not found", "command not found"} {
		if strings.Contains(output, s) {
			return true
		}
	}
	return false
}
