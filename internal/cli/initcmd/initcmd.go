// Package initcmd implements `pomdev init`: scaffold an app from an
// embedded template, install its packages and make the first commit.
package initcmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/pomdev/pomdev/internal/scaffold"
	"github.com/pomdev/pomdev/templates"
	"github.com/spf13/cobra"
)

// Options are the inputs of Run.
type Options struct {
	IO        *iostreams.IOStreams
	Ctx       context.Context
	Dir       string
	Name      string
	Template  string
	List      bool
	NoInstall bool
	NoGit     bool
	Force     bool
	// LookPath finds node, npm and git (exec.LookPath; tests replace it).
	LookPath func(string) (string, error)
}

// NewCmdInit returns the init command; runF replaces Run in tests.
func NewCmdInit(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Create an MCP app from a template (server, widgets, tests, pomdev.yaml)",
		Long: `Create an MCP app in DIR (default: the current directory) from an embedded
template, run npm install and make a first git commit, then print the next
steps. DIR must not exist or be empty; --force adds the template's files to a
non-empty directory but never overwrites a file (conflicts are listed and
nothing is written). The app's name defaults to DIR's base name and must be
a valid npm package name.

The files are written to a temporary directory beside DIR and moved into
place at the end, so a failure or Ctrl-C leaves nothing half-written.

npm install prefers npm's cache (--prefer-offline): once the template's
packages were installed, an app can be made offline. When the registry cannot
be reached and the cache lacks a package, init says so (exit 4) and leaves the
files in place.`,
		Example: `  pomdev init my-app
  pomdev init my-app --no-install --no-git
  pomdev init --list`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IO, opts.Ctx = f.IOStreams, cmd.Context()
			opts.Dir = "."
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			opts.LookPath = exec.LookPath
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Name, "name", "", "npm package name of the app (default: DIR's base name)")
	fl.StringVarP(&opts.Template, "template", "t", templates.Default, "template to use (see --list)")
	fl.BoolVar(&opts.List, "list", false, "list the templates and exit")
	fl.BoolVar(&opts.NoInstall, "no-install", false, "do not run npm install")
	fl.BoolVar(&opts.NoGit, "no-git", false, "do not create a git repository")
	fl.BoolVar(&opts.Force, "force", false, "allow a non-empty DIR (existing files are never overwritten)")
	return cmd
}

// Run scaffolds the app.
func Run(opts *Options) error {
	out := opts.IO.Out
	cs := opts.IO.ColorScheme()
	if opts.List {
		return list(out)
	}
	fsys, ok := templates.FS(opts.Template)
	if !ok {
		return exitcode.Usagef("no template %q; available: %s", opts.Template, strings.Join(templates.Names(), ", "))
	}
	manifest, err := scaffold.ReadManifest(fsys)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(opts.Dir)
	if err != nil {
		return err
	}
	name := opts.Name
	if name == "" {
		name = filepath.Base(abs)
	}
	if err := scaffold.ValidateName(name); err != nil {
		if opts.Name == "" {
			return exitcode.New(exitcode.Usage, err, "pass --name with a valid npm package name, for example --name my-app")
		}
		return err
	}
	// Node and npm are checked before anything is written.
	if !opts.NoInstall {
		if err := checkTools(opts.Ctx, opts.LookPath, manifest.Requires); err != nil {
			return err
		}
	}

	start := time.Now()
	files, err := scaffold.Render(fsys, abs, scaffold.Data{Name: name}, scaffold.Options{Force: opts.Force})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s Created %s (%s template, %d files) in %s\n", cs.Green("✓"), name, opts.Template, len(files),
		time.Since(start).Round(time.Millisecond))

	if !opts.NoInstall {
		if err := npmInstall(opts, abs); err != nil {
			return err
		}
	}
	if !opts.NoGit {
		gitInit(opts, abs, files)
	}

	rel := opts.Dir
	if r, err := filepath.Rel(".", opts.Dir); err == nil && !strings.HasPrefix(r, "..") {
		rel = r
	}
	fmt.Fprintln(out, "\nNext steps:")
	step := "  "
	if rel != "." {
		fmt.Fprintf(out, "  cd %s\n", rel)
	}
	if opts.NoInstall {
		fmt.Fprintln(out, step+"npm install")
	}
	fmt.Fprintln(out, step+"pomdev up --relay local   # run it, with a local tunnel and the check")
	fmt.Fprintln(out, step+"pomdev up                 # through pom.run: paste <url>/mcp into ChatGPT or Claude")
	fmt.Fprintln(out, step+"npm test                  # the app's tests")
	return nil
}

func list(out io.Writer) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, n := range templates.Names() {
		fsys, _ := templates.FS(n)
		m, err := scaffold.ReadManifest(fsys)
		if err != nil {
			return err
		}
		var req []string
		for _, tool := range []string{"node", "npm"} {
			if v := m.Requires[tool]; v != "" {
				req = append(req, tool+" "+v+"+")
			}
		}
		def := ""
		if n == templates.Default {
			def = " (default)"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\n", n, def, m.Description, strings.Join(req, ", "))
	}
	return tw.Flush()
}

var versionRE = regexp.MustCompile(`(\d+)(?:\.(\d+))?(?:\.(\d+))?`)

// parseVersion reads the first x.y.z in s.
func parseVersion(s string) ([3]int, bool) {
	var v [3]int
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return v, false
	}
	for i := range 3 {
		v[i], _ = strconv.Atoi(m[i+1])
	}
	return v, true
}

// checkTools makes sure node and npm are there and new enough.
func checkTools(ctx context.Context, lookPath func(string) (string, error), requires map[string]string) error {
	for _, tool := range []string{"node", "npm"} {
		min, ok := requires[tool]
		if !ok {
			continue
		}
		path, err := lookPath(tool)
		if err != nil {
			return exitcode.New(exitcode.Failure, fmt.Errorf("%s is not installed (the template needs %s %s or newer)", tool, tool, min),
				"install Node.js (it includes npm) from https://nodejs.org or your package manager, or pass --no-install and install later")
		}
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		got, err := exec.CommandContext(cctx, path, "--version").Output()
		cancel()
		if err != nil {
			return exitcode.New(exitcode.Failure, fmt.Errorf("%s --version failed: %v", path, err), "check your Node.js installation, or pass --no-install")
		}
		have, ok1 := parseVersion(string(got))
		want, ok2 := parseVersion(min)
		if !ok1 || !ok2 {
			return fmt.Errorf("cannot read the version of %s from %q", path, strings.TrimSpace(string(got)))
		}
		if slices.Compare(have[:], want[:]) < 0 {
			return exitcode.New(exitcode.Failure,
				fmt.Errorf("%s %s is too old: the template needs %s %s or newer", tool, strings.TrimSpace(string(got)), tool, min),
				"upgrade Node.js (nvm install --lts, or https://nodejs.org), or pass --no-install and install later")
		}
	}
	return nil
}

// npmInstall runs npm install in dir with a progress line; its output goes
// to a log file that is shown when it fails.
func npmInstall(opts *Options, dir string) error {
	out := opts.IO.Out
	logFile, err := os.CreateTemp("", "pomdev-npm-install-*.log")
	if err != nil {
		return err
	}
	logPath := logFile.Name()
	npm, err := opts.LookPath("npm")
	if err != nil {
		logFile.Close()
		return err
	}
	// --prefer-offline: what npm's cache holds is used without asking the
	// registry again, so an app can be made offline once its packages were
	// installed before.
	cmd := exec.CommandContext(opts.Ctx, npm, "install", "--no-audit", "--no-fund", "--prefer-offline")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.WaitDelay = 5 * time.Second

	start := time.Now()
	tty := opts.IO.IsStdoutTTY()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if tty {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			frames := `|/-\`
			for i := 0; ; i++ {
				fmt.Fprintf(out, "\r%c Installing packages (npm install) %s ", frames[i%len(frames)], time.Since(start).Round(time.Second))
				select {
				case <-stop:
					fmt.Fprint(out, "\r\033[K")
					return
				case <-t.C:
				}
			}
		}()
	} else {
		fmt.Fprintln(out, "Installing packages (npm install)...")
	}
	err = cmd.Run()
	close(stop)
	wg.Wait()
	logFile.Close()
	if err != nil {
		if opts.Ctx.Err() != nil {
			return exitcode.New(exitcode.Interrupted, errors.New("npm install interrupted"), "the app's files are in place; run npm install in "+dir)
		}
		tail := lastLines(logPath, 20)
		if reason := npmNetworkError(logPath); reason != "" {
			return exitcode.New(exitcode.Unreachable, fmt.Errorf("npm install could not reach the npm registry (%s) and its cache lacks packages the app needs; the last lines of its output:\n%s", reason, tail),
				fmt.Sprintf("connect to the network (or set npm's registry or proxy: npm config get registry) and run npm install in %s; the app's files are in place (or pass --no-install)", dir))
		}
		return exitcode.New(exitcode.Failure, fmt.Errorf("npm install failed (%v); the last lines of its output:\n%s", err, tail),
			fmt.Sprintf("the whole output is in %s; the app's files are in place: fix the problem and run npm install in %s", logPath, dir))
	}
	os.Remove(logPath)
	fmt.Fprintf(out, "%s Installed packages in %s\n", opts.IO.ColorScheme().Green("✓"), time.Since(start).Round(100*time.Millisecond))
	return nil
}

// npmNetworkError returns the network error code npm's output names
// (ENOTFOUND, ECONNREFUSED, …), or "".
func npmNetworkError(path string) string {
	data, _ := os.ReadFile(path)
	for _, code := range []string{"ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH", "EHOSTUNREACH"} {
		if strings.Contains(string(data), code) {
			return code
		}
	}
	return ""
}

func lastLines(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// gitInit creates a repository with a first commit when git is there and
// dir is not already inside a work tree. Failures are reported, not fatal:
// the app is usable without git.
func gitInit(opts *Options, dir string, files []string) {
	out := opts.IO.Out
	git, err := opts.LookPath("git")
	if err != nil {
		fmt.Fprintln(out, "git is not installed: no repository created")
		return
	}
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(opts.Ctx, git, args...)
		cmd.Dir = dir
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		err := cmd.Run()
		return strings.TrimSpace(buf.String()), err
	}
	if top, err := run("rev-parse", "--show-toplevel"); err == nil {
		fmt.Fprintf(out, "%s is inside the git repository %s: no new repository created\n", dir, top)
		return
	}
	if msg, err := run("init", "--quiet"); err != nil {
		fmt.Fprintf(out, "git init failed: %s\n", firstLine(msg, err))
		return
	}
	if _, err := os.Stat(filepath.Join(dir, "package-lock.json")); err == nil {
		files = append(files, "package-lock.json")
	}
	if msg, err := run(append([]string{"add", "--"}, files...)...); err != nil {
		fmt.Fprintf(out, "git add failed: %s\n", firstLine(msg, err))
		return
	}
	if email, _ := run("config", "user.email"); email == "" {
		fmt.Fprintln(out, "Created a git repository; no commit made because git has no user.email (git config --global user.email you@example.com)")
		return
	}
	if msg, err := run("commit", "--quiet", "--no-verify", "-m", "Initial commit from pomdev init"); err != nil {
		fmt.Fprintf(out, "git commit failed: %s\n", firstLine(msg, err))
		return
	}
	fmt.Fprintf(out, "%s Created a git repository with a first commit\n", opts.IO.ColorScheme().Green("✓"))
}

func firstLine(msg string, err error) string {
	if msg == "" {
		return err.Error()
	}
	line, _, _ := strings.Cut(msg, "\n")
	return line
}
