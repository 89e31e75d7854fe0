package policy

import (
	"errors"
	"strings"
)

// routeGlob checks a route-name glob: lowercase letters, digits and -,
// optionally ending in *.
func routeGlob(s string) error {
	base := strings.TrimSuffix(s, "*")
	if len(s) > 64 {
		return errors.New("longer than 64 characters")
	}
	for _, r := range base {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return errors.New("route names have lowercase letters, digits and -; * may end a prefix (demo-*)")
		}
	}
	if base == "" && s != "*" {
		return errors.New("empty route name")
	}
	return nil
}
