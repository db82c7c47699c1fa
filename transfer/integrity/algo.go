package integrity

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strings"
)

// Algo names a checksum algorithm as it appears in sidecar suffixes and
// configuration: "sha256", "sha512" or "md5".
type Algo string

// The supported algorithms.
const (
	SHA256 Algo = "sha256"
	SHA512 Algo = "sha512"
	MD5    Algo = "md5" // accepted from providers, but Weak
)

// ParseAlgo returns the algorithm named s, ignoring case.
func ParseAlgo(s string) (Algo, error) {
	a := Algo(strings.ToLower(s))
	if !a.Valid() {
		return "", fmt.Errorf("%w: %q, want sha256, sha512 or md5", ErrUnknownAlgo, s)
	}
	return a, nil
}

// Valid reports whether a is one of the supported algorithms.
func (a Algo) Valid() bool { return a.hexLen() > 0 }

// check returns an ErrUnknownAlgo error if a is not Valid.
func (a Algo) check() error {
	if !a.Valid() {
		return fmt.Errorf("%w: %q, want sha256, sha512 or md5", ErrUnknownAlgo, string(a))
	}
	return nil
}

// New returns a new hash for a, or nil if a is not Valid.
func (a Algo) New() hash.Hash {
	switch a {
	case SHA256:
		return sha256.New()
	case SHA512:
		return sha512.New()
	case MD5:
		return md5.New()
	}
	return nil
}

// Weak reports whether a digest of this algorithm does not prove integrity
// against a deliberate forger: true for md5 and for unknown algorithms.
func (a Algo) Weak() bool { return a != SHA256 && a != SHA512 }

// hexLen is the digest length in hex digits, or 0 for an unknown algorithm.
func (a Algo) hexLen() int {
	switch a {
	case SHA256:
		return 2 * sha256.Size
	case SHA512:
		return 2 * sha512.Size
	case MD5:
		return 2 * md5.Size
	}
	return 0
}

// bsdTag reports whether tag, the algorithm label of a BSD-style line, names
// a. Both the BSD/GNU spelling (SHA256) and OpenSSL 3's (SHA2-256) are
// accepted, in any case.
func (a Algo) bsdTag(tag string) bool {
	switch a {
	case SHA256:
		return strings.EqualFold(tag, "SHA256") || strings.EqualFold(tag, "SHA2-256")
	case SHA512:
		return strings.EqualFold(tag, "SHA512") || strings.EqualFold(tag, "SHA2-512")
	case MD5:
		return strings.EqualFold(tag, "MD5")
	}
	return false
}

// SidecarSuffixes are the sidecar file suffixes, in the order a job looks
// for them next to a data file: .sha256, .sha512, .md5.
func SidecarSuffixes() []string {
	out := make([]string, len(sidecarSuffixes))
	for i, s := range sidecarSuffixes {
		out[i] = s.suffix
	}
	return out
}

// sidecarSuffixes maps sidecar file suffixes to their algorithm; the one
// list of them.
var sidecarSuffixes = [...]struct {
	suffix string
	algo   Algo
}{
	{".sha256", SHA256},
	{".sha512", SHA512},
	{".md5", MD5},
}

// AlgoForSidecar returns the algorithm of a sidecar file by its suffix
// (.sha256, .sha512 or .md5, in any case), and false if name is not a sidecar
// name or is nothing but the suffix.
func AlgoForSidecar(name string) (Algo, bool) {
	for _, s := range sidecarSuffixes {
		n := len(name) - len(s.suffix)
		if n > 0 && strings.EqualFold(name[n:], s.suffix) {
			return s.algo, true
		}
	}
	return "", false
}
