package scaffold

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

var tmpl = fstest.MapFS{
	"template.yaml":             {Data: []byte("description: test app\nrequires: {node: \"20.19\"}\nexecutable: [scripts/dev.sh]\n")},
	"package.json.tmpl":         {Data: []byte(`{"name":"{{.Name}}"}` + "\n")},
	"README.md.tmpl":            {Data: []byte("# {{.Name}}\n")},
	"server/src/index.ts":       {Data: []byte("// {{.Name}} stays literal here\n")},
	"scripts/dev.sh":            {Data: []byte("#!/bin/sh\necho dev\n")},
	"widgets/src/widgets/a.tsx": {Data: []byte("export {}\n")},
}

// The golden list of files and modes.
func TestRender(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my-app")
	got, err := Render(tmpl, dir, Data{Name: "my-app"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"README.md", "package.json", "scripts/dev.sh", "server/src/index.ts", "widgets/src/widgets/a.tsx"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("written %v, want %v", got, want)
	}
	modes := map[string]fs.FileMode{".": 0o755, "server": 0o755, "README.md": 0o644, "package.json": 0o644, "scripts/dev.sh": 0o755, "server/src/index.ts": 0o644}
	for rel, mode := range modes {
		st, err := os.Stat(filepath.Join(dir, rel))
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want %v", rel, st.Mode().Perm(), err, mode)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "package.json")); string(b) != `{"name":"my-app"}`+"\n" {
		t.Errorf("package.json %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "server/src/index.ts")); !strings.Contains(string(b), "{{.Name}}") {
		t.Errorf("a file without .tmpl was rendered: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Error("the manifest was copied")
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".my-app.pomdev-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary dirs left: %v", leftovers)
	}
}

func TestValidateName(t *testing.T) {
	for _, tt := range []struct{ name, rule string }{
		{"", "empty"}, {"a/b", "path separator"}, {`a\b`, "path separator"}, {"..", `".."`}, {"a..b", `".."`},
		{".hidden", "starts with . or _"}, {"_x", "starts with . or _"}, {"MyApp", "capital letters"},
		{"node_modules", "reserved"}, {"a b", "only lowercase"}, {"é", "only lowercase"}, {strings.Repeat("a", 215), "longer than 214"},
	} {
		err := ValidateName(tt.name)
		var ne *NameError
		if !errors.As(err, &ne) || !strings.Contains(err.Error(), tt.rule) {
			t.Errorf("%q: got %v, want the %q rule", tt.name, err, tt.rule)
		}
	}
	for _, ok := range []string{"my-app", "app2", "a.b", "x_y", "mcp~app"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
}

func TestNoOverwrite(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Non-empty without --force: refused.
	var ne *NotEmptyError
	if _, err := Render(tmpl, dir, Data{Name: "x"}, Options{}); !errors.As(err, &ne) || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("got %v", err)
	}
	// --force with no conflicts: added beside the user's file.
	if _, err := Render(tmpl, dir, Data{Name: "x"}, Options{Force: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "notes.txt")); string(b) != "mine" {
		t.Fatal("the user's file changed")
	}
	// --force with conflicts: all listed, nothing written.
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, "package.json"), []byte("keep"), 0o644)
	os.MkdirAll(filepath.Join(dir2, "scripts"), 0o755)
	os.WriteFile(filepath.Join(dir2, "scripts/dev.sh"), []byte("keep"), 0o644)
	_, err := Render(tmpl, dir2, Data{Name: "x"}, Options{Force: true})
	var ce *ConflictError
	if !errors.As(err, &ce) || strings.Join(ce.Files, ",") != "package.json,scripts/dev.sh" {
		t.Fatalf("got %v", err)
	}
	entries, _ := os.ReadDir(dir2)
	if len(entries) != 2 {
		t.Fatalf("something was written: %v", entries)
	}
	if b, _ := os.ReadFile(filepath.Join(dir2, "package.json")); string(b) != "keep" {
		t.Fatal("overwritten")
	}
}

// A failure halfway (disk full, a bad template, Ctrl-C) leaves nothing:
// no target, no temporary directory.
func TestAtomic(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "app")
	n := 0
	_, err := Render(tmpl, dir, Data{Name: "app"}, Options{afterFile: func(string) error {
		n++
		if n == 3 {
			return errors.New("disk full")
		}
		return nil
	}})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("got %v", err)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
	bad := fstest.MapFS{"template.yaml": {Data: []byte("description: x\n")}, "a.tmpl": {Data: []byte("{{.Nope}}")}}
	if _, err := Render(bad, dir, Data{Name: "app"}, Options{}); err == nil {
		t.Fatal("a template error was not reported")
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("left behind after a bad template: %v", entries)
	}
}
