package integrity

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Input size limits, checked before any parsing.
const (
	MaxSidecarSize  = 64 << 10 // bytes of a sidecar checksum file
	MaxManifestSize = 16 << 20 // bytes of a manifest
)

// acceptedForms lists the accepted checksum line forms for error messages.
const acceptedForms = `want "HEX  NAME", "HEX *NAME", a lone "HEX" or "SHA256 (NAME) = HEX"`

// utf8BOM is skipped at the start of checksum files written by Windows tools.
var utf8BOM = []byte("\xef\xbb\xbf")

// ManifestEntry is one file listed in a manifest.
type ManifestEntry struct {
	Name    string // validated with ValidRemoteName
	Size    int64  // bytes; -1 if the manifest does not say
	Digest  string // lowercase hex
	Algo    Algo   // algorithm of Digest
	Records int64  // record count; -1 if the manifest does not say
}

// checksumLine is one parsed line of a checksum file.
type checksumLine struct {
	line   int    // 1-based line number
	digest string // lowercase hex of the right length
	name   string // as written, possibly with a directory part; "" if bare
	bare   bool   // a lone digest with no name
}

// ParseSidecar returns the lowercase hex digest that a sidecar checksum file
// gives for the file called name.
//
// Each non-blank line is one of "HEX  NAME" or "HEX *NAME" (sha256sum text
// and binary mode; a line starting with '\' has sha256sum's escaped name), a
// lone "HEX", or BSD style "SHA256 (NAME) = HEX" (also OpenSSL's
// "SHA2-256(NAME)= HEX"). CRLF line endings and a leading UTF-8 BOM are
// accepted and hex is case-insensitive. Entries match name by their base
// name, so "./out/f.txt" matches "f.txt"; a lone digest matches any name but
// must then be the only entry.
//
// Errors wrap ErrTooLarge, ErrUnknownAlgo, ErrBadName (name itself is
// invalid), ErrMalformed or ErrDigestLength (with the line number; any bad
// line fails the whole sidecar), ErrDuplicate (two different digests for
// name) or ErrNoEntry.
func ParseSidecar(content []byte, algo Algo, name string) (digest string, err error) {
	if len(content) > MaxSidecarSize {
		return "", fmt.Errorf("%w: sidecar is %d bytes, want at most %d", ErrTooLarge, len(content), MaxSidecarSize)
	}
	if err := algo.check(); err != nil {
		return "", err
	}
	if err := ValidRemoteName(name); err != nil {
		return "", err
	}
	var (
		bare, match           checksumLine
		entries, nBare        int
		matched               bool
		firstLine, secondLine int // of the first two entries
	)
	err = forEachLine(content, func(n int, line string) error {
		e, err := parseChecksumLine(n, line, algo)
		if err != nil {
			return err
		}
		entries++
		switch entries {
		case 1:
			firstLine = n
		case 2:
			secondLine = n
		}
		if e.bare {
			if nBare++; nBare == 1 {
				bare = e
			}
		}
		if e.bare || baseName(e.name) != name {
			return nil
		}
		if matched && e.digest != match.digest {
			return fmt.Errorf("%w: lines %d and %d give different digests for %s", ErrDuplicate, match.line, n, quoteName(name))
		}
		if !matched {
			match, matched = e, true
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	switch {
	case nBare > 0 && entries > 1:
		other := firstLine
		if other == bare.line {
			other = secondLine
		}
		return "", fmt.Errorf("%w: line %d: a lone digest must be the only entry, but line %d is another entry", ErrMalformed, bare.line, other)
	case nBare == 1:
		return bare.digest, nil
	case matched:
		return match.digest, nil
	case entries == 0:
		return "", fmt.Errorf("%w: sidecar has no entries, want one for %s", ErrNoEntry, quoteName(name))
	}
	return "", fmt.Errorf("%w: sidecar has %d entries, none for %s", ErrNoEntry, entries, quoteName(name))
}

// CSV manifest headers, matched exactly.
const (
	csvHeaderSHA256 = "name,size,sha256,records"
	csvHeaderSHA512 = "name,size,sha512,records"
)

// ParseManifest parses a delivery manifest listing several files. It is
// either checksum lines in the forms ParseSidecar accepts, except that a
// lone digest is refused (algorithm algo; Size and Records are -1), or a CSV
// whose first line is exactly "name,size,sha256,records" or
// "name,size,sha512,records" (the header chooses the algorithm; an empty size
// or records field means unknown, -1). Every name is checked with
// ValidRemoteName and may appear only once.
//
// A header-only CSV is an explicit empty delivery and returns no entries; a
// manifest with no entries at all is refused with ErrNoEntry, since it cannot
// be told from a truncated one. Other errors wrap ErrTooLarge,
// ErrUnknownAlgo, ErrMalformed, ErrDigestLength, ErrBadName or ErrDuplicate,
// with the line number.
func ParseManifest(content []byte, algo Algo) ([]ManifestEntry, error) {
	if len(content) > MaxManifestSize {
		return nil, fmt.Errorf("%w: manifest is %d bytes, want at most %d", ErrTooLarge, len(content), MaxManifestSize)
	}
	if err := algo.check(); err != nil {
		return nil, err
	}
	body := bytes.TrimPrefix(content, utf8BOM)
	first := body
	if i := bytes.IndexByte(first, '\n'); i >= 0 {
		first = first[:i]
	}
	first = bytes.TrimSuffix(first, []byte("\r"))
	switch string(first) {
	case csvHeaderSHA256:
		return parseCSVManifest(body, SHA256)
	case csvHeaderSHA512:
		return parseCSVManifest(body, SHA512)
	}
	if bytes.HasPrefix(first, []byte("name,")) {
		return nil, fmt.Errorf("%w: line 1: unknown CSV header, want exactly %q or %q", ErrMalformed, csvHeaderSHA256, csvHeaderSHA512)
	}

	var entries []ManifestEntry
	seen := make(map[string]int)
	err := forEachLine(content, func(n int, line string) error {
		e, err := parseChecksumLine(n, line, algo)
		if err != nil {
			return err
		}
		if e.bare {
			return fmt.Errorf("%w: line %d: lone digest without a file name; a manifest must name every file", ErrMalformed, n)
		}
		if err := checkManifestName(n, e.name, seen); err != nil {
			return err
		}
		entries = append(entries, ManifestEntry{Name: e.name, Size: -1, Digest: e.digest, Algo: algo, Records: -1})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: manifest lists no files", ErrNoEntry)
	}
	return entries, nil
}

// parseCSVManifest parses a manifest whose first line is a valid CSV header.
func parseCSVManifest(body []byte, algo Algo) ([]ManifestEntry, error) {
	r := csv.NewReader(bytes.NewReader(body))
	r.FieldsPerRecord = 4
	r.ReuseRecord = true
	if _, err := r.Read(); err != nil { // the header, already checked
		return nil, csvError(err, nil, algo)
	}
	entries := []ManifestEntry{}
	seen := make(map[string]int)
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return entries, nil
		}
		if err != nil {
			return nil, csvError(err, rec, algo)
		}
		n, _ := r.FieldPos(0)
		e := ManifestEntry{Name: rec[0], Algo: algo}
		if err := checkManifestName(n, e.Name, seen); err != nil {
			return nil, err
		}
		if e.Size, err = parseOptionalCount(n, "size", rec[1]); err != nil {
			return nil, err
		}
		if rec[2] == "" {
			return nil, fmt.Errorf("%w: line %d: field %s is empty, want %d hex digits", ErrMalformed, n, algo, algo.hexLen())
		}
		if e.Digest, err = checkDigest(n, rec[2], algo); err != nil {
			return nil, err
		}
		if e.Records, err = parseOptionalCount(n, "records", rec[3]); err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
}

// csvError describes an encoding/csv error by line and column; rec is the
// record returned with it, if any.
func csvError(err error, rec []string, algo Algo) error {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if errors.Is(pe.Err, csv.ErrFieldCount) {
		return fmt.Errorf("%w: line %d: %d fields, want 4 (name,size,%s,records)", ErrMalformed, pe.StartLine, len(rec), algo)
	}
	return fmt.Errorf("%w: line %d, column %d: %v", ErrMalformed, pe.Line, pe.Column, pe.Err)
}

// checkManifestName validates a manifest entry's name and records it in
// seen, refusing duplicates.
func checkManifestName(n int, name string, seen map[string]int) error {
	if reason := nameProblem(name); reason != "" {
		return fmt.Errorf("%w: line %d: %s: %s", ErrBadName, n, quoteName(name), reason)
	}
	if prev, dup := seen[name]; dup {
		return fmt.Errorf("%w: line %d: %s already listed at line %d", ErrDuplicate, n, quoteName(name), prev)
	}
	seen[name] = n
	return nil
}

// parseOptionalCount parses a CSV size or records field: empty means
// unknown (-1), anything else must be a non-negative decimal number.
func parseOptionalCount(n int, field, s string) (int64, error) {
	if s == "" {
		return -1, nil
	}
	v, err := parseDecimal(s)
	if err != nil {
		return 0, fmt.Errorf("%w: line %d: field %s: %v, or empty for unknown", ErrMalformed, n, field, err)
	}
	return v, nil
}

// forEachLine calls fn with each non-blank line of content and its 1-based
// line number, without the line terminator (LF or CRLF) and without a
// leading UTF-8 BOM. It stops at fn's first error.
func forEachLine(content []byte, fn func(n int, line string) error) error {
	content = bytes.TrimPrefix(content, utf8BOM)
	for n := 1; len(content) > 0; n++ {
		line := content
		if i := bytes.IndexByte(content, '\n'); i >= 0 {
			line, content = content[:i], content[i+1:]
		} else {
			content = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.Trim(line, " \t")) == 0 {
			continue
		}
		if err := fn(n, string(line)); err != nil {
			return err
		}
	}
	return nil
}

// parseChecksumLine parses one non-blank checksum line in any accepted form.
func parseChecksumLine(n int, line string, algo Algo) (checksumLine, error) {
	tok, rest := line, ""
	if i := strings.IndexByte(line, ' '); i >= 0 {
		tok, rest = line[:i], line[i:]
	}
	// sha256sum starts a line with '\' when it escaped the name.
	escaped := len(tok) > 1 && tok[0] == '\\' && isHex(tok[1:])
	if escaped {
		tok = tok[1:]
	}
	if tok == "" || !isHex(tok) {
		if strings.IndexByte(line, '(') > 0 && strings.IndexByte(line, '=') > 0 {
			return parseBSDLine(n, line, algo)
		}
		if tok == "" {
			return checksumLine{}, fmt.Errorf("%w: line %d: starts with a space, %s", ErrMalformed, n, acceptedForms)
		}
		return checksumLine{}, fmt.Errorf("%w: line %d: no hex digest or BSD tag at the start, %s", ErrMalformed, n, acceptedForms)
	}
	e := checksumLine{line: n}
	var err error
	if e.digest, err = checkDigest(n, tok, algo); err != nil {
		return checksumLine{}, err
	}
	if strings.Trim(rest, " \t") == "" {
		if escaped {
			return checksumLine{}, fmt.Errorf("%w: line %d: escaped line without a name, %s", ErrMalformed, n, acceptedForms)
		}
		e.bare = true
		return e, nil
	}
	// rest starts with the first space after the digest.
	if len(rest) < 2 || (rest[1] != ' ' && rest[1] != '*') {
		return checksumLine{}, fmt.Errorf("%w: line %d: digest and name must be separated by two spaces or \" *\", %s", ErrMalformed, n, acceptedForms)
	}
	e.name = rest[2:]
	if escaped {
		var ok bool
		if e.name, ok = unescapeName(e.name); !ok {
			return checksumLine{}, fmt.Errorf(`%w: line %d: bad escape in name, want \\, \n or \r after a backslash`, ErrMalformed, n)
		}
	}
	if e.name == "" {
		return checksumLine{}, fmt.Errorf("%w: line %d: missing file name after the digest, %s", ErrMalformed, n, acceptedForms)
	}
	return e, nil
}

// parseBSDLine parses "TAG (NAME) = HEX", spaces around "(" and "=" being
// optional as in OpenSSL's output.
func parseBSDLine(n int, line string, algo Algo) (checksumLine, error) {
	open := strings.IndexByte(line, '(')
	eq := strings.LastIndexByte(line, '=')
	left := strings.TrimRight(line[:eq], " ")
	if eq < open || !strings.HasSuffix(left, ")") {
		return checksumLine{}, fmt.Errorf("%w: line %d: BSD-style line must be \"TAG (NAME) = HEX\", %s", ErrMalformed, n, acceptedForms)
	}
	tag := strings.TrimRight(line[:open], " ")
	if !algo.bsdTag(tag) {
		return checksumLine{}, fmt.Errorf("%w: line %d: BSD-style tag does not name %s, want %s", ErrMalformed, n, algo, bsdTagHint(algo))
	}
	e := checksumLine{line: n, name: left[open+1 : len(left)-1]}
	if e.name == "" {
		return checksumLine{}, fmt.Errorf("%w: line %d: empty name between \"(\" and \")\", want \"TAG (NAME) = HEX\"", ErrMalformed, n)
	}
	hex := strings.Trim(line[eq+1:], " ")
	if hex == "" || !isHex(hex) {
		return checksumLine{}, fmt.Errorf("%w: line %d: no hex digest after \"=\", want \"TAG (NAME) = HEX\"", ErrMalformed, n)
	}
	var err error
	if e.digest, err = checkDigest(n, hex, algo); err != nil {
		return checksumLine{}, err
	}
	return e, nil
}

// bsdTagHint names the BSD tags accepted for algo.
func bsdTagHint(algo Algo) string {
	switch algo {
	case SHA256:
		return "SHA256 or SHA2-256"
	case SHA512:
		return "SHA512 or SHA2-512"
	}
	return "MD5"
}

// checkDigest checks hex digits s for algo's length and returns them in
// lowercase.
func checkDigest(n int, s string, algo Algo) (string, error) {
	if !isHex(s) {
		return "", fmt.Errorf("%w: line %d: digest is not hexadecimal, want %d hex digits for %s", ErrMalformed, n, algo.hexLen(), algo)
	}
	if len(s) != algo.hexLen() {
		return "", fmt.Errorf("%w: line %d: %d hex digits, want %d for %s", ErrDigestLength, n, len(s), algo.hexLen(), algo)
	}
	return strings.ToLower(s), nil
}

// isHex reports whether s consists of hex digits only (true for "").
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// unescapeName undoes sha256sum's escaping of '\\', '\n' and '\r' in names.
func unescapeName(s string) (string, bool) {
	if strings.IndexByte(s, '\\') < 0 {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i++; i == len(s) {
			return "", false
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			return "", false
		}
	}
	return b.String(), true
}

// baseName returns the last element of a checksum entry's name, which may
// carry a Unix or Windows directory part.
func baseName(name string) string {
	return name[strings.LastIndexAny(name, `/\`)+1:]
}
