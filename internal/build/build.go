// Package build owns pomdev's version information: what goreleaser stamps
// in with -ldflags, and what `go install` builds recover from the module's
// build info when nothing was stamped.
package build

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set by goreleaser:
//
//	-X github.com/pomdev/pomdev/internal/build.Version={{.Version}}
//	-X github.com/pomdev/pomdev/internal/build.Commit={{.Commit}}
//	-X github.com/pomdev/pomdev/internal/build.Date={{.Date}}
var (
	Version = ""
	Commit  = ""
	Date    = ""
)

// Info describes the running binary.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"go"`
	Platform  string `json:"platform"`
}

// Current returns the stamped information, completed from
// debug.ReadBuildInfo for builds made with `go install` or `go build`.
func Current() Info {
	return resolve(Version, Commit, Date, debug.ReadBuildInfo)
}

func resolve(version, commit, date string, read func() (*debug.BuildInfo, bool)) Info {
	// goreleaser stamps placeholders when git has no usable state.
	if commit == "none" {
		commit = ""
	}
	if strings.HasPrefix(date, "0001-01-01") {
		date = ""
	}
	info := Info{
		Version:   version,
		Commit:    commit,
		Date:      date,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := read(); ok && bi != nil {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = s.Value
				}
			case "vcs.time":
				if info.Date == "" {
					info.Date = s.Value
				}
			}
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}

// String renders the one-line form used by `pomdev --version`.
func (i Info) String() string {
	s := "pomdev version " + i.Version
	var extra []string
	if i.Commit != "" {
		c := i.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		extra = append(extra, "commit "+c)
	}
	if i.Date != "" {
		extra = append(extra, "built "+i.Date)
	}
	extra = append(extra, i.GoVersion, i.Platform)
	s += " ("
	for n, e := range extra {
		if n > 0 {
			s += ", "
		}
		s += e
	}
	return fmt.Sprint(s, ")")
}
