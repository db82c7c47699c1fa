package audit

import (
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestDatasetTimeIndex: the dataset list pages newest first through the
// dataset time index, which follows every state change (the same answer
// as the scan of every record an old read-only ledger gets); Verify and
// VerifyIncremental recompute it; an older ledger gets it built on its
// first writable open.
func TestDatasetTimeIndex(t *testing.T) {
	key := newTestKey(t, "custodian.test/ledger")
	l, path := openTest(t, key)
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	add := func(typ EventType, d *Dataset, at time.Time) {
		t.Helper()
		if err := l.Update(func(tx *Tx) error {
			_, err := tx.Append(Event{Actor: "officer.a", Type: typ, Dataset: d, Time: at})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	ds := func(id, job string, st State, recv time.Time) *Dataset {
		return &Dataset{ID: id, Job: job, Source: "moi", Kind: "extract", RemotePath: "/outbox/" + id, State: st, Purpose: "vaccination", ReceivedAt: recv}
	}
	// Two share a received time: then the greater ID comes first.
	add(EvDatasetReceived, ds("a", "extract", StateVerified, t0), t0)
	add(EvDatasetReceived, ds("b", "extract", StateQuarantined, t0.Add(time.Hour)), t0.Add(time.Hour))
	add(EvDatasetReceived, ds("c", "changes", StateHeld, t0.Add(2*time.Hour)), t0.Add(2*time.Hour))
	add(EvDatasetReceived, ds("d", "extract", StateVerified, t0.Add(2*time.Hour)), t0.Add(3*time.Hour))
	add(EvDatasetReleased, ds("b", "extract", StateReleased, time.Time{}), t0.Add(4*time.Hour))
	ids := func(l *Ledger, f DatasetFilter, off, lim int) ([]string, int) {
		t.Helper()
		page, total, err := l.DatasetPage(f, off, lim)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range page {
			out = append(out, d.ID)
		}
		return out, total
	}
	cases := []struct {
		f        DatasetFilter
		off, lim int
		want     []string
		total    int
	}{
		{DatasetFilter{}, 0, 0, []string{"d", "c", "b", "a"}, 4},
		{DatasetFilter{}, 1, 2, []string{"c", "b"}, 4},
		{DatasetFilter{}, 9, 2, nil, 4},
		{DatasetFilter{State: StateReleased}, 0, 10, []string{"b"}, 1}, // the state after the release
		{DatasetFilter{State: StateQuarantined}, 0, 10, nil, 0},
		{DatasetFilter{Job: "extract"}, 0, 10, []string{"d", "b", "a"}, 3},
		{DatasetFilter{Since: t0.Add(time.Hour), Until: t0.Add(2 * time.Hour)}, 0, 10, []string{"b"}, 1},
		{DatasetFilter{Since: t0.Add(2 * time.Hour)}, 0, 10, []string{"d", "c"}, 2},
		{DatasetFilter{Until: t0.Add(time.Hour)}, 0, 10, []string{"a"}, 1},
	}
	check := func(l *Ledger, how string) {
		t.Helper()
		for _, c := range cases {
			got, total := ids(l, c.f, c.off, c.lim)
			if !slices.Equal(got, c.want) || total != c.total {
				t.Errorf("%s: %+v offset %d limit %d: %v of %d, want %v of %d", how, c.f, c.off, c.lim, got, total, c.want, c.total)
			}
		}
	}
	check(l, "indexed")
	if rep, err := Verify(l, VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("%v %s", err, rep)
	}
	cp, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	l.Close()

	// An entry that hides a dataset's new state from the list: found.
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		d := ds("b", "extract", StateQuarantined, t0.Add(time.Hour))
		return tx.Bucket(bucketDatasetTime).Put(datasetTimeKey(d), datasetTimeValue(d))
	})
	if rep := verifyFile(t, path, VerifyOptions{}); rep.OK || !hasKind(rep, ProblemDatasetTime) {
		t.Fatalf("Verify: %s", rep)
	}
	if rep := verifyIncFile(t, path, IncrementalOptions{VerifierKey: key.vkey, Verified: cp}); rep.OK || !hasKind(&rep.Report, ProblemDatasetTime) {
		t.Fatalf("VerifyIncremental: %v", rep)
	}
	// A missing entry: found.
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDatasetTime).Delete(datasetTimeKey(ds("a", "", "", t0)))
	})
	if rep := verifyFile(t, path, VerifyOptions{}); rep.OK || !hasKind(rep, ProblemDatasetTime) {
		t.Fatalf("Verify: %s", rep)
	}

	// A ledger from before the index: the same answers read-only (by
	// reading every record), and the index built on a writable open.
	rawUpdate(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketDatasetTime) })
	if rep := verifyFile(t, path, VerifyOptions{}); !rep.OK {
		t.Fatalf("a ledger without the index is sound: %s", rep)
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	check(ro, "read-only, unindexed")
	ro.Close()
	l, err = Open(path, Options{Signer: key.signer})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	check(l, "rebuilt")
	if rep, err := Verify(l, VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("%v %s", err, rep)
	}
}
