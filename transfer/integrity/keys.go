package integrity

import (
	"fmt"
	"regexp"
	"strconv"
)

// Keys of a dataset's integrity record (audit.Dataset.Integrity): what was
// declared, received and checked when a file was ingested. Ingest writes
// them; re-sent detection, the sequence check and the vault scrub read them
// back. The names and the values' formats are part of the ledger format:
// ledgers written years ago must read the same, so they never change.
const (
	// KeyChecksum is the job's checksum mode at ingest: sidecar, manifest
	// or none.
	KeyChecksum = "checksum"
	// KeyDigestAlgo is the algorithm of the provider's declared digest.
	KeyDigestAlgo = "digest_algo"
	// KeyDeclaredDigest is the digest the provider declared (hex).
	KeyDeclaredDigest = "declared_digest"
	// KeyReceivedDigest is the digest, in KeyDigestAlgo, of the bytes
	// received, when that algorithm is not SHA-256 (hex).
	KeyReceivedDigest = "received_digest"
	// KeySidecar, KeySidecarSize and KeySidecarMtime are the listing of the
	// sidecar the declared digest came from (its name, its size in decimal
	// and its modification time in RFC 3339 with nanoseconds, UTC).
	KeySidecar      = "sidecar"
	KeySidecarSize  = "sidecar_size"
	KeySidecarMtime = "sidecar_mtime"
	// KeySymlinkTarget is the path read for a followed symbolic link.
	KeySymlinkTarget = "symlink_target"
	// KeySequence is a change file's sequence number, in decimal.
	KeySequence = "sequence"
	// KeyCountProblems lists the record counter's problems, "; "-separated.
	KeyCountProblems = "count_problems"
	// KeyWarning is a warning recorded with the dataset (a weak digest).
	KeyWarning = "warning"
)

// The counting rule used at ingest is kept with each dataset (EncodeSpec),
// so the scrub recounts with the same rule (DecodeSpec) even after the job's
// configuration changed.
const (
	KeyCountHeader       = "count.header"
	KeyCountTrailer      = "count.trailer"
	KeyCountRecordLength = "count.record_length"
	KeyCountGzip         = "count.gzip"
	// The decompression ceilings in effect (gzip only), so the scrub stops
	// exactly where ingest stopped; datasets recorded without them are
	// scrubbed with the defaults, which are never unbounded.
	KeyCountMaxInflated     = "count.max_inflated"
	KeyCountMaxInflateRatio = "count.max_inflate_ratio"
)

// NewCountSpec makes a counting rule from its configured form: header and
// trailer regular expressions (empty: none), a record length (0: any), gzip
// mode, and the decompression ceilings (zero: the defaults).
func NewCountSpec(header, trailer string, recordLength int, gz bool, maxInflated int64, maxRatio int) (CountSpec, error) {
	spec := CountSpec{RecordLength: recordLength, Gzip: gz, MaxInflated: maxInflated, MaxInflateRatio: maxRatio}
	var err error
	if header != "" {
		if spec.Header, err = regexp.Compile(header); err != nil {
			return spec, fmt.Errorf("header regex: %w", err)
		}
	}
	if trailer != "" {
		if spec.Trailer, err = regexp.Compile(trailer); err != nil {
			return spec, fmt.Errorf("trailer regex: %w", err)
		}
	}
	return spec, nil
}

// EncodeSpec is s as integrity-record entries (the count.* keys).
func EncodeSpec(s CountSpec) map[string]string {
	m := map[string]string{}
	if s.Header != nil {
		m[KeyCountHeader] = s.Header.String()
	}
	if s.Trailer != nil {
		m[KeyCountTrailer] = s.Trailer.String()
	}
	if s.RecordLength > 0 {
		m[KeyCountRecordLength] = strconv.Itoa(s.RecordLength)
	}
	if s.Gzip {
		m[KeyCountGzip] = "true"
		n, r := s.InflateLimits()
		m[KeyCountMaxInflated] = strconv.FormatInt(n, 10)
		m[KeyCountMaxInflateRatio] = strconv.Itoa(r)
	}
	return m
}

// DecodeSpec reads back the counting rule EncodeSpec recorded in m.
func DecodeSpec(m map[string]string) (CountSpec, error) {
	var n, ratio int
	var maxInflated int64
	for _, f := range []struct {
		key string
		set func(string) error
	}{
		{KeyCountRecordLength, func(v string) (err error) { n, err = strconv.Atoi(v); return err }},
		{KeyCountMaxInflated, func(v string) (err error) { maxInflated, err = strconv.ParseInt(v, 10, 64); return err }},
		{KeyCountMaxInflateRatio, func(v string) (err error) { ratio, err = strconv.Atoi(v); return err }},
	} {
		if v := m[f.key]; v != "" {
			if err := f.set(v); err != nil {
				return CountSpec{}, fmt.Errorf("%s: %q", f.key, v)
			}
		}
	}
	return NewCountSpec(m[KeyCountHeader], m[KeyCountTrailer], n, m[KeyCountGzip] == "true", maxInflated, ratio)
}
