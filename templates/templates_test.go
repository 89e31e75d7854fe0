package templates

import (
	"io/fs"
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
