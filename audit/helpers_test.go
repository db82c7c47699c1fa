package audit

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

type testKey struct {
	skey, vkey string
	signer     note.Signer
}

func newTestKey(t testing.TB, name string) testKey {
	t.Helper()
	skey, vkey, err := GenerateSigningKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{skey, vkey, s}
}

// openTest creates a ledger in a temporary directory.
func openTest(t testing.TB, key testKey) (*Ledger, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(path, Options{Signer: key.signer, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

var baseTime = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

func testDataset(i int, state State) *Dataset {
	return &Dataset{
		ID:              fmt.Sprintf("ds-%06d", i),
		Job:             "daily-extract",
		Source:          "registry-a",
		Kind:            "extract",
		RemotePath:      fmt.Sprintf("/out/extract-%06d.csv.gpg", i),
		RemoteSize:      1<<20 + int64(i),
		RemoteMtime:     baseTime.Add(time.Duration(i) * time.Minute),
		Size:            1<<20 + int64(i),
		SHA256:          "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Records:         10000 + int64(i),
		DeclaredRecords: 10000 + int64(i),
		State:           state,
		Purpose:         "statutory statistics <art. 6(1)(e)> & research",
		ObjectID:        fmt.Sprintf("obj-%06d", i),
		Custodian:       "j.doe@agency.example",
		ReceivedAt:      baseTime.Add(time.Duration(i) * time.Minute),
		UpdatedAt:       baseTime.Add(time.Duration(i) * time.Minute),
		Integrity:       map[string]string{"checksum": "sha256", "count_rule": "lines-1"},
	}
}

// genEvent returns event i of a realistic synthetic stream: per dataset
// a receipt (state change), a verification (state change), an access
// (dataset ID only) and an unrelated job event.
func genEvent(i int) Event {
	ds := i / 4
	ev := Event{
		Time:  baseTime.Add(time.Duration(i) * time.Second),
		Actor: "system:custodiand",
		Job:   "daily-extract",
	}
	switch i % 4 {
	case 0:
		ev.Type = EvDatasetReceived
		ev.Dataset = testDataset(ds, StateHeld)
	case 1:
		ev.Type = EvDatasetReleased
		d := testDataset(ds, StateVerified)
		d.UpdatedAt = ev.Time
		ev.Dataset = d
	case 2:
		ev.Type = EvRemoteDelete
		ev.Actor = "a.analyst@agency.example"
		ev.DatasetID = fmt.Sprintf("ds-%06d", ds)
		ev.Details = map[string]string{"purpose": "quarterly report", "ticket": fmt.Sprint("REQ-", i)}
	case 3:
		ev.Type = EvJobFinished
		ev.Details = map[string]string{"files": "1", "duration": "3.2s"}
	}
	return ev
}

// fill appends events genEvent(from..to-1) in batches.
func fill(t testing.TB, l *Ledger, from, to int) {
	t.Helper()
	const batch = 1000
	for i := from; i < to; i += batch {
		err := l.Update(func(tx *Tx) error {
			for j := i; j < min(i+batch, to); j++ {
				if _, err := tx.Append(genEvent(j)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
