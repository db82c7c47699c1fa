package audit

import (
	"errors"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestSupersedes: a re-sent remote file becomes a new dataset only by naming
// the dataset recorded for that file; the remote index then points to the
// new one, and Verify follows the same rule.
func TestSupersedes(t *testing.T) {
	key := newTestKey(t, "custodian.test/ledger")
	l, path := openTest(t, key)
	first := testDataset(1, StateVerified)
	second := testDataset(2, StateVerified)
	second.RemotePath = first.RemotePath
	third := testDataset(3, StateVerified)
	third.RemotePath = first.RemotePath
	appendDS := func(d *Dataset) error {
		return l.Update(func(tx *Tx) error {
			_, err := tx.Append(Event{Actor: "officer.a", Type: "dataset.received", Dataset: d})
			return err
		})
	}
	if err := appendDS(first); err != nil {
		t.Fatal(err)
	}
	if err := appendDS(second); !errors.Is(err, ErrDuplicateRemote) {
		t.Fatalf("same remote without supersedes: %v", err)
	}
	third.Supersedes = "ds-999999"
	if err := appendDS(third); !errors.Is(err, ErrDuplicateRemote) {
		t.Fatalf("supersedes naming another dataset: %v", err)
	}
	second.Supersedes = first.ID
	if err := appendDS(second); err != nil {
		t.Fatalf("superseding delivery refused: %v", err)
	}
	if id, _, _ := l.RemoteDataset(first.Source, first.RemotePath); id != second.ID {
		t.Fatalf("remote index names %s, want the new delivery %s", id, second.ID)
	}
	// The first may no longer be superseded: the index names the second.
	third.Supersedes = first.ID
	if err := appendDS(third); !errors.Is(err, ErrDuplicateRemote) {
		t.Fatalf("superseding a superseded dataset: %v", err)
	}
	// A later state may not change the link.
	again := *second
	again.Supersedes = ""
	if err := appendDS(&again); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("supersedes changed on a later state: %v", err)
	}
	lone := testDataset(4, StateVerified)
	lone.Supersedes = first.ID
	if err := appendDS(lone); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("supersedes on a remote file with no dataset: %v", err)
	}
	rep, err := Verify(l, VerifyOptions{})
	if err != nil || !rep.OK {
		t.Fatalf("verify: %v %s", err, rep)
	}
	l.Close()

	// Pointing the index back to the superseded dataset is detected.
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRemote).Put(remoteKey(first.Source, first.RemotePath), []byte(first.ID))
	})
	if rep := verifyFile(t, path, VerifyOptions{}); rep.OK || !hasKind(rep, ProblemRemote) {
		t.Fatalf("remote index rolled back to the superseded dataset, verify says: %s", rep)
	}
}

// TestAppendOnce: a notice is recorded once per key; Verify checks the once
// index against the events.
func TestAppendOnce(t *testing.T) {
	key := newTestKey(t, "custodian.test/ledger")
	l, path := openTest(t, key)
	var idx []int64
	for i := 0; i < 3; i++ {
		err := l.Update(func(tx *Tx) error {
			n, rec, err := tx.AppendOnce("refused\x00job\x00name", Event{Actor: "officer.a", Type: "file.refused", Details: map[string]string{"reason": "symlink"}})
			if err == nil && rec != (i == 0) {
				t.Errorf("run %d: recorded=%v", i, rec)
			}
			idx = append(idx, n)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if idx[0] != 0 || idx[1] != 0 || idx[2] != 0 {
		t.Fatalf("indexes %v, want the first event each time", idx)
	}
	if n, _ := l.Size(); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
	err := l.Update(func(tx *Tx) error {
		_, err := tx.Append(Event{Actor: "x", Type: "file.refused", Details: map[string]string{OnceKey: "refused\x00job\x00name"}})
		return err
	})
	if !errors.Is(err, ErrRecorded) {
		t.Fatalf("a second event with the same once key: %v", err)
	}
	if i, ok, _ := l.Once("refused\x00job\x00name"); !ok || i != 0 {
		t.Fatalf("Once: %d %v", i, ok)
	}
	if rep, err := Verify(l, VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("verify: %v %s", err, rep)
	}
	l.Close()
	rawUpdate(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketOnce).Delete([]byte("refused\x00job\x00name")) })
	if rep := verifyFile(t, path, VerifyOptions{}); rep.OK || !hasKind(rep, ProblemOnce) {
		t.Fatalf("deleted once entry, verify says: %s", rep)
	}
}

// TestOnceBucketAddedToOldLedger: a ledger written before the once index
// existed still opens read-only and verifies, and gets the bucket on its
// next writable open.
func TestOnceBucketAddedToOldLedger(t *testing.T) {
	key := newTestKey(t, "custodian.test/ledger")
	l, path := openTest(t, key)
	fill(t, l, 0, 8)
	l.Close()
	rawUpdate(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketOnce) })
	if rep := verifyFile(t, path, VerifyOptions{}); !rep.OK {
		t.Fatalf("old ledger: %s", rep)
	}
	l, err := Open(path, Options{Signer: key.signer})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = l.Update(func(tx *Tx) error {
		_, _, err := tx.AppendOnce("k", Event{Actor: "a", Type: "file.refused"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
