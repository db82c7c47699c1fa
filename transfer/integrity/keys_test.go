package integrity

import (
	"maps"
	"slices"
	"testing"
)

// TestKeysAreTheLedgerFormat pins the key names of a dataset's integrity
// record: ledgers already written use them, so a rename would make old
// datasets read differently (a re-sent file taken for new, a sequence
// forgotten, a scrub counting by another rule).
func TestKeysAreTheLedgerFormat(t *testing.T) {
	for got, want := range map[string]string{
		KeyChecksum: "checksum", KeyDigestAlgo: "digest_algo", KeyDeclaredDigest: "declared_digest",
		KeyReceivedDigest: "received_digest", KeySidecar: "sidecar", KeySidecarSize: "sidecar_size",
		KeySidecarMtime: "sidecar_mtime", KeySymlinkTarget: "symlink_target", KeySequence: "sequence",
		KeyCountProblems: "count_problems", KeyWarning: "warning",
		KeyCountHeader: "count.header", KeyCountTrailer: "count.trailer", KeyCountRecordLength: "count.record_length",
		KeyCountGzip: "count.gzip", KeyCountMaxInflated: "count.max_inflated", KeyCountMaxInflateRatio: "count.max_inflate_ratio",
	} {
		if got != want {
			t.Errorf("key %q is %q in the ledger format", got, want)
		}
	}
	if got := SidecarSuffixes(); !slices.Equal(got, []string{".sha256", ".sha512", ".md5"}) {
		t.Errorf("sidecar suffixes: %q", got)
	}
}

// TestSpecRoundTrip: the counting rule recorded with a dataset reads back
// as the rule that counted it, with the ceilings in effect for gzip.
func TestSpecRoundTrip(t *testing.T) {
	for _, s := range []CountSpec{
		{},
		{RecordLength: 120},
		{Gzip: true},
		{Gzip: true, MaxInflated: 1 << 20, MaxInflateRatio: 50, RecordLength: 7},
	} {
		for _, hdr := range []string{"", `^HDR\|(\d+)$`} {
			in := s
			var err error
			if in, err = NewCountSpec(hdr, `^TRL(\d+)$`, s.RecordLength, s.Gzip, s.MaxInflated, s.MaxInflateRatio); err != nil {
				t.Fatal(err)
			}
			m := EncodeSpec(in)
			out, err := DecodeSpec(m)
			if err != nil {
				t.Fatalf("%v: %v", m, err)
			}
			if !maps.Equal(EncodeSpec(out), m) {
				t.Errorf("%v read back as %v", m, EncodeSpec(out))
			}
			if in.Gzip {
				if n, r := out.InflateLimits(); m[KeyCountMaxInflated] == "" || n <= 0 || r <= 0 {
					t.Errorf("gzip ceilings must be recorded: %v", m)
				}
			}
		}
	}
	if _, err := DecodeSpec(map[string]string{KeyCountRecordLength: "x"}); err == nil {
		t.Error("a malformed record length must be an error")
	}
	if _, err := NewCountSpec("(", "", 0, false, 0, 0); err == nil {
		t.Error("a bad header pattern must be an error")
	}
}
