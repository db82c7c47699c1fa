package transfer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"custodian/audit"
	"custodian/configs"
	"custodian/internal/synth"
)

func TestRepullQuarantined(t *testing.T) {
	p := startInProcess(t, nil)
	e := newEnv(t, p, func(j *configs.Job, _ *configs.Source) { j.AfterPull = afterPull(t, "delete") })
	e.put(synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 40, Seed: 1}})
	good, err := os.ReadFile(filepath.Join(p.dir, "HR_1.txt.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	e.write("HR_1.txt.sha256", []byte(strings.Repeat("0", 64)+"  HR_1.txt\n"))
	o := e.outcome(e.run(), "HR_1.txt")
	if o.Outcome != string(audit.StateQuarantined) {
		t.Fatalf("%+v", o)
	}
	if _, err := os.Stat(filepath.Join(p.dir, "HR_1.txt")); err != nil {
		t.Fatalf("a quarantined file must stay on the server (after_pull is not applied): %v", err)
	}
	old, _, _ := e.led.Dataset(o.DatasetID)

	// (A reason is required: service.Repull checks it, TestRepullNeedsAReason.)
	// Still wrong on the server: the new copy is quarantined again.
	again, err := e.runner.Repull(context.Background(), o.DatasetID, "officer.a", "provider says the sidecar was regenerated")
	if err != nil || again.Outcome != string(audit.StateQuarantined) {
		t.Fatalf("repull with the same bad sidecar: %+v %v", again, err)
	}
	// The provider fixes its sidecar; the officer pulls again.
	e.write("HR_1.txt.sha256", good)
	fixed, err := e.runner.Repull(context.Background(), o.DatasetID, "officer.a", "provider fixed the sidecar, ticket 42")
	if err != nil || fixed.Outcome != string(audit.StateVerified) || fixed.DatasetID != o.DatasetID {
		t.Fatalf("repull after the fix: %+v %v", fixed, err)
	}
	d, _, _ := e.led.Dataset(o.DatasetID)
	if len(d.PriorObjects) != 2 || d.PriorObjects[0] != old.ObjectID || d.ObjectID == old.ObjectID {
		t.Fatalf("earlier copies must stay listed: %+v", d)
	}
	if _, err := os.Stat(filepath.Join(p.dir, "HR_1.txt")); !os.IsNotExist(err) {
		t.Fatalf("after a verified repull, after_pull applies: %v", err)
	}
	if evs := e.events("dataset.repulled"); len(evs) != 2 || evs[1].Actor != "officer.a" || !strings.Contains(evs[1].Details["reason"], "ticket 42") {
		t.Fatalf("repulls must be on the ledger with actor and reason: %+v", evs)
	}
	if _, err := e.runner.Repull(context.Background(), o.DatasetID, "officer.a", "once more for luck"); !errors.Is(err, ErrState) {
		t.Fatalf("a verified dataset cannot be pulled again: %v", err)
	}
	if _, err := e.runner.Repull(context.Background(), "ds-nope", "officer.a", "no such dataset"); !errors.Is(err, ErrNoDataset) {
		t.Fatalf("unknown dataset: %v", err)
	}
	e.checkInvariants()
}

// release records an officer's release the way the service layer does
// (service.Release owns the rule; this is test setup for the sequence
// chain that follows it).
func (e *env) release(id, reason string) audit.Dataset {
	e.t.Helper()
	var out audit.Dataset
	err := e.led.Update(func(tx *audit.Tx) error {
		d, _, err := tx.Dataset(id)
		if err != nil {
			return err
		}
		next := audit.Next(audit.EvDatasetReleased, d.State)
		if len(next) != 1 {
			return fmt.Errorf("dataset %s is %s: not releasable", id, d.State)
		}
		from := d.State
		d.State, d.Reason = next[0], "released by officer.a: "+reason
		ev, err := tx.Append(audit.Event{Actor: "officer.a", Type: audit.EvDatasetReleased, Job: d.Job, Dataset: &d,
			Details: map[string]string{"reason": reason, "from_state": string(from), "to_state": string(d.State)}})
		out = *ev.Dataset
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// TestSequenceAfterRelease: a held change file the officer released is
// accepted into the chain, so the next file follows on; a released
// quarantined file does not verify.
func TestSequenceAfterRelease(t *testing.T) {
	e := newEnv(t, startInProcess(t, nil), func(j *configs.Job, _ *configs.Source) {
		j.Kind, j.Sequence, j.Pattern = "change", `_(\d{4})\.txt$`, "HR_CHG_*.txt"
	})
	chg := func(seq, delta int) synth.FileSpec {
		return synth.FileSpec{Name: fmt.Sprintf("HR_CHG_%04d.txt", seq), Options: synth.Options{Records: 5, Seed: uint64(seq), Seq: seq, TrailerDelta: delta}}
	}
	e.put(chg(1, 0), chg(2, 0))
	e.run()
	e.put(chg(4, 0))
	held := e.outcome(e.run(), "HR_CHG_0004.txt")
	if held.Outcome != string(audit.StateHeld) {
		t.Fatalf("%+v", held)
	}
	if d := e.release(held.DatasetID, "0003 was withdrawn by the provider, letter 2026-118"); d.State != audit.StateVerified {
		t.Fatalf("releasing a held file: %+v", d)
	}
	// The chain continues from the released file.
	e.put(chg(5, 0))
	if o := e.outcome(e.run(), "HR_CHG_0005.txt"); o.Outcome != string(audit.StateVerified) {
		t.Fatalf("after the release, 0005 is next: %+v", o)
	}
	e.put(chg(6, 1))
	q := e.outcome(e.run(), "HR_CHG_0006.txt")
	if q.Outcome != string(audit.StateQuarantined) {
		t.Fatalf("%+v", q)
	}
	if d := e.release(q.DatasetID, "trailer known wrong, confirmed by phone"); d.State != audit.StateReleased {
		t.Fatalf("a released quarantined file is released, never verified: %+v", d)
	}
	// The chain goes on after a released quarantined file too.
	e.put(chg(7, 0))
	if o := e.outcome(e.run(), "HR_CHG_0007.txt"); o.Outcome != string(audit.StateVerified) {
		t.Fatalf("after releasing 0006, 0007 is next: %+v", o)
	}
	if evs := e.events("dataset.released"); len(evs) != 2 || evs[0].Details["from_state"] != string(audit.StateHeld) {
		t.Fatalf("releases on the ledger: %+v", evs)
	}
	e.checkInvariants()
}

// TestRepullManifest: a quarantined file of a manifest job is pulled again
// through the same planning as a run (its manifest entry is read again),
// and one the manifest no longer lists is refused with ErrChecksumFile,
// storing nothing.
func TestRepullManifest(t *testing.T) {
	a := render(t, synth.Options{Records: 10, Seed: 1})
	e := newEnv(t, startInProcess(t, nil), func(j *configs.Job, _ *configs.Source) {
		j.Checksum, j.Manifest = "manifest", "MANIFEST_*.csv"
	})
	entry := func(records int) []byte {
		return []byte(fmt.Sprintf("name,size,sha256,records\nHR_A.txt,%d,%s,%d\n", len(a), hexOf(a), records))
	}
	e.write("HR_A.txt", a)
	e.write("MANIFEST_1.csv", entry(11))
	o := e.outcome(e.run(), "HR_A.txt")
	if o.Outcome != string(audit.StateQuarantined) || !strings.Contains(o.Reason, "manifest declares 11") {
		t.Fatalf("%+v", o)
	}
	e.write("MANIFEST_1.csv", []byte("name,size,sha256,records\n"))
	if _, err := e.runner.Repull(context.Background(), o.DatasetID, "officer.a", "manifest was regenerated"); !errors.Is(err, ErrChecksumFile) {
		t.Fatalf("a file the manifest no longer lists: %v", err)
	}
	e.write("MANIFEST_1.csv", entry(10))
	fixed, err := e.runner.Repull(context.Background(), o.DatasetID, "officer.a", "provider corrected the manifest")
	if err != nil || fixed.Outcome != string(audit.StateVerified) || fixed.DatasetID != o.DatasetID {
		t.Fatalf("repull after the fix: %+v %v", fixed, err)
	}
	if d, _, _ := e.led.Dataset(o.DatasetID); len(d.PriorObjects) != 1 || d.DeclaredRecords != 10 {
		t.Fatalf("%+v", d)
	}
	e.checkInvariants()
}
