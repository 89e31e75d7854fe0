package devloop

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pomdev/pomdev/internal/config"
	"go.yaml.in/yaml/v3"
)

// discover recognises a Node MCP app without pomdev.yaml from its
// package.json scripts: dev:server and dev:widgets, or dev. It returns the
// processes it assumes and a sentence saying so.
func discover(dir string) ([]config.Process, string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	var pkg struct {
		Scripts map[string]string `json:"scripts"`
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		return nil, "", fmt.Errorf("package.json: %w", err)
	}
	watches := func(script string) bool {
		return strings.Contains(script, "watch") || strings.Contains(script, "vite") || strings.Contains(script, "nodemon")
	}
	server := config.Process{Name: "server", Port: 8080, Health: "http://127.0.0.1:8080/health",
		Env: map[string]string{"PORT": "8080"}, Restart: config.DefaultRestart, ReadyTimeout: config.DefaultReadyTimeout}
	switch s := pkg.Scripts; {
	case s["dev:server"] != "" && s["dev:widgets"] != "":
		server.Command = "npm run dev:server"
		server.SelfWatching = watches(s["dev:server"])
		if !server.SelfWatching {
			server.Watch = []string{"server/src/**"}
		}
		widgets := config.Process{Name: "widgets", Command: "npm run dev:widgets", Port: 4444, SelfWatching: true,
			Restart: config.DefaultRestart, ReadyTimeout: config.DefaultReadyTimeout}
		return []config.Process{widgets, server}, "package.json has dev:server and dev:widgets: running widgets (port 4444) and server (port 8080, /health)", nil
	case s["dev"] != "":
		server.Name, server.Command = "dev", "npm run dev"
		server.SelfWatching = watches(s["dev"])
		return []config.Process{server}, "package.json has a dev script: running npm run dev, expecting the server on port 8080 with /health", nil
	}
	return nil, "", nil
}

// writeConfig saves the assumed processes as pomdev.yaml, never over an
// existing file.
func writeConfig(dir string, procs []config.Process) (string, error) {
	path := filepath.Join(dir, config.FileName)
	type proc struct {
		Name         string            `yaml:"name"`
		Command      string            `yaml:"command"`
		Env          map[string]string `yaml:"env,omitempty"`
		Port         int               `yaml:"port,omitempty"`
		Health       string            `yaml:"health,omitempty"`
		Watch        []string          `yaml:"watch,omitempty"`
		SelfWatching bool              `yaml:"self_watching,omitempty"`
	}
	var doc struct {
		Processes []proc `yaml:"processes"`
	}
	for _, p := range procs {
		doc.Processes = append(doc.Processes, proc{p.Name, p.Command, p.Env, p.Port, p.Health, p.Watch, p.SelfWatching})
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", configErrorf("%s exists already; edit it instead", path)
		}
		return "", err
	}
	defer f.Close()
	_, err = f.Write(append([]byte("# Written by pomdev up --write-config; see pomdev help config.\n"), data...))
	return path, err
}
