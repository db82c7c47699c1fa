package audit

import (
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func changeFile(id string, seq int, st State) *Dataset {
	return &Dataset{ID: id, Job: "changes", Source: "moi", Kind: "change", RemotePath: "/outbox/" + id, State: st,
		Integrity: map[string]string{IntegritySequence: fmt.Sprint(seq)}}
}

// TestSequenceIndex: the last accepted sequence of a job's chain is kept
// as datasets are received and released, without reading every dataset;
// Verify and VerifyIncremental recompute it; an older ledger gets it built
// on its first writable open.
func TestSequenceIndex(t *testing.T) {
	key := newTestKey(t, "custodian.test/ledger")
	l, path := openTest(t, key)
	add := func(typ EventType, d *Dataset) {
		t.Helper()
		if err := l.Update(func(tx *Tx) error { _, err := tx.Append(Event{Actor: "officer.a", Type: typ, Dataset: d}); return err }); err != nil {
			t.Fatal(err)
		}
	}
	last := func() (int64, bool) {
		t.Helper()
		n, ok, err := l.LastSequence("changes")
		if err != nil {
			t.Fatal(err)
		}
		return n, ok
	}
	if _, ok := last(); ok {
		t.Fatal("a job with no change file has no chain")
	}
	add(EvDatasetReceived, changeFile("c1", 1, StateVerified))
	add(EvDatasetReceived, changeFile("c2", 2, StateVerified))
	add(EvDatasetReceived, changeFile("c4", 4, StateHeld))
	add(EvDatasetReceived, changeFile("c9", 9, StateQuarantined))
	if n, ok := last(); !ok || n != 2 {
		t.Fatalf("held and quarantined files do not advance the chain: %d %v", n, ok)
	}
	add(EvDatasetReleased, changeFile("c4", 4, StateVerified))
	if n, _ := last(); n != 4 {
		t.Fatalf("a released held file advances it: %d", n)
	}
	add(EvDatasetReceived, changeFile("c3", 3, StateVerified)) // late, lower
	if n, _ := last(); n != 4 {
		t.Fatalf("a lower number does not move it back: %d", n)
	}
	if rep, err := Verify(l, VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("%v %s", err, rep)
	}
	cp, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	l.Close()

	// Lowering the chain would let a repeat pass as the next file: found.
	rawUpdate(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketSequence).Put([]byte("changes"), u64(2)) })
	if rep := verifyFile(t, path, VerifyOptions{}); rep.OK || !hasKind(rep, ProblemSequence) {
		t.Fatalf("Verify: %s", rep)
	}
	if rep := verifyIncFile(t, path, IncrementalOptions{VerifierKey: key.vkey, Verified: cp}); rep.OK || !hasKind(&rep.Report, ProblemSequence) {
		t.Fatalf("VerifyIncremental: %v", rep)
	}

	// A ledger from before the index: built from the records on open.
	rawUpdate(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketSequence) })
	if rep := verifyFile(t, path, VerifyOptions{}); !rep.OK {
		t.Fatalf("a ledger without the index is sound: %s", rep)
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok, err := ro.LastSequence("changes"); err != nil || !ok || n != 4 {
		t.Fatalf("read-only, computed: %d %v %v", n, ok, err)
	}
	ro.Close()
	l, err = Open(path, Options{Signer: key.signer})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n, ok, _ := l.LastSequence("changes"); !ok || n != 4 {
		t.Fatalf("rebuilt: %d %v", n, ok)
	}
	if rep, err := Verify(l, VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("%v %s", err, rep)
	}
}
