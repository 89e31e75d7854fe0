package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix prefixes every environment variable pomdev reads for its
// configuration: tunnel.remote_url is POMDEV_TUNNEL_REMOTE_URL.
const EnvPrefix = "POMDEV_"

// EnvConfig names the environment variable that points at a config file,
// like --config.
const EnvConfig = EnvPrefix + "CONFIG"

// SourceKind says which layer a value came from.
type SourceKind string

// The layers, lowest precedence first.
const (
	FromDefault SourceKind = "default"
	FromUser    SourceKind = "user config"
	FromProject SourceKind = "config"
	FromEnv     SourceKind = "env"
	FromFlag    SourceKind = "flag"
)

// Source is where an effective value came from.
type Source struct {
	Kind SourceKind
	// Where names the file, variable or flag ("" for defaults).
	Where string
}

func (s Source) String() string {
	if s.Where == "" {
		return string(s.Kind)
	}
	return string(s.Kind) + " " + s.Where
}

// FlagBinding ties a command-line flag to a configuration key.
type FlagBinding struct {
	Key  string
	Flag *pflag.Flag
}

// Options say where to look; zero values mean the real environment.
type Options struct {
	// ConfigFile is --config; empty means $POMDEV_CONFIG, then ./pomdev.yaml.
	ConfigFile string
	// WorkDir is where ./pomdev.yaml is looked for; empty means os.Getwd.
	WorkDir string
	// UserConfigDir replaces os.UserConfigDir (tests).
	UserConfigDir func() (string, error)
	// LookupEnv replaces os.LookupEnv (tests).
	LookupEnv func(string) (string, bool)
	// Flags are the flags bound to keys; only changed flags count.
	Flags []FlagBinding
}

// Loaded is the effective configuration and its provenance.
type Loaded struct {
	Config
	// Files lists the configuration files read, lowest precedence first.
	Files []string
	// ProjectFile is the --config or ./pomdev.yaml file, "" when none.
	ProjectFile string
	sources     map[string]Source
	lines       map[string]int // key path -> line, in the file its Source names
}

// line is the line of key in the file it came from (0 if unknown).
func (l *Loaded) line(key string) int { return l.lines[key] }

// Source reports where key's value came from.
func (l *Loaded) Source(key string) Source {
	if s, ok := l.sources[key]; ok {
		return s
	}
	return Source{Kind: FromDefault}
}

// layer is one parsed file.
type layer struct {
	kind  SourceKind
	path  string
	raw   map[string]any
	cfg   Config
	lines map[string]int // key path (processes[0].restart) -> line
}

// keyLines maps every key path under node to the line of its value.
func keyLines(node *yaml.Node, prefix string, out map[string]int) {
	switch node.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(node.Content); i += 2 {
			path := joinKey(prefix, node.Content[i].Value)
			out[path] = node.Content[i+1].Line
			keyLines(node.Content[i+1], path, out)
		}
	case yaml.SequenceNode:
		for n, item := range node.Content {
			path := fmt.Sprintf("%s[%d]", prefix, n)
			out[path] = item.Line
			keyLines(item, path, out)
		}
	}
}

// Load reads and merges every layer, then validates the result. Errors name
// the file (or variable, or flag), the key and what is allowed.
func Load(opts Options) (*Loaded, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.UserConfigDir == nil {
		opts.UserConfigDir = os.UserConfigDir
	}
	if opts.WorkDir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("cannot determine the working directory: %w", err)
		}
		opts.WorkDir = wd
	}

	var layers []layer
	out := &Loaded{sources: map[string]Source{}, lines: map[string]int{}}

	if dir, err := opts.UserConfigDir(); err == nil {
		path := filepath.Join(dir, "pomdev", "config.yaml")
		l, err := readLayer(FromUser, path, false)
		if err != nil {
			return nil, err
		}
		if l != nil {
			layers = append(layers, *l)
		}
	}

	project, explicit := opts.ConfigFile, opts.ConfigFile != ""
	if !explicit {
		if v, ok := opts.LookupEnv(EnvConfig); ok && v != "" {
			project, explicit = v, true
		}
	}
	if project == "" {
		project = filepath.Join(opts.WorkDir, FileName)
	} else if !filepath.IsAbs(project) {
		project = filepath.Join(opts.WorkDir, project)
	}
	pl, err := readLayer(FromProject, project, explicit)
	if err != nil {
		return nil, err
	}
	out.Config.Dir = opts.WorkDir
	if pl != nil {
		layers = append(layers, *pl)
		out.ProjectFile = project
		out.Config.Dir = filepath.Dir(project)
	}
	for _, l := range layers {
		out.Files = append(out.Files, l.path)
	}

	if err := merge(out, layers, opts); err != nil {
		return nil, err
	}
	if err := validate(out); err != nil {
		return nil, err
	}
	return out, nil
}

// readLayer parses one YAML file. A missing file is nil unless required.
func readLayer(kind SourceKind, path string, required bool) (*layer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if required {
			return nil, &Error{File: path, Msg: "config file not found", Hint: "check the --config path or " + EnvConfig}
		}
		return nil, nil
	}
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read config file: %v", err)}
	}
	l := &layer{kind: kind, path: path, raw: map[string]any{}, lines: map[string]int{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{File: path, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "),
			Hint: "fix the YAML syntax: indent with spaces, quote values that contain ': '"}
	}
	if len(doc.Content) == 0 { // empty file
		return l, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: path, Line: root.Line, Msg: "the top level must be a mapping of keys (log, processes, tunnel, inspect, relay)"}
	}
	if errs := checkKeys(path, root, schemaOf(Config{}), ""); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	keyLines(root, "", l.lines)
	if err := root.Decode(&l.cfg); err != nil {
		return nil, typeErrors(path, err, l.lines)
	}
	if err := root.Decode(&l.raw); err != nil {
		return nil, &Error{File: path, Msg: "cannot decode: " + err.Error()}
	}
	return l, nil
}

var typeErrLine = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+) `([^`]*)` into (.+)$")

// typeErrors turns yaml's type errors into one Error per value, with its
// line, key and an example of what is expected.
func typeErrors(path string, err error, lines map[string]int) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return &Error{File: path, Msg: "wrong value type: " + err.Error()}
	}
	byLine := map[int]string{}
	for k, n := range lines {
		// The deepest key on a line names the value.
		if cur, ok := byLine[n]; !ok || len(k) > len(cur) {
			byLine[n] = k
		}
	}
	var errs []error
	for _, e := range te.Errors {
		m := typeErrLine.FindStringSubmatch(e)
		if m == nil {
			errs = append(errs, &Error{File: path, Msg: "wrong value type: " + e})
			continue
		}
		n, _ := strconv.Atoi(m[1])
		want, hint := m[4], ""
		switch {
		case want == "time.Duration":
			want, hint = "a duration", "for example: "+m[3]+"s, 500ms or 2m"
		case strings.HasPrefix(want, "int") || strings.HasPrefix(want, "uint"):
			want, hint = "a whole number", "for example: 8"
		case want == "bool":
			want, hint = "true or false", ""
		case want == "string":
			want, hint = "a string", "quote it"
		case strings.HasPrefix(want, "[]"):
			want, hint = "a list", "one item per line, each starting with - "
		case strings.HasPrefix(want, "map["):
			want, hint = "a mapping", "key: value pairs, indented"
		}
		errs = append(errs, &Error{File: path, Line: n, Key: byLine[n], Msg: fmt.Sprintf("%q is not %s", m[3], want), Hint: hint})
	}
	return errors.Join(errs...)
}

// merge builds the effective configuration. Scalars go through one viper
// instance (defaults, files, env, flags, in viper's precedence); lists and
// maps, whose keys viper would lowercase (PORT in a process env), are taken
// whole from the highest file layer that sets them.
func merge(out *Loaded, layers []layer, opts Options) error {
	v := viper.New()
	def := Defaults()
	keys := scalarKeys()
	for _, k := range keys {
		v.SetDefault(k.path, k.get(&def))
		out.sources[k.path] = Source{Kind: FromDefault}
	}
	out.Config.Log, out.Config.Tunnel, out.Config.Inspect = def.Log, def.Tunnel, def.Inspect

	for _, l := range layers {
		flat := map[string]any{}
		for _, k := range keys {
			if _, ok := lookup(l.raw, k.path); ok {
				flat[k.path] = k.get(&l.cfg)
				out.sources[k.path] = Source{Kind: l.kind, Where: l.path}
				out.lines[k.path] = l.lines[k.path]
			}
		}
		if err := v.MergeConfigMap(nest(flat)); err != nil {
			return &Error{File: l.path, Msg: err.Error()}
		}
		// Lists and lists of mappings are taken whole from the layer, with
		// their lines.
		for key, take := range map[string]func(){
			"processes":           func() { out.Config.Processes = l.cfg.Processes },
			"tunnel.tools":        func() { out.Config.Tunnel.Tools = l.cfg.Tunnel.Tools },
			"tunnel.public_paths": func() { out.Config.Tunnel.PublicPaths = l.cfg.Tunnel.PublicPaths },
		} {
			if _, ok := lookup(l.raw, key); !ok {
				continue
			}
			take()
			out.sources[key] = Source{Kind: l.kind, Where: l.path}
			for k, n := range l.lines {
				if strings.HasPrefix(k, key) {
					out.lines[k] = n
				}
			}
		}
		if _, ok := lookup(l.raw, "inspect.headers"); ok {
			out.Config.Inspect.Headers = l.cfg.Inspect.Headers
			out.sources["inspect.headers"] = Source{Kind: l.kind, Where: l.path}
		}
	}

	for _, k := range keys {
		name := EnvVar(k.path)
		if s, ok := opts.LookupEnv(name); ok && s != "" {
			_ = v.BindEnv(k.path, name)
			out.sources[k.path] = Source{Kind: FromEnv, Where: name}
		}
	}
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	for _, fb := range opts.Flags {
		if fb.Flag == nil || !fb.Flag.Changed {
			continue
		}
		if _, ok := keyByPath(fb.Key); !ok {
			return fmt.Errorf("internal: flag --%s bound to unknown key %q", fb.Flag.Name, fb.Key)
		}
		if err := v.BindPFlag(fb.Key, fb.Flag); err != nil {
			return err
		}
		out.sources[fb.Key] = Source{Kind: FromFlag, Where: "--" + fb.Flag.Name}
	}

	var errs []error
	for _, k := range keys {
		src := out.sources[k.path]
		val := v.Get(k.path)
		if src.Kind == FromEnv {
			// viper reads bound env through os.Getenv; honour LookupEnv.
			s, _ := opts.LookupEnv(src.Where)
			val = s
		}
		if err := k.set(&out.Config, val); err != nil {
			errs = append(errs, &Error{Source: src, Key: k.path, Msg: err.Error()})
		}
	}
	return errors.Join(errs...)
}

// EnvVar returns the environment variable for key: tunnel.remote_url is
// POMDEV_TUNNEL_REMOTE_URL.
func EnvVar(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// EnvKeys lists the keys settable through the environment, sorted.
func EnvKeys() []string {
	var out []string
	for _, k := range scalarKeys() {
		out = append(out, k.path)
	}
	sort.Strings(out)
	return out
}

func lookup(m map[string]any, path string) (any, bool) {
	parts := strings.Split(path, ".")
	var cur any = m
	for _, p := range parts {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = mm[p]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

func nest(flat map[string]any) map[string]any {
	out := map[string]any{}
	for k, val := range flat {
		parts := strings.Split(k, ".")
		m := out
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = val
	}
	return out
}
