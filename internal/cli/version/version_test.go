package version

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/pomdev/pomdev/internal/build"
	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/iostreams"
)

func TestFlags(t *testing.T) {
	tests := []struct {
		args     []string
		wantJSON bool
		wantCode int
	}{
		{nil, false, 0},
		{[]string{"--json"}, true, 0},
		{[]string{"extra"}, false, exitcode.Usage},
	}
	for _, tt := range tests {
		ios, _, _, _ := iostreams.Test()
		var got *Options
		cmd := NewCmdVersion(factory.New(ios), func(o *Options) error { got = o; return nil })
		cmd.SetArgs(tt.args)
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		err := cmd.Execute()
		if code := exitcode.Code(err); code != tt.wantCode {
			t.Fatalf("%v: code %d (%v), want %d", tt.args, code, err, tt.wantCode)
		}
		if err == nil && got.JSON != tt.wantJSON {
			t.Fatalf("%v: JSON=%v", tt.args, got.JSON)
		}
	}
}

func TestRun(t *testing.T) {
	info := build.Info{Version: "v1.2.3", Commit: "abc", Date: "2026-11-21", GoVersion: "go1.26", Platform: "linux/amd64"}
	var out bytes.Buffer
	if err := Run(&Options{Out: &out, Info: info}); err != nil {
		t.Fatal(err)
	}
	if out.String() != info.String()+"\n" {
		t.Fatalf("text: %q", out.String())
	}
	out.Reset()
	if err := Run(&Options{Out: &out, Info: info, JSON: true}); err != nil {
		t.Fatal(err)
	}
	var back build.Info
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || back != info {
		t.Fatalf("json: %q (%v)", out.String(), err)
	}
}
