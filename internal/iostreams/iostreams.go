// Package iostreams owns pomdev's standard streams and what is known about
// them: whether each is a terminal, whether colour is wanted, and how wide
// the terminal is. Commands write through an *IOStreams so tests can swap in
// buffers and pretend to be (or not be) a terminal.
package iostreams

import (
	"bytes"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// IOStreams bundles stdin, stdout and stderr with their terminal facts.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdinTTY  bool
	stdoutTTY bool
	stderrTTY bool
	noColor   bool
	termWidth func() int
}

// System returns streams bound to the process's stdin, stdout and stderr.
func System() *IOStreams {
	s := &IOStreams{
		In:        os.Stdin,
		Out:       os.Stdout,
		ErrOut:    os.Stderr,
		stdinTTY:  isTerminal(os.Stdin),
		stdoutTTY: isTerminal(os.Stdout),
		stderrTTY: isTerminal(os.Stderr),
		noColor:   colorDisabledByEnv(os.Getenv),
	}
	s.termWidth = func() int {
		if w, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil && w > 0 {
			return w
		}
		return 80
	}
	return s
}

// Test returns streams backed by buffers, none of them a terminal.
func Test() (s *IOStreams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	s = &IOStreams{In: in, Out: out, ErrOut: errOut, termWidth: func() int { return 80 }}
	return s, in, out, errOut
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// colorDisabledByEnv reports whether the environment asks for no colour:
// NO_COLOR set to anything non-empty (https://no-color.org) or TERM=dumb.
func colorDisabledByEnv(getenv func(string) string) bool {
	return getenv("NO_COLOR") != "" || getenv("TERM") == "dumb"
}

// IsStdinTTY reports whether stdin is a terminal.
func (s *IOStreams) IsStdinTTY() bool { return s.stdinTTY }

// IsStdoutTTY reports whether stdout is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStderrTTY reports whether stderr is a terminal.
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// SetStdinTTY overrides terminal detection for stdin (tests).
func (s *IOStreams) SetStdinTTY(v bool) { s.stdinTTY = v }

// SetStdoutTTY overrides terminal detection for stdout (tests).
func (s *IOStreams) SetStdoutTTY(v bool) { s.stdoutTTY = v }

// SetStderrTTY overrides terminal detection for stderr (tests).
func (s *IOStreams) SetStderrTTY(v bool) { s.stderrTTY = v }

// SetNoColor forces colour off (true) or lets terminal detection decide.
func (s *IOStreams) SetNoColor(v bool) { s.noColor = v }

// ColorEnabled reports whether stdout should carry ANSI colour: only on a
// terminal, and never with NO_COLOR or TERM=dumb.
func (s *IOStreams) ColorEnabled() bool { return s.stdoutTTY && !s.noColor }

// TerminalWidth returns stdout's width in columns, 80 when unknown.
func (s *IOStreams) TerminalWidth() int {
	if s.termWidth == nil {
		return 80
	}
	return s.termWidth()
}

// ColorScheme returns helpers that colour text only when ColorEnabled.
func (s *IOStreams) ColorScheme() *ColorScheme { return &ColorScheme{enabled: s.ColorEnabled()} }

// ColorScheme wraps text in ANSI SGR sequences when enabled.
type ColorScheme struct{ enabled bool }

func (c *ColorScheme) wrap(code, text string) string {
	if !c.enabled || text == "" {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

// Bold renders text bold.
func (c *ColorScheme) Bold(text string) string { return c.wrap("1", text) }

// Red renders text red (errors).
func (c *ColorScheme) Red(text string) string { return c.wrap("31", text) }

// Green renders text green (success).
func (c *ColorScheme) Green(text string) string { return c.wrap("32", text) }

// Yellow renders text yellow (warnings).
func (c *ColorScheme) Yellow(text string) string { return c.wrap("33", text) }

// Cyan renders text cyan (URLs, names).
func (c *ColorScheme) Cyan(text string) string { return c.wrap("36", text) }

// Gray renders text dim (secondary detail).
func (c *ColorScheme) Gray(text string) string { return c.wrap("90", text) }

// Enabled reports whether the scheme emits colour.
func (c *ColorScheme) Enabled() bool { return c.enabled }

// StripANSI removes CSI escape sequences from s; used to measure and test
// coloured output.
func StripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
