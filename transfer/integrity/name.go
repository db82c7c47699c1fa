package integrity

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxNameLen is the longest remote file name accepted, in bytes.
const MaxNameLen = 255

// ValidRemoteName checks that a remote file name is a plain file name. Remote
// names are data, not paths: it refuses the empty name, "." and "..", names
// longer than MaxNameLen bytes, invalid UTF-8, and names containing '/',
// '\\', NUL or any control character (C0, DEL or C1). The error wraps
// ErrBadName and quotes the name with %q, so invalid bytes never reach a log
// raw.
func ValidRemoteName(name string) error {
	if reason := nameProblem(name); reason != "" {
		return fmt.Errorf("%w %s: %s", ErrBadName, quoteName(name), reason)
	}
	return nil
}

// nameProblem describes why name is not a valid remote name, or returns ""
// if it is.
func nameProblem(name string) string {
	switch {
	case name == "":
		return "empty, want 1 to 255 bytes"
	case len(name) > MaxNameLen:
		return fmt.Sprintf("%d bytes long, want at most %d", len(name), MaxNameLen)
	case name == "." || name == "..":
		return "a directory reference, want a file name"
	case strings.TrimSpace(name) != name:
		// " a.txt" and "a.txt" look alike in every log and listing, and a
		// checksum line cannot carry a name that ends in a space.
		return "leading or trailing white space, want a name that starts and ends with a visible character"
	}
	for i := 0; i < len(name); {
		r, size := utf8.DecodeRuneInString(name[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return fmt.Sprintf("invalid UTF-8 at byte %d, want UTF-8", i)
		case r == '/' || r == '\\':
			return fmt.Sprintf("path separator %q at byte %d, want a plain file name", r, i)
		case r == 0:
			return fmt.Sprintf("NUL at byte %d", i)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return fmt.Sprintf("control character %U at byte %d", r, i)
		}
		i += size
	}
	return ""
}

// maxQuotedName bounds how much of a name goes into an error message.
const maxQuotedName = 80

// quoteName quotes name for an error message with %q escaping, shortening
// long names.
func quoteName(name string) string {
	if len(name) <= maxQuotedName {
		return strconv.Quote(name)
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(name[:maxQuotedName]), len(name))
}

// errNotDecimal and errOverflow are parseDecimal's failures; callers turn
// them into messages naming the field.
var (
	errNotDecimal = errors.New("not a decimal number, want digits 0-9")
	errOverflow   = fmt.Errorf("overflows int64, want at most %d", int64(1<<63-1))
)

// parseDecimal parses a non-empty run of ASCII digits as a non-negative
// int64.
func parseDecimal[T string | []byte](s T) (int64, error) {
	if len(s) == 0 {
		return 0, errNotDecimal
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, errNotDecimal
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, errOverflow
		}
		n = n*10 + d
	}
	return n, nil
}
