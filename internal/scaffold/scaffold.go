// Package scaffold renders a project template into a directory: names
// checked against npm's package-name rules, nothing overwritten (conflicts
// are listed and nothing is written), files ending in .tmpl rendered with
// text/template, executable bits from the template's manifest, and the
// whole tree written to a temporary sibling and renamed into place, so a
// failure leaves nothing half-written.
//
// `pomdev init` (not registered yet) will drive it with the templates
// embedded by the templates package.
package scaffold

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"
)

// ManifestFile describes a template: its description, the tools it needs
// and which files are executable.
const ManifestFile = "template.yaml"

// Manifest is a template's template.yaml.
type Manifest struct {
	Description string            `yaml:"description"`
	Requires    map[string]string `yaml:"requires"` // tool -> minimum version, e.g. node: "20.19"
	Executable  []string          `yaml:"executable"`
}

// Data is what .tmpl files see.
type Data struct {
	// Name is the npm package name of the app.
	Name string
}

// ReadManifest parses the template's manifest.
func ReadManifest(fsys fs.FS) (Manifest, error) {
	var m Manifest
	data, err := fs.ReadFile(fsys, ManifestFile)
	if err != nil {
		return m, fmt.Errorf("template manifest: %w", err)
	}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("template manifest: %w", err)
	}
	return m, nil
}

var npmNameChars = regexp.MustCompile(`^[a-z0-9][a-z0-9._~-]*$`)

var reservedNames = []string{"node_modules", "favicon.ico"}

// ValidateName checks name against npm's package-name rules and says which
// rule failed. Path separators and ".." are refused outright.
func ValidateName(name string) error {
	bad := func(rule string) error {
		return &NameError{Name: name, Rule: rule}
	}
	switch {
	case name == "":
		return bad("it is empty")
	case strings.ContainsAny(name, `/\`):
		return bad("it contains a path separator")
	case strings.Contains(name, ".."):
		return bad(`it contains ".."`)
	case len(name) > 214:
		return bad("it is longer than 214 characters")
	case strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_"):
		return bad("it starts with . or _")
	case strings.TrimSpace(name) != name:
		return bad("it has leading or trailing spaces")
	case strings.ToLower(name) != name:
		return bad("it has capital letters")
	case slices.Contains(reservedNames, name):
		return bad("it is a reserved name")
	case !npmNameChars.MatchString(name):
		return bad("only lowercase letters, digits, - . _ ~ are allowed, starting with a letter or digit")
	}
	return nil
}

// Options tune Render.
type Options struct {
	// Force allows a non-empty target directory; existing files are still
	// never overwritten.
	Force bool
	// afterFile is called after each file is written to the temporary
	// directory (tests inject failures here).
	afterFile func(rel string) error
}

// NameError is an app name that npm would refuse; Rule says why.
type NameError struct{ Name, Rule string }

func (e *NameError) Error() string {
	return fmt.Sprintf("app name %q is not valid: %s", e.Name, e.Rule)
}

// NotEmptyError is a target directory with files in it (Options.Force
// adds the template's files beside them).
type NotEmptyError struct{ Dir string }

func (e *NotEmptyError) Error() string { return e.Dir + " is not empty" }

// ConflictError lists files that already exist in the target.
type ConflictError struct {
	Dir   string
	Files []string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s already has %d file(s) the template would write: %s; nothing was written", e.Dir, len(e.Files), strings.Join(e.Files, ", "))
}

// Render writes the template fsys into dir. It returns the relative paths
// written, sorted.
func Render(fsys fs.FS, dir string, data Data, opts Options) ([]string, error) {
	if err := ValidateName(data.Name); err != nil {
		return nil, err
	}
	m, err := ReadManifest(fsys)
	if err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	existing, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		existing = nil
	case err != nil:
		return nil, fmt.Errorf("target %s: %w", dir, err)
	case len(existing) > 0 && !opts.Force:
		return nil, &NotEmptyError{Dir: dir}
	}

	// Plan: every output path, checked for conflicts before anything is written.
	type file struct {
		src, rel string
		mode     fs.FileMode
	}
	var files []file
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == ManifestFile {
			return err
		}
		rel := strings.TrimSuffix(p, ".tmpl")
		mode := fs.FileMode(0o644)
		if slices.Contains(m.Executable, rel) {
			mode = 0o755
		}
		files = append(files, file{src: p, rel: rel, mode: mode})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	if len(existing) > 0 {
		var conflicts []string
		for _, f := range files {
			if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(f.rel))); err == nil {
				conflicts = append(conflicts, f.rel)
			}
		}
		if len(conflicts) > 0 {
			sort.Strings(conflicts)
			return nil, &ConflictError{Dir: dir, Files: conflicts}
		}
	}

	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".pomdev-*")
	if err != nil {
		return nil, fmt.Errorf("temporary directory beside %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp) // after a rename it is gone already
	// MkdirTemp makes it 0700; the app directory is an ordinary one.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	var written []string
	for _, f := range files {
		content, err := fs.ReadFile(fsys, f.src)
		if err != nil {
			return nil, err
		}
		if strings.HasSuffix(f.src, ".tmpl") {
			t, err := template.New(f.src).Option("missingkey=error").Parse(string(content))
			if err != nil {
				return nil, fmt.Errorf("template %s: %w", f.src, err)
			}
			var buf bytes.Buffer
			if err := t.Execute(&buf, data); err != nil {
				return nil, fmt.Errorf("template %s: %w", f.src, err)
			}
			content = buf.Bytes()
		}
		out := filepath.Join(tmp, filepath.FromSlash(f.rel))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(out, content, f.mode); err != nil {
			return nil, err
		}
		if err := os.Chmod(out, f.mode); err != nil { // umask-proof
			return nil, err
		}
		if opts.afterFile != nil {
			if err := opts.afterFile(f.rel); err != nil {
				return nil, err
			}
		}
		written = append(written, f.rel)
	}
	sort.Strings(written)

	if existing == nil {
		// The usual case: one rename puts the whole tree in place.
		if err := os.Rename(tmp, dir); err != nil {
			return nil, fmt.Errorf("moving the new app into %s: %w", dir, err)
		}
		return written, nil
	}
	// --force into a non-empty directory: move files one by one, never
	// replacing one that appeared meanwhile.
	for _, rel := range written {
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if _, err := os.Lstat(dst); err == nil {
			return nil, fmt.Errorf("%s appeared while scaffolding; left it alone", dst)
		}
		if err := os.Rename(filepath.Join(tmp, filepath.FromSlash(rel)), dst); err != nil {
			return nil, err
		}
	}
	return written, nil
}
