// Command gendocs writes pomdev's shell completions and man pages for the
// release archives: go run ./scripts/gendocs -completions DIR -man DIR.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pomdev/pomdev/internal/cli"
	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/iostreams"
	"github.com/spf13/cobra/doc"
)

func main() {
	completions := flag.String("completions", "", "directory for pomdev.bash, pomdev.zsh, pomdev.fish and pomdev.ps1")
	man := flag.String("man", "", "directory for the section 1 man pages")
	flag.Parse()
	if err := run(*completions, *man); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func run(completions, man string) error {
	root := cli.NewCmdRoot(factory.New(iostreams.System()))
	root.DisableAutoGenTag = true
	if completions != "" {
		if err := os.MkdirAll(completions, 0o755); err != nil {
			return err
		}
		gens := map[string]func(string) error{
			"pomdev.bash": func(p string) error { return root.GenBashCompletionFileV2(p, true) },
			"pomdev.zsh":  root.GenZshCompletionFile,
			"pomdev.fish": func(p string) error { return root.GenFishCompletionFile(p, true) },
			"pomdev.ps1":  root.GenPowerShellCompletionFileWithDesc,
		}
		for name, gen := range gens {
			if err := gen(filepath.Join(completions, name)); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	if man != "" {
		if err := os.MkdirAll(man, 0o755); err != nil {
			return err
		}
		header := &doc.GenManHeader{Title: "POMDEV", Section: "1", Source: "pomdev", Manual: "pomdev manual"}
		if err := doc.GenManTree(root, header, man); err != nil {
			return fmt.Errorf("man pages: %w", err)
		}
	}
	return nil
}
