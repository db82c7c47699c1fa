package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"custodian/audit"
	"custodian/internal/synth"
	"custodian/proof"
	"custodian/service"
)

// TestCheckpointsKept: the daemon keeps its checkpoint at start, and
// again (on its schedule) only once the ledger grew; the API lists them,
// and proofs through the API check offline against the verifier key that
// init wrote: an event's inclusion, and the consistency of the first kept
// checkpoint with the current one.
func TestCheckpointsKept(t *testing.T) {
	f := newFixture(t, nil)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 50, Seed: 1}})
	cl, d, _ := f.serve(t)
	ctx := context.Background()
	dir := f.cfg.CheckpointDir()
	if dir != filepath.Join(f.cfg.DataDir, "checkpoints") {
		t.Fatalf("default dir %s", dir)
	}
	var first []proof.Kept
	waitFor(t, "the checkpoint kept at start", func() bool { first, _ = proof.ListKept(dir); return len(first) == 1 })
	if p, err := d.keepCheckpoint("test"); err != nil || (p != "" && !strings.HasSuffix(p, ".txt")) {
		t.Fatalf("keep: %q %v", p, err)
	}
	if _, err := cl.Run(ctx, "extract", nil); err != nil {
		t.Fatal(err)
	}
	p, err := d.keepCheckpoint("schedule")
	if err != nil || p == "" {
		t.Fatalf("after the ledger grew a checkpoint must be kept: %q %v", p, err)
	}
	if p2, err := d.keepCheckpoint("schedule"); err != nil || p2 != "" {
		t.Fatalf("nothing new to keep, but wrote %q (%v)", p2, err)
	}
	kept, err := f.as(t, "auditor.a").KeptCheckpoints(ctx)
	if err != nil || len(kept) < 2 || kept[0].Size >= kept[len(kept)-1].Size || kept[len(kept)-1].File != p {
		t.Fatalf("listed: %+v %v", kept, err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("kept file: %v %v", fi, err)
	}

	vkey := strings.TrimSpace(string(mustRead(t, f.cfg.VerifierKeyPath())))
	oldCP := mustRead(t, kept[0].File)
	con, err := f.as(t, "auditor.a").ProveConsistency(ctx, string(oldCP), "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := proof.Encode(con)
	if r, err := proof.Check(b, proof.Options{VerifierKey: vkey}); err != nil || r.Old.N != kept[0].Size {
		t.Fatalf("consistency: %v %+v", err, r)
	}
	page, err := f.as(t, "auditor.a").SearchEvents(ctx, service.EventQuery{Type: string(audit.EvDatasetReceived), Limit: 10})
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("search: %+v %v", page, err)
	}
	inc, err := f.as(t, "auditor.a").ProveEvent(ctx, page.Events[0].Index)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = proof.Encode(inc)
	if r, err := proof.Check(b, proof.Options{VerifierKey: vkey}); err != nil || r.Event.DatasetID != page.Events[0].DatasetID {
		t.Fatalf("inclusion: %v %+v", err, r)
	}
	if _, err := f.as(t, "auditor.a").ProveEvent(ctx, 1<<40); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("an event past the end: %v", err)
	}
}
