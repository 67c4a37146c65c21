// Package safename checks identifiers that become parts of file names (job
// and step ids, container ids): one path element, no separators, no "." or
// "..", a bounded length, so that no value can place a file elsewhere.
package safename

import (
	"fmt"
	"strings"
)

// MaxLen is the longest name accepted: well below a file name's limit, with
// room for what is put around it.
const MaxLen = 128

// Check reports why s cannot be a file-name part, naming it as what; nil if
// it can. Letters, digits and . _ - + : @ are accepted.
func Check(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty", what)
	case len(s) > MaxLen:
		return fmt.Errorf("%s is %d characters long, more than %d", what, len(s), MaxLen)
	case s == "." || s == "..":
		return fmt.Errorf("%s=%q is not a name", what, s)
	}
	if i := strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-+:@", r))
	}); i >= 0 {
		return fmt.Errorf("%s=%q holds %q: only letters, digits and . _ - + : @ may be part of a file name", what, s, s[i])
	}
	return nil
}
