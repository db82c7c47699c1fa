package audit

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestDatasetPageMatchesTheDefinition: for every filter, the page read
// from the raw records equals filtering the decoded datasets, including
// values that hold quotes, backslashes, other keys' text and non-ASCII,
// and the order is newest first.
func TestDatasetPageMatchesTheDefinition(t *testing.T) {
	key := newTestKey(t, "custodian.test/ledger")
	l, err := Open(filepath.Join(t.TempDir(), "ledger.db"), Options{Signer: key.signer, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	base := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	jobs := []string{"extract", `ex"tract`, `a\b`, "戶籍", `x","job":"extract`}
	purposes := []string{"vaccination", `"purpose":"census"`, "census"}
	states := []State{StateVerified, StateQuarantined, StateHeld}
	var all []Dataset
	err = l.Update(func(tx *Tx) error {
		for i := range 60 {
			d := Dataset{ID: fmt.Sprintf("ds-%012d", i), Job: jobs[i%len(jobs)], Source: "moi", Kind: "extract",
				RemotePath: fmt.Sprintf(`/outbox/"job":"extract"/%d`, i), State: states[i%len(states)], Purpose: purposes[i%len(purposes)],
				Reason: `"state":"verified"`, ReceivedAt: base.Add(time.Duration(i%17) * time.Hour), Integrity: map[string]string{"job": "x", "state": "y"}}
			all = append(all, d)
			if _, err := tx.Append(Event{Actor: "officer.a", Type: EvDatasetReceived, Dataset: &d}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	filters := []DatasetFilter{{}, {Job: "extract"}, {Job: `ex"tract`}, {Job: `a\b`}, {Job: "戶籍"}, {Job: `x","job":"extract`},
		{State: StateHeld}, {Purpose: `"purpose":"census"`}, {Purpose: "census", State: StateVerified},
		{Since: base.Add(3 * time.Hour), Until: base.Add(9 * time.Hour)}, {Job: "nothing"}}
	for _, f := range filters {
		var want []Dataset
		for _, d := range all {
			if f.Match(d) {
				want = append(want, d)
			}
		}
		slices.SortFunc(want, func(a, b Dataset) int {
			if c := b.ReceivedAt.Compare(a.ReceivedAt); c != 0 {
				return c
			}
			if a.ID > b.ID {
				return -1
			}
			return 1
		})
		for _, pg := range []struct{ off, lim int }{{0, 0}, {0, 5}, {5, 5}, {len(want), 5}} {
			got, total, err := l.DatasetPage(f, pg.off, pg.lim)
			if err != nil {
				t.Fatal(err)
			}
			if total != len(want) {
				t.Fatalf("%+v: total %d, want %d", f, total, len(want))
			}
			end := len(want)
			if pg.lim > 0 {
				end = min(end, pg.off+pg.lim)
			}
			var ids, wantIDs []string
			for _, d := range got {
				ids = append(ids, d.ID)
			}
			for _, d := range want[min(pg.off, len(want)):end] {
				wantIDs = append(wantIDs, d.ID)
			}
			if !slices.Equal(ids, wantIDs) {
				t.Fatalf("%+v page %+v: %v, want %v", f, pg, ids, wantIDs)
			}
		}
	}
	if n, err := l.DatasetCount(); err != nil || n != len(all) {
		t.Fatalf("count %d %v", n, err)
	}
	if _, _, err := l.DatasetPage(DatasetFilter{}, -1, 0); err == nil {
		t.Fatal("a negative offset must be refused")
	}
}
