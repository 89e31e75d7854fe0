package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes as pomdev.yaml: Load must either succeed
// with a validated configuration or fail with an error naming the file,
// never panic.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		"",
		"log: {level: debug}\n",
		"processes:\n  - name: server\n    command: npm run dev\n    port: 8080\n    watch: ['src/**/*.ts']\n",
		"tunnel:\n  relay: a@b:22\n",
		"inspect:\n  headers: {A: b}\n",
		"[",
		"processes: 3",
		"log: [1, 2]",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		dir := t.TempDir()
		path := filepath.Join(dir, FileName)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Load(Options{
			WorkDir:       dir,
			UserConfigDir: func() (string, error) { return filepath.Join(dir, "none"), nil },
			LookupEnv:     func(string) (string, bool) { return "", false },
		})
		if err != nil {
			if !strings.Contains(err.Error(), path) && !strings.Contains(err.Error(), "config") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, p := range l.Processes {
			if p.Name == "" || p.Command == "" || p.Restart == "" {
				t.Fatalf("validated process incomplete: %+v", p)
			}
		}
	})
}

// FuzzParseRelay checks that accepted relays round-trip through Addr.
func FuzzParseRelay(f *testing.F) {
	for _, s := range []string{"pom.run", "a@b:2222", "[::1]:22", "local", "@", "x:y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRelay(s)
		if err != nil || r.Local {
			return
		}
		if r.Host == "" || r.Port < 1 || r.Port > 65535 {
			t.Fatalf("accepted %q as %+v", s, r)
		}
		back, err := ParseRelay(r.Addr())
		if err != nil || back.Host != r.Host || back.Port != r.Port {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, r, r.Addr(), back, err)
		}
	})
}
