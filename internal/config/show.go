package config

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Entry is one line of `pomdev config show`.
type Entry struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Source string `json:"source"`
}

// secretHeaders are shown redacted: tokens never reach a terminal or a log.
var secretHeaders = []string{"authorization", "cookie", "proxy-authorization", "x-api-key"}

// Entries lists the effective configuration, one entry per key, with where
// each value came from. Header values that carry credentials are redacted.
func (l *Loaded) Entries() []Entry {
	var out []Entry
	for _, k := range scalarKeys() {
		v := k.get(&l.Config)
		if d, ok := v.(time.Duration); ok {
			v = d.String()
		}
		out = append(out, Entry{Key: k.path, Value: v, Source: l.Source(k.path).String()})
	}
	if h := l.Inspect.Headers; len(h) > 0 {
		names := make([]string, 0, len(h))
		for k := range h {
			names = append(names, k)
		}
		sort.Strings(names)
		shown := map[string]string{}
		for _, n := range names {
			shown[n] = h[n]
			if slices.Contains(secretHeaders, strings.ToLower(n)) {
				shown[n] = "<redacted>"
			}
		}
		out = append(out, Entry{Key: "inspect.headers", Value: shown, Source: l.Source("inspect.headers").String()})
	}
	src := l.Source("processes").String()
	for i, p := range l.Processes {
		out = append(out, Entry{Key: fmt.Sprintf("processes[%d]", i), Value: p, Source: src})
	}
	sort.SliceStable(out, func(i, j int) bool { return section(out[i].Key) < section(out[j].Key) })
	return out
}

func section(key string) int {
	order := []string{"log", "processes", "tunnel", "inspect", "relay"}
	for i, s := range order {
		if strings.HasPrefix(key, s) {
			return i
		}
	}
	return len(order)
}
