package integrity

import "errors"

// Errors returned by this package. They are wrapped with the line number,
// field or name concerned and with what would have been accepted; test for
// them with errors.Is.
var (
	// ErrTooLarge: a sidecar or manifest exceeds MaxSidecarSize or
	// MaxManifestSize.
	ErrTooLarge = errors.New("checksum file too large")
	// ErrUnknownAlgo: the algorithm is not sha256, sha512 or md5.
	ErrUnknownAlgo = errors.New("unknown checksum algorithm")
	// ErrMalformed: a checksum file line is in none of the accepted forms.
	ErrMalformed = errors.New("malformed checksum file")
	// ErrDigestLength: a digest has the wrong number of hex digits for its
	// algorithm.
	ErrDigestLength = errors.New("wrong digest length")
	// ErrNoEntry: the checksum file has no entry for the file asked about,
	// or a manifest lists no files at all.
	ErrNoEntry = errors.New("no checksum entry")
	// ErrDuplicate: a checksum file lists the same file twice (a sidecar
	// only when the digests differ).
	ErrDuplicate = errors.New("duplicate checksum entry")
	// ErrBadName: a remote file name is not a plain file name.
	ErrBadName = errors.New("invalid remote file name")
	// ErrNoSequence: no sequence number can be taken from a file name.
	ErrNoSequence = errors.New("no sequence number")
	// ErrMixedEndings: a file mixes LF and CRLF line endings. It is only
	// ever reported as a CountResult warning, never returned.
	ErrMixedEndings = errors.New("mixed line endings")
	// ErrClosed: Write was called on a Counter after Close.
	ErrClosed = errors.New("write to closed counter")
)
