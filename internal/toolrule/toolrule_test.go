package toolrule

import (
	"strings"
	"testing"
)

func TestParseTunnel(t *testing.T) {
	tt, err := ParseTunnel("", " delete_*, drop_table ,")
	if err != nil || tt.Allow != nil || len(tt.Deny) != 2 || tt.String() != "deny delete_*,drop_table" {
		t.Fatalf("%+v %v", tt, err)
	}
	if ok, rule := (ToolSet{tt}).Decide("drop_table"); ok || rule != `deny "drop_table" at the tunnel's own tool policy` {
		t.Fatalf("%v %q", ok, rule)
	}
	if _, err := ParseTunnel("a b", ""); err == nil {
		t.Fatal("a space in a tool name")
	}
	if _, err := ParseTunnel("", "*x"); err == nil {
		t.Fatal("a * not at the end")
	}
}

func TestDecideLayers(t *testing.T) {
	ts := ToolSet{
		{Allow: []Glob{{Text: "get_*"}, {Text: "search"}}, Source: "policy"},
		{Deny: []Glob{{Text: "get_secret", Where: "p:3"}}, Source: "route"},
	}
	for name, want := range map[string]string{
		"get_time":   "",
		"search":     "",
		"searchx":    "not in the allow list at policy",
		"get_secret": `deny "get_secret" at p:3`,
		"delete":     "not in the allow list at policy",
	} {
		ok, rule := ts.Decide(name)
		if ok != (want == "") || rule != want {
			t.Errorf("%s: %v %q, want %q", name, ok, rule, want)
		}
	}
	// An empty allow list allows nothing; no allow list allows all.
	if ok, _ := (ToolSet{{Allow: []Glob{}}}).Decide("x"); ok {
		t.Error("an empty allow list allowed x")
	}
	if ok, _ := (ToolSet{{}}).Decide("x"); !ok || !(ToolSet{{}}).Empty() {
		t.Error("no rules refused x")
	}
}

func TestCheck(t *testing.T) {
	for s, bad := range map[string]bool{"delete_*": false, "a.b-c": false, "": true, "a b": true, "*x": true, "a**": true, "é": true, strings.Repeat("a", 129): true} {
		if err := Check(s); (err != nil) != bad {
			t.Errorf("Check(%q) = %v", s, err)
		}
	}
}
