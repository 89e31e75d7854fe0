package templates

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pomdev/pomdev/internal/scaffold"
)

func TestEmbedded(t *testing.T) {
	if names := Names(); !slices.Contains(names, Default) {
		t.Fatalf("templates %v lack the default %s", names, Default)
	}
	if _, ok := FS("nope"); ok {
		t.Fatal("an unknown template was found")
	}
	for _, name := range Names() {
		fsys, ok := FS(name)
		if !ok {
			t.Fatalf("%s: not found", name)
		}
		m, err := scaffold.ReadManifest(fsys)
		if err != nil || m.Description == "" {
			t.Fatalf("%s: manifest %+v, %v", name, m, err)
		}
		err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			// Build output or installed packages must never be embedded.
			for _, part := range strings.Split(p, "/") {
				if part == "node_modules" || part == "dist" || part == "dist-inline" || part == ".env" {
					t.Errorf("%s: %s is embedded", name, p)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

var update = flag.Bool("update", false, "rewrite the golden file lists in testdata/")

// TestGolden renders each template and compares the files and modes with
// testdata/<template>.files (go test -update rewrites them).
func TestGolden(t *testing.T) {
	for _, name := range Names() {
		fsys, _ := FS(name)
		dir := filepath.Join(t.TempDir(), "golden-app")
		files, err := scaffold.Render(fsys, dir, scaffold.Data{Name: "golden-app"}, scaffold.Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var b strings.Builder
		for _, f := range files {
			st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f)))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%v %s\n", st.Mode().Perm(), f)
			data, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
			if bytes.Contains(data, []byte("{{")) && strings.HasSuffix(f, ".json") {
				t.Errorf("%s: %s still holds template actions", name, f)
			}
		}
		golden := filepath.Join("testdata", name+".files")
		if *update {
			if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (go test -update writes it)", err)
		}
		if b.String() != string(want) {
			t.Errorf("%s renders:\n%s\nwant (%s):\n%s", name, b.String(), golden, want)
		}
	}
}
