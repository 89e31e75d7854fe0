package cli

import "github.com/pomdev/pomdev/internal/build"

// buildInfo is a seam for tests of --version.
var buildInfo = build.Current
