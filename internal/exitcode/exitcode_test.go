package exitcode

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestCode(t *testing.T) {
	inner := New(AuthRequired, errors.New("401"), "run pomdev inspect --login")
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantHint string
	}{
		{"nil", nil, OK, ""},
		{"plain", errors.New("boom"), Failure, ""},
		{"usage", Usagef("bad flag %q", "x"), Usage, ""},
		{"typed", inner, AuthRequired, "run pomdev inspect --login"},
		{"wrapped", fmt.Errorf("inspect: %w", inner), AuthRequired, "run pomdev inspect --login"},
		{"canceled", fmt.Errorf("up: %w", context.Canceled), Interrupted, ""},
		{"hint from inner", New(Unreachable, inner, ""), Unreachable, "run pomdev inspect --login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Code(tt.err); got != tt.wantCode {
				t.Errorf("Code = %d, want %d", got, tt.wantCode)
			}
			if got := Hint(tt.err); got != tt.wantHint {
				t.Errorf("Hint = %q, want %q", got, tt.wantHint)
			}
		})
	}
	if New(Failure, nil, "x") != nil {
		t.Error("New(nil) must be nil")
	}
}

func TestTableIsComplete(t *testing.T) {
	seen := map[int]bool{}
	for _, row := range Table {
		if seen[row.Code] {
			t.Errorf("code %d listed twice", row.Code)
		}
		seen[row.Code] = true
	}
	for _, c := range []int{OK, Failure, Usage, AuthRequired, Unreachable, ToolError, Interrupted} {
		if !seen[c] {
			t.Errorf("code %d missing from Table", c)
		}
	}
}
