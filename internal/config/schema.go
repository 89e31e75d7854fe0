package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// field describes one key of the schema, derived from the yaml tags of
// Config so the schema cannot drift from the struct.
type field struct {
	name     string
	index    int
	typ      reflect.Type
	children []field // for structs, and for the elements of lists of structs
}

var durationType = reflect.TypeOf(time.Duration(0))

func schemaOf(v any) []field { return fieldsOf(reflect.TypeOf(v)) }

func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name := strings.Split(sf.Tag.Get("yaml"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		f := field{name: name, index: i, typ: sf.Type}
		switch {
		case sf.Type.Kind() == reflect.Struct && sf.Type != durationType:
			f.children = fieldsOf(sf.Type)
		case sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.Struct:
			f.children = fieldsOf(sf.Type.Elem())
		}
		out = append(out, f)
	}
	return out
}

func names(fs []field) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.name)
	}
	sort.Strings(out)
	return out
}

// checkKeys reports every key of node that the schema does not know, with
// its line and the keys allowed at that level.
func checkKeys(file string, node *yaml.Node, schema []field, prefix string) []error {
	var errs []error
	if node.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		path := joinKey(prefix, k.Value)
		var f *field
		for j := range schema {
			if schema[j].name == k.Value {
				f = &schema[j]
			}
		}
		if f == nil {
			errs = append(errs, &Error{File: file, Line: k.Line, Key: path,
				Msg:  "unknown key",
				Hint: "allowed here: " + strings.Join(names(schema), ", ")})
			continue
		}
		if len(f.children) == 0 {
			continue
		}
		switch {
		case f.typ.Kind() == reflect.Struct && v.Kind == yaml.MappingNode:
			errs = append(errs, checkKeys(file, v, f.children, path)...)
		case f.typ.Kind() == reflect.Slice && v.Kind == yaml.SequenceNode:
			for n, item := range v.Content {
				errs = append(errs, checkKeys(file, item, f.children, fmt.Sprintf("%s[%d]", path, n))...)
			}
		}
	}
	return errs
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// scalarKey is a key settable from every layer, env and flags included.
type scalarKey struct {
	path string
	typ  reflect.Type
	idx  []int
}

func (k scalarKey) value(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(k.idx)
}

func (k scalarKey) get(c *Config) any { return k.value(c).Interface() }

// set stores val, converting strings from env and flags to the key's type.
func (k scalarKey) set(c *Config, val any) error {
	dst := k.value(c)
	if val == nil {
		return nil
	}
	rv := reflect.ValueOf(val)
	if rv.Type() == k.typ {
		dst.Set(rv)
		return nil
	}
	s := fmt.Sprint(val)
	switch {
	case k.typ == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (examples: 30s, 2m, 1h)", s)
		}
		dst.SetInt(int64(d))
	case k.typ.Kind() == reflect.String:
		dst.SetString(s)
	case k.typ.Kind() == reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		dst.SetInt(int64(n))
	case k.typ.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		dst.SetBool(b)
	default:
		return fmt.Errorf("internal: unsupported type %s", k.typ)
	}
	return nil
}

// scalarKeys lists the scalar keys of the top-level sections; lists and
// maps (processes, inspect.headers) are file-only.
func scalarKeys() []scalarKey {
	var out []scalarKey
	for _, sec := range schemaOf(Config{}) {
		if sec.typ.Kind() != reflect.Struct {
			continue
		}
		for _, f := range sec.children {
			switch f.typ.Kind() {
			case reflect.Map, reflect.Slice, reflect.Struct:
				continue
			}
			out = append(out, scalarKey{path: sec.name + "." + f.name, typ: f.typ, idx: []int{sec.index, f.index}})
		}
	}
	return out
}

func keyByPath(path string) (scalarKey, bool) {
	for _, k := range scalarKeys() {
		if k.path == path {
			return k, true
		}
	}
	return scalarKey{}, false
}
