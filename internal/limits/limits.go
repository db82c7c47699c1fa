// Package limits holds the default decompression ceilings shared by the
// configuration (configs) and the record counter (transfer/integrity). It is
// a leaf: it imports nothing, so configs does not depend on transfer.
package limits

// Decompression ceilings. A gzip "bomb" of a few megabytes can inflate to
// terabytes (deflate reaches about 1032:1, and nested or concatenated
// members multiply nothing but the time spent); without a ceiling the
// counter would spend minutes of CPU on it.
const (
	// DefaultMaxInflated is well above the largest registry extract
	// (a few GiB of text) yet bounds the CPU time to about a minute.
	DefaultMaxInflated = 64 << 30
	// DefaultMaxInflateRatio: registry text compresses about 5-10:1 and
	// space-padded fixed-width records rarely beyond 30:1; 200:1 leaves a
	// wide margin, while a bomb (about 1000:1) is stopped after a few MiB.
	DefaultMaxInflateRatio = 200
)
