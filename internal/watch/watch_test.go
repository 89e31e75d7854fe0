package watch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"server/src/**/*.ts", "server/src/tools.ts", true},
		{"server/src/**/*.ts", "server/src/a/b/tools.ts", true},
		{"server/src/**/*.ts", "server/test/tools.ts", false},
		{"**/node_modules/**", "node_modules/", true},
		{"**/node_modules/**", "widgets/node_modules/react/index.js", true},
		{"**/*.swp", "server/src/.tools.ts.swp", true},
		{"**/*~", "a/b~", true},
		{"*.ts", "a/b.ts", false},
		{"**", "anything/at/all", true},
		{"a/[", "a/[", false},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

type harness struct {
	t    *testing.T
	root string
	ch   chan Change
}

func start(t *testing.T, opts Options) *harness {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"server/src", "node_modules/x", ".git"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w, err := New(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, root: root, ch: make(chan Change, 64)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, h.ch) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return h
}

func (h *harness) write(rel, body string) {
	h.t.Helper()
	p := filepath.Join(h.root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// next returns the next change, failing after a deadline.
func (h *harness) next() Change {
	h.t.Helper()
	select {
	case c := <-h.ch:
		return c
	case <-time.After(10 * time.Second):
		h.t.Fatal("no change reported")
		return Change{}
	}
}

// Ignored paths never show up: the first change reported is the real one
// written after them.
func TestIgnoresAndReports(t *testing.T) {
	h := start(t, Options{Debounce: 20 * time.Millisecond, Ignore: []string{"**/*.log"}})
	h.write("node_modules/x/index.js", "x")
	h.write(".git/HEAD", "ref")
	h.write("server/src/.tools.ts.swp", "swap")
	h.write("server/src/debug.log", "log")
	h.write("server/src/tools.ts", "export {}")
	if c := h.next(); c.Path != "server/src/tools.ts" {
		t.Fatalf("first change %q, want server/src/tools.ts", c.Path)
	}
}

// A directory created after the start is followed, including files that
// landed in it before its watch was added.
func TestFollowsNewDirectories(t *testing.T) {
	h := start(t, Options{Debounce: 20 * time.Millisecond})
	h.write("server/src/new/deep/a.ts", "a")
	if c := h.next(); c.Path != "server/src/new/deep/a.ts" {
		t.Fatalf("got %q", c.Path)
	}
	h.write("server/src/new/deep/b.ts", "b")
	if c := h.next(); c.Path != "server/src/new/deep/b.ts" {
		t.Fatalf("got %q", c.Path)
	}
}

// Several writes to one path in quick succession are one change; the
// sentinel written afterwards arrives after it, and nothing else between.
func TestDebouncePerPath(t *testing.T) {
	h := start(t, Options{Debounce: 100 * time.Millisecond})
	for i := 0; i < 5; i++ {
		h.write("server/src/tools.ts", "v"+string(rune('0'+i)))
	}
	if c := h.next(); c.Path != "server/src/tools.ts" {
		t.Fatalf("got %q", c.Path)
	}
	h.write("server/src/sentinel.ts", "s")
	if c := h.next(); c.Path != "server/src/sentinel.ts" {
		t.Fatalf("a second change for the debounced path, or another: %q", c.Path)
	}
}

// Braces and ** work as they read, and a glob that validation accepts is
// one that can match (one matcher for both).
func TestMatchBracesAndDoubleStar(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"server/src/**/*.{ts,tsx}", "server/src/tools.ts", true},
		{"server/src/**/*.{ts,tsx}", "server/src/a/b/view.tsx", true},
		{"server/src/**/*.{ts,tsx}", "server/src/a/b/view.js", false},
		{"**/*.go", "main.go", true},
		{"web/[ab]*.css", "web/app.css", true},
		{"web/[ab]*.css", "web/cat.css", false},
	} {
		if got := Match(tc.pattern, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
		if !ValidGlob(tc.pattern) {
			t.Errorf("%q rejected", tc.pattern)
		}
	}
	for _, bad := range []string{"src/{ts", "src/[ab"} {
		if ValidGlob(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
