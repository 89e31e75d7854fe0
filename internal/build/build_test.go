package build

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	goInstall := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{
			Main: debug.Module{Path: "github.com/pomdev/pomdev", Version: "v0.3.1"},
			Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "0123456789abcdef0123"},
				{Key: "vcs.time", Value: "2026-11-01T10:00:00Z"},
			},
		}, true
	}
	devel := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }

	tests := []struct {
		name                  string
		version, commit, date string
		read                  func() (*debug.BuildInfo, bool)
		want                  Info
	}{
		{"ldflags win", "1.2.3", "abc", "2026-11-21", goInstall, Info{Version: "1.2.3", Commit: "abc", Date: "2026-11-21"}},
		{"go install fallback", "", "", "", goInstall, Info{Version: "v0.3.1", Commit: "0123456789abcdef0123", Date: "2026-11-01T10:00:00Z"}},
		{"goreleaser placeholders", "0.0.1-next", "none", "0001-01-01T00:00:00Z", none, Info{Version: "0.0.1-next"}},
		{"devel", "", "", "", devel, Info{Version: "dev"}},
		{"no build info", "", "", "", none, Info{Version: "dev"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := resolve(tt.version, tt.commit, tt.date, tt.read)
			if got.Version != tt.want.Version || got.Commit != tt.want.Commit || got.Date != tt.want.Date {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if got.GoVersion == "" || got.Platform == "" {
				t.Fatalf("missing go version or platform: %+v", got)
			}
		})
	}
}

func TestString(t *testing.T) {
	s := Info{Version: "v1.0.0", Commit: "0123456789abcdef", Date: "2026-11-21", GoVersion: "go1.26", Platform: "linux/amd64"}.String()
	want := "pomdev version v1.0.0 (commit 0123456789ab, built 2026-11-21, go1.26, linux/amd64)"
	if s != want {
		t.Fatalf("got %q\nwant %q", s, want)
	}
	if !strings.HasPrefix(Info{Version: "dev"}.String(), "pomdev version dev (") {
		t.Fatal("dev build string")
	}
}
