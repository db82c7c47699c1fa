// Package integrity proves that a registry file fetched over SFTP arrived
// whole. It has no I/O of its own: callers feed it bytes and names, and it
// answers with digests, verdicts and problems.
//
// Checksum files. ParseSidecar reads the one-file sidecar that travels next
// to a data file (sha256sum, BSD or bare-digest form) and ParseManifest reads
// a delivery manifest (sha256sum lines or a name,size,sha256,records CSV).
// Both are strict: a line that is not one of the accepted forms fails the
// whole file with its line number, because a half-understood checksum file
// proves nothing. Inputs are size-capped before parsing.
//
// Remote names. ValidRemoteName treats a remote file name as data, never as
// a path: separators, dot names, control characters and invalid UTF-8 are
// refused, and error messages quote names with %q so hostile bytes never
// reach a log raw.
//
// Record counting. Counter is an io.Writer placed in the transfer pipeline
// next to the hash. It scans bytes with bytes.IndexByte and never allocates
// per line, so it keeps up with multi-GB/s streams. Registry files are UTF-8
// or Big5 (including Big5 user-defined code points); both are counted as
// bytes and never transcoded, which is sound because 0x0A cannot occur inside
// a Big5 double-byte character (trail bytes are 0x40-0x7E and 0xA1-0xFE).
// Only the first line and the start of the current last line (bounded by
// MaxMatchLine) are kept, for the header and trailer patterns. Content
// problems never fail a Write; they are collected and reported by Result
// without quoting record contents, only line numbers, lengths and counts.
// Gzip input is decompressed by a goroutine behind an io.Pipe, so the count
// is of the records, not the compressed bytes.
//
// Sequence numbers. ParseSequence and CheckSequence order change files by
// the number in their names and hold everything after a gap, so a missing
// change file is never skipped silently.
package integrity
