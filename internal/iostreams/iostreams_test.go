package iostreams

import "testing"

func TestColorEnabled(t *testing.T) {
	tests := []struct {
		name string
		tty  bool
		env  map[string]string
		want bool
	}{
		{"tty", true, nil, true},
		{"not a tty", false, nil, false},
		{"NO_COLOR", true, map[string]string{"NO_COLOR": "1"}, false},
		{"NO_COLOR empty means unset", true, map[string]string{"NO_COLOR": ""}, true},
		{"TERM=dumb", true, map[string]string{"TERM": "dumb"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _, _ := Test()
			s.SetStdoutTTY(tt.tty)
			s.SetNoColor(colorDisabledByEnv(func(k string) string { return tt.env[k] }))
			if got := s.ColorEnabled(); got != tt.want {
				t.Fatalf("ColorEnabled = %v, want %v", got, tt.want)
			}
			cs := s.ColorScheme()
			red := cs.Red("x")
			if tt.want && red == "x" {
				t.Errorf("expected colour codes, got %q", red)
			}
			if !tt.want && red != "x" {
				t.Errorf("expected plain text, got %q", red)
			}
			if StripANSI(red) != "x" {
				t.Errorf("StripANSI(%q) = %q", red, StripANSI(red))
			}
		})
	}
}

func TestStripANSI(t *testing.T) {
	in := "\x1b[1;32mok\x1b[0m plain \x1b[2K"
	if got := StripANSI(in); got != "ok plain " {
		t.Fatalf("got %q", got)
	}
}
