// Command pomdev builds, runs and shares MCP apps. See README.md.
package main

import (
	"context"
	"os"

	"github.com/pomdev/pomdev/internal/cli"
	"github.com/pomdev/pomdev/internal/iostreams"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], iostreams.System()))
}
