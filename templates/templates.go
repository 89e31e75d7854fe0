// Package templates embeds the project templates `pomdev init` renders.
//
// Each directory here is one template, described by its template.yaml
// (see internal/scaffold). Files ending in .tmpl are rendered with
// text/template; every other file is copied as it is.
package templates

import (
	"embed"
	"io/fs"
	"slices"
)

//go:embed all:mcp-app
var files embed.FS

// Default is the template `pomdev init` uses without --template.
const Default = "mcp-app"

// Names lists the embedded templates, sorted.
func Names() []string {
	entries, _ := files.ReadDir(".")
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

// FS returns the files of template name, rooted at the template.
func FS(name string) (fs.FS, bool) {
	if !slices.Contains(Names(), name) {
		return nil, false
	}
	sub, err := fs.Sub(files, name)
	return sub, err == nil
}
