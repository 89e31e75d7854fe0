package tunnel

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// screen is the small terminal emulator the status-screen reader needs:
// printable text, CR/LF/BS/TAB, cursor positioning and movement (CSI H f A
// B C D G d), erase in display and line (CSI J K), with SGR, private modes
// and OSC strings ignored. It is not a full VT, but reading what a screen
// shows is more robust than matching raw escape codes.
type screen struct {
	w, h     int
	cells    [][]rune
	x, y     int
	pending  []byte // an incomplete sequence or rune from the last write
	wrapNext bool
}

func newScreen(w, h int) *screen {
	s := &screen{w: w, h: h}
	s.cells = make([][]rune, h)
	for i := range s.cells {
		s.cells[i] = blank(w)
	}
	return s
}

func blank(w int) []rune {
	r := make([]rune, w)
	for i := range r {
		r[i] = ' '
	}
	return r
}

// Lines returns the screen's rows without trailing spaces.
func (s *screen) Lines() []string {
	out := make([]string, s.h)
	for i, row := range s.cells {
		out[i] = strings.TrimRight(string(row), " ")
	}
	return out
}

func (s *screen) lineFeed() {
	if s.y < s.h-1 {
		s.y++
		return
	}
	copy(s.cells, s.cells[1:])
	s.cells[s.h-1] = blank(s.w)
}

func (s *screen) put(r rune) {
	if s.wrapNext {
		s.x, s.wrapNext = 0, false
		s.lineFeed()
	}
	s.cells[s.y][s.x] = r
	if s.x == s.w-1 {
		s.wrapNext = true
	} else {
		s.x++
	}
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }

// Write feeds terminal output to the screen.
func (s *screen) Write(p []byte) (int, error) {
	n := len(p)
	b := append(s.pending, p...)
	s.pending = nil
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == 0x1b:
			used, ok := s.escape(b[i:])
			if !ok {
				s.pending = append([]byte(nil), b[i:]...)
				return n, nil
			}
			i += used
		case c == '\r':
			s.x, s.wrapNext = 0, false
			i++
		case c == '\n' || c == 0x0b || c == 0x0c:
			s.wrapNext = false
			s.lineFeed()
			i++
		case c == '\b':
			s.x, s.wrapNext = max(0, s.x-1), false
			i++
		case c == '\t':
			s.x = min(s.w-1, (s.x/8+1)*8)
			i++
		case c < 0x20 || c == 0x7f:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 && !utf8.FullRune(b[i:]) {
				s.pending = append([]byte(nil), b[i:]...)
				return n, nil
			}
			s.put(r)
			i += size
		}
	}
	return n, nil
}

// escape interprets one escape sequence at the start of b; ok is false when
// b ends before the sequence does.
func (s *screen) escape(b []byte) (used int, ok bool) {
	if len(b) < 2 {
		return 0, false
	}
	switch b[1] {
	case '[':
		j := 2
		for j < len(b) && (b[j] < 0x40 || b[j] > 0x7e) {
			j++
		}
		if j >= len(b) {
			return 0, false
		}
		s.csi(string(b[2:j]), b[j])
		return j + 1, true
	case ']', 'P', '_', '^': // OSC, DCS, APC, PM: until BEL or ST
		for j := 2; j < len(b); j++ {
			if b[j] == 0x07 {
				return j + 1, true
			}
			if b[j] == 0x1b && j+1 < len(b) && b[j+1] == '\\' {
				return j + 2, true
			}
		}
		return 0, false
	case '(', ')', '*', '+', '#':
		if len(b) < 3 {
			return 0, false
		}
		return 3, true
	default:
		return 2, true
	}
}

func (s *screen) csi(params string, final byte) {
	if strings.HasPrefix(params, "?") || strings.HasPrefix(params, ">") || strings.HasPrefix(params, "=") {
		return // private modes (alt screen, cursor visibility, ...)
	}
	var args []int
	for _, f := range strings.Split(params, ";") {
		v, _ := strconv.Atoi(strings.SplitN(f, ":", 2)[0])
		args = append(args, v)
	}
	arg := func(i, def int) int {
		if i < len(args) && args[i] > 0 {
			return args[i]
		}
		return def
	}
	s.wrapNext = false
	switch final {
	case 'H', 'f':
		s.y, s.x = clamp(arg(0, 1)-1, 0, s.h-1), clamp(arg(1, 1)-1, 0, s.w-1)
	case 'A':
		s.y = clamp(s.y-arg(0, 1), 0, s.h-1)
	case 'B':
		s.y = clamp(s.y+arg(0, 1), 0, s.h-1)
	case 'C':
		s.x = clamp(s.x+arg(0, 1), 0, s.w-1)
	case 'D':
		s.x = clamp(s.x-arg(0, 1), 0, s.w-1)
	case 'G':
		s.x = clamp(arg(0, 1)-1, 0, s.w-1)
	case 'd':
		s.y = clamp(arg(0, 1)-1, 0, s.h-1)
	case 'E':
		s.y, s.x = clamp(s.y+arg(0, 1), 0, s.h-1), 0
	case 'F':
		s.y, s.x = clamp(s.y-arg(0, 1), 0, s.h-1), 0
	case 'J':
		switch arg(0, 0) {
		case 0:
			s.eraseLine(s.y, s.x, s.w)
			for y := s.y + 1; y < s.h; y++ {
				s.cells[y] = blank(s.w)
			}
		case 1:
			for y := 0; y < s.y; y++ {
				s.cells[y] = blank(s.w)
			}
			s.eraseLine(s.y, 0, s.x+1)
		default:
			for y := range s.cells {
				s.cells[y] = blank(s.w)
			}
		}
	case 'K':
		switch arg(0, 0) {
		case 0:
			s.eraseLine(s.y, s.x, s.w)
		case 1:
			s.eraseLine(s.y, 0, s.x+1)
		default:
			s.eraseLine(s.y, 0, s.w)
		}
	case 'X':
		s.eraseLine(s.y, s.x, min(s.w, s.x+arg(0, 1)))
	}
}

func (s *screen) eraseLine(y, from, to int) {
	for x := from; x < to && x < s.w; x++ {
		s.cells[y][x] = ' '
	}
}
