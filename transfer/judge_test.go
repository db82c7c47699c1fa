package transfer

import (
	"slices"
	"strings"
	"testing"

	"custodian/audit"
	"custodian/transfer/integrity"
)

const (
	digestA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// TestJudge covers every verdict rule: each disagreement between what the
// provider declared and what arrived quarantines the file with its reason;
// a proven file out of sequence is held; checksum none is unverified; and
// quarantine wins over both.
func TestJudge(t *testing.T) {
	sidecar := Expected{Algo: integrity.SHA256, Digest: digestA, Size: -1, Records: -1}
	manifest := Expected{Algo: integrity.SHA256, Digest: digestA, Size: 100, Records: 3}
	good := Observed{Size: 100, SHA256: digestA, Digest: digestA, Count: integrity.CountResult{Records: 3, Declared: 3, DeclaredBy: "trailer"}}
	with := func(o Observed, f func(*Observed)) Observed { f(&o); return o }
	exp := func(e Expected, f func(*Expected)) Expected { f(&e); return e }
	for _, tc := range []struct {
		name    string
		e       Expected
		o       Observed
		state   audit.State
		reasons []string
	}{
		{"sidecar agrees", sidecar, good, audit.StateVerified, nil},
		{"manifest agrees", manifest, good, audit.StateVerified, nil},
		{"no declared count", manifest, with(good, func(o *Observed) { o.Count.Declared, o.Count.DeclaredBy = -1, "" }), audit.StateVerified, nil},
		{"digest mismatch", sidecar, with(good, func(o *Observed) { o.Digest = digestB }), audit.StateQuarantined,
			[]string{"sha256 mismatch: computed " + digestB + ", provider declared " + digestA}},
		{"sha512 mismatch names its algorithm", exp(sidecar, func(e *Expected) { e.Algo = integrity.SHA512 }), with(good, func(o *Observed) { o.Digest = digestB }),
			audit.StateQuarantined, []string{"sha512 mismatch: computed " + digestB + ", provider declared " + digestA}},
		{"size vs manifest", manifest, with(good, func(o *Observed) { o.Size = 99 }), audit.StateQuarantined,
			[]string{"size mismatch: received 99 bytes, manifest declares 100"}},
		{"size unknown without manifest", sidecar, with(good, func(o *Observed) { o.Size = 99 }), audit.StateVerified, nil},
		{"trailer vs manifest", manifest, with(good, func(o *Observed) { o.Count.Declared = 4 }), audit.StateQuarantined,
			[]string{"the trailer declares 4 records but the manifest 3"}},
		{"counted vs manifest", exp(manifest, func(e *Expected) { e.Records = 4 }), with(good, func(o *Observed) { o.Count.Declared = -1 }), audit.StateQuarantined,
			[]string{"record count mismatch: counted 3, manifest declares 4"}},
		{"header and count vs manifest", exp(manifest, func(e *Expected) { e.Records = 5 }), with(good, func(o *Observed) { o.Count.DeclaredBy = "header" }),
			audit.StateQuarantined, []string{"the header declares 3 records but the manifest 5", "record count mismatch: counted 3, manifest declares 5"}},
		{"counter problems", sidecar, with(good, func(o *Observed) {
			o.Count.Problems = []string{"trailer declares 4 records, counted 3", "line 2: length 5 bytes, want 6"}
		}),
			audit.StateQuarantined, []string{"trailer declares 4 records, counted 3", "line 2: length 5 bytes, want 6"}},
		{"every reason, in order", exp(manifest, func(e *Expected) { e.Held = "sequence gap: 3 after 1" }),
			Observed{Size: 1, Digest: digestB, Count: integrity.CountResult{Records: 2, Declared: 9, DeclaredBy: "trailer", Problems: []string{"gzip: truncated"}}},
			audit.StateQuarantined, []string{"sha256 mismatch: computed " + digestB + ", provider declared " + digestA,
				"size mismatch: received 1 bytes, manifest declares 100", "the trailer declares 9 records but the manifest 3",
				"record count mismatch: counted 2, manifest declares 3", "gzip: truncated"}},
		{"held", exp(sidecar, func(e *Expected) { e.Held = "sequence gap: 3 after 1" }), good, audit.StateHeld, []string{"sequence gap: 3 after 1"}},
		{"held but mismatched is quarantined", exp(sidecar, func(e *Expected) { e.Held = "sequence gap" }), with(good, func(o *Observed) { o.Digest = digestB }),
			audit.StateQuarantined, []string{"sha256 mismatch: computed " + digestB + ", provider declared " + digestA}},
		{"unchecked", Expected{Algo: integrity.SHA256, Size: -1, Records: -1, Unchecked: true}, good, audit.StateUnverified, []string{unverifiedReason}},
		{"unchecked with a count problem", Expected{Algo: integrity.SHA256, Size: -1, Records: -1, Unchecked: true},
			with(good, func(o *Observed) { o.Count.Problems = []string{"trailer missing"} }), audit.StateQuarantined, []string{"trailer missing"}},
		{"unchecked and held", Expected{Algo: integrity.SHA256, Size: -1, Records: -1, Unchecked: true, Held: "sequence repeat"}, good,
			audit.StateHeld, []string{"sequence repeat"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state, reasons := judge(tc.e, tc.o)
			if state != tc.state || !slices.Equal(reasons, tc.reasons) {
				t.Fatalf("got %s %q, want %s %q", state, reasons, tc.state, tc.reasons)
			}
		})
	}
}

// FuzzJudge checks the verdict's invariants over arbitrary declarations and
// observations: verified exactly when there is no reason, and then only if
// everything declared agrees, nothing is unchecked and nothing is held; any
// disagreement quarantines; held and unverified carry their one reason.
func FuzzJudge(f *testing.F) {
	f.Add(uint8(0), digestA, digestA, int64(100), int64(100), int64(3), int64(3), int64(3), false, "", "")
	f.Add(uint8(1), digestA, digestB, int64(-1), int64(5), int64(-1), int64(2), int64(-1), false, "sequence gap", "")
	f.Add(uint8(0), "", digestA, int64(-1), int64(0), int64(-1), int64(0), int64(-1), true, "", "trailer missing")
	f.Add(uint8(2), digestB, digestB, int64(7), int64(7), int64(1), int64(2), int64(1), false, "held", "")
	f.Fuzz(func(t *testing.T, algo uint8, declared, got string, declSize, size, declRecs, records, declaredByFile int64, unchecked bool, held, problem string) {
		algos := []integrity.Algo{integrity.SHA256, integrity.SHA512, integrity.MD5}
		e := Expected{Algo: algos[int(algo)%len(algos)], Digest: declared, Size: declSize, Records: declRecs, Unchecked: unchecked, Held: held}
		o := Observed{Size: size, SHA256: got, Digest: got, Count: integrity.CountResult{Records: records, Declared: declaredByFile, DeclaredBy: "trailer"}}
		if problem != "" {
			o.Count.Problems = []string{problem}
		}
		state, reasons := judge(e, o)
		if s2, r2 := judge(e, o); s2 != state || !slices.Equal(r2, reasons) {
			t.Fatal("judge is not deterministic")
		}
		mismatch := (!unchecked && got != declared) || (declSize >= 0 && declSize != size) ||
			(declRecs >= 0 && (declRecs != records || (declaredByFile >= 0 && declaredByFile != declRecs))) || problem != ""
		switch state {
		case audit.StateVerified:
			if len(reasons) != 0 || mismatch || unchecked || held != "" {
				t.Fatalf("verified with reasons %q, mismatch %v, unchecked %v, held %q", reasons, mismatch, unchecked, held)
			}
		case audit.StateQuarantined:
			if !mismatch || len(reasons) == 0 {
				t.Fatalf("quarantined without a disagreement: %q", reasons)
			}
			if problem != "" && reasons[len(reasons)-1] != problem {
				t.Fatalf("the counter's problem must be among the reasons: %q", reasons)
			}
		case audit.StateHeld:
			if mismatch || held == "" || !slices.Equal(reasons, []string{held}) {
				t.Fatalf("held: mismatch %v, reasons %q", mismatch, reasons)
			}
		case audit.StateUnverified:
			if mismatch || held != "" || !unchecked || !slices.Equal(reasons, []string{unverifiedReason}) {
				t.Fatalf("unverified: mismatch %v, held %q, reasons %q", mismatch, held, reasons)
			}
		default:
			t.Fatalf("judge gave state %q", state)
		}
		if mismatch && state != audit.StateQuarantined {
			t.Fatalf("a disagreement must quarantine, got %s", state)
		}
		if !unchecked && got != declared && !strings.Contains(reasons[0], string(e.Algo)+" mismatch") {
			t.Fatalf("a digest mismatch must come first and name %s: %q", e.Algo, reasons)
		}
	})
}
