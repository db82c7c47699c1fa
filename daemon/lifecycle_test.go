package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"

	"custodian/audit"
	"custodian/internal/synth"
	"custodian/service"
)

// TestReadAndExportOverTheAPI: over the socket, a read streams the exact
// received bytes with the recorded outcome in the trailers, the sealed
// vault refuses it with a problem, status shows the seal, and an approved
// export streams age ciphertext that decrypts to the same bytes.
func TestReadAndExportOverTheAPI(t *testing.T) {
	f := newFixture(t, nil)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 50, Seed: 3}})
	cl, _, _ := f.serve(t)
	ctx := context.Background()
	if _, err := cl.Run(ctx, "extract", nil); err != nil {
		t.Fatal(err)
	}
	ds, err := cl.Datasets(ctx)
	if err != nil || len(ds) != 1 || ds[0].State != string(audit.StateVerified) {
		t.Fatalf("datasets: %+v %v", ds, err)
	}
	id := ds[0].ID
	want, err := os.ReadFile(filepath.Join(f.root, "outbox", "HR_1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := cl.ReadDataset(ctx, id, service.ReadRequest{Purpose: "vaccination", Case: "C-1"}, &out); !errors.Is(err, service.ErrConflict) || out.Len() != 0 {
		t.Fatalf("a read while sealed: %v", err)
	}
	if st, _ := cl.Status(ctx); st.Vault == nil || !st.Vault.Sealed {
		t.Fatalf("status must show the vault sealed: %+v", st.Vault)
	}
	if _, err := f.as(t, "sue").Unseal(ctx, []byte("a long test passphrase")); !errors.Is(err, service.ErrForbidden) {
		t.Fatalf("a supervisor unsealed: %v", err)
	}
	if _, err := cl.Unseal(ctx, []byte("a long test passphrase")); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.as(t, "auditor.a").Status(ctx); st.Vault == nil || st.Vault.Sealed || st.Vault.UnsealedBy != "officer.a" {
		t.Fatalf("status must show the vault unsealed: %+v", st.Vault)
	}
	dl, err := cl.ReadDataset(ctx, id, service.ReadRequest{Purpose: "vaccination", Case: "C-1"}, &out)
	if err != nil || !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("read: %v (%d bytes, want %d)", err, out.Len(), len(want))
	}
	sum := sha256.Sum256(want)
	if dl.SHA256 != hex.EncodeToString(sum[:]) || dl.Outcome != service.OutcomeComplete || dl.Bytes != int64(len(want)) {
		t.Fatalf("trailers: %+v", dl)
	}
	evs, _ := f.as(t, "auditor.a").Log(ctx, dl.Index, 1)
	if len(evs) != 1 || evs[0].Type != string(audit.EvDatasetRead) || evs[0].Details["sha256"] != dl.SHA256 || evs[0].Actor != "officer.a" {
		t.Fatalf("the access record: %+v", evs)
	}
	if _, err := f.as(t, "auditor.a").ReadDataset(ctx, id, service.ReadRequest{Purpose: "vaccination", Case: "C-1"}, &bytes.Buffer{}); !errors.Is(err, service.ErrForbidden) {
		t.Fatalf("the auditor read data: %v", err)
	}

	// An export: a contractor files, a supervisor approves, the contractor runs it once.
	key, _ := age.GenerateX25519Identity()
	q, err := f.as(t, "cora").FileExport(ctx, service.ExportRequest{Dataset: id, Recipient: key.Recipient().String(), Purpose: "vaccination", Case: "C-2", Reason: "copy for the health station"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.as(t, "cora").RunExport(ctx, q.ID, &bytes.Buffer{}); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("an export before approval: %v", err)
	}
	if _, err := f.as(t, "sue").Approve(ctx, q.ID, "station's request letter seen"); err != nil {
		t.Fatal(err)
	}
	var enc bytes.Buffer
	if _, err := f.as(t, "cora").RunExport(ctx, q.ID, &enc); err != nil {
		t.Fatal(err)
	}
	r, err := age.Decrypt(&enc, key)
	if err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	if _, err := plain.ReadFrom(r); err != nil || !bytes.Equal(plain.Bytes(), want) {
		t.Fatalf("the export decrypts to %d bytes, %v", plain.Len(), err)
	}
	if _, err := f.as(t, "cora").RunExport(ctx, q.ID, &bytes.Buffer{}); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("a second export: %v", err)
	}
	if _, err := f.as(t, "dora").Seal(ctx); err != nil {
		t.Fatal(err)
	}
}
