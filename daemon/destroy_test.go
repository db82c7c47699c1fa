package daemon

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"custodian/accounts"
	"custodian/audit"
	"custodian/backup"
	"custodian/internal/synth"
	"custodian/service"
	"custodian/vault"
)

// addSupervisor makes a second supervisor through the four-eyes flow and
// logs them in: a destruction needs two.
func (f *fixture) addSupervisor(t *testing.T, user string) *Client {
	t.Helper()
	return f.addPerson(t, user, "Sam Supervisor", accounts.RoleSupervisor)
}

// scanTree reports the files under dir that contain needle.
func scanTree(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, needle) {
			hits = append(hits, p)
		}
		return nil
	})
	return hits
}

func refusals(t *testing.T, led *audit.Ledger, action string) []audit.Event {
	t.Helper()
	evs, err := led.Events(0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, ev := range evs {
		if ev.Type == audit.EvAccessRefused && ev.Details["action"] == action {
			out = append(out, ev)
		}
	}
	return out
}

// TestDestructionEndToEnd is clause 四(三) on a running daemon: a
// destruction is refused (and recorded) until two supervisors other than
// the requester approved it, and to anyone but the requester; carried out,
// it erases every object of the datasets (quarantined copies and earlier
// receipts included) so that no file under data_dir holds any of their
// keys, rotates the master key, and certifies it on the ledger; the
// certificate verifies; use of the data is refused with who destroyed it
// when; every other object stays readable; a copy of the vault taken
// before opens only with the old master key and passphrase, which the
// installation no longer holds; the daemon restarts after the rotation
// and refuses a vault swapped back.
func TestDestructionEndToEnd(t *testing.T) {
	f := newFixture(t, nil)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 50, Seed: 1}},
		synth.FileSpec{Name: "HR_2.txt", Options: synth.Options{Records: 5, Seed: 2, TrailerDelta: 1}},
		synth.FileSpec{Name: "HR_3.txt", Options: synth.Options{Records: 20, Seed: 3}})
	_, d, stop := f.serve(t)
	defer func() { stop() }()
	ctx := context.Background()
	off := f.as(t, "officer.a")
	if _, err := off.Run(ctx, "extract", nil); err != nil {
		t.Fatal(err)
	}
	ds, err := off.Datasets(ctx)
	if err != nil || len(ds) != 3 {
		t.Fatalf("%d datasets, %v", len(ds), err)
	}
	byName := map[string]service.DatasetView{}
	for _, x := range ds {
		byName[filepath.Base(x.RemotePath)] = x
	}
	good, bad, keep := byName["HR_1.txt"], byName["HR_2.txt"], byName["HR_3.txt"]
	if bad.State != string(audit.StateQuarantined) {
		t.Fatalf("HR_2 is %s", bad.State)
	}
	// A re-pull keeps the earlier copy: destruction must take both.
	if _, err := off.Repull(ctx, bad.ID, "provider says the file is final"); err != nil {
		t.Fatal(err)
	}
	badD, _, _ := d.Ledger.Dataset(bad.ID)
	goodD, _, _ := d.Ledger.Dataset(good.ID)
	keepD, _, _ := d.Ledger.Dataset(keep.ID)
	if len(badD.PriorObjects) != 1 {
		t.Fatalf("the re-pull kept no earlier object: %+v", badD)
	}
	doomed := append(goodD.Objects(), badD.Objects()...)

	sam := f.addSupervisor(t, "sam")
	q, err := off.FileDestruction(ctx, service.DestructionRequest{Datasets: []string{good.ID, bad.ID}, Reason: "retention of 2 years has passed"})
	if err != nil {
		t.Fatal(err)
	}
	if q.Kind != accounts.KindDestruction || q.Approvers != 2 {
		t.Fatalf("request %+v", q)
	}
	if _, err := off.FileDestruction(ctx, service.DestructionRequest{Datasets: []string{good.ID}, Reason: "the same dataset again"}); !errors.Is(err, service.ErrConflict) {
		t.Errorf("a second open request for a dataset: %v", err)
	}
	pass := []byte("a long test passphrase")
	newPass := []byte("the new passphrase after destruction")

	// Unapproved: refused, recorded, nothing erased.
	if _, err := off.RunDestruction(ctx, q.ID, service.DestroyOptions{Passphrase: pass, Rotate: true}); !errors.Is(err, service.ErrConflict) || !strings.Contains(err.Error(), "needs-approvals") {
		t.Fatalf("unapproved destruction: %v", err)
	}
	// Self-approval: refused, recorded.
	if _, err := off.Approve(ctx, q.ID, "I approve my own request"); !errors.Is(err, service.ErrForbidden) {
		t.Fatalf("the requester approved (or an officer could): %v", err)
	}
	if _, err := f.as(t, "sue").Approve(ctx, q.ID, "retention schedule checked"); err != nil {
		t.Fatal(err)
	}
	if _, err := off.RunDestruction(ctx, q.ID, service.DestroyOptions{Passphrase: pass}); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("destruction with one approval of two: %v", err)
	}
	if _, err := sam.Approve(ctx, q.ID, "second approval, list checked"); err != nil {
		t.Fatal(err)
	}
	// Another person than the requester: refused.
	if _, err := f.as(t, "cora").RunDestruction(ctx, q.ID, service.DestroyOptions{Passphrase: pass}); !errors.Is(err, service.ErrForbidden) {
		t.Fatalf("destruction by someone else than the requester: %v", err)
	}
	// A wrong passphrase: refused.
	if _, err := off.RunDestruction(ctx, q.ID, service.DestroyOptions{Passphrase: []byte("wrong passphrase")}); !errors.Is(err, service.ErrForbidden) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if n := len(refusals(t, d.Ledger, string(service.ActDestroy))); n != 4 {
		t.Errorf("%d refusals of destroy.run on the ledger, want 4", n)
	}
	if n := len(refusals(t, d.Ledger, string(service.ActDecideRequest))); n != 1 {
		t.Errorf("%d refusals of the self-approval on the ledger, want 1", n)
	}
	for _, obj := range doomed {
		if !d.Vault.Exists(obj) {
			t.Fatalf("object %s erased by a refused destruction", obj)
		}
	}

	// What is on disk before: the raw keys, their wrapped files, a copy of
	// the vault (as a backup would hold).
	v, err := vault.Open(f.cfg.VaultDir())
	if err != nil {
		t.Fatal(err)
	}
	oldIdent, err := v.Unlock(pass)
	if err != nil {
		t.Fatal(err)
	}
	needles := map[string][]byte{}
	for _, obj := range doomed {
		raw, str, err := v.RevealObjectKey(obj, oldIdent)
		if err != nil {
			t.Fatal(err)
		}
		wrapped, _ := os.ReadFile(mustKeyPath(t, v, obj))
		needles[obj+" raw key"], needles[obj+" identity"], needles[obj+" wrapped key"] = raw, []byte(str), wrapped
	}
	oldMasterKey, _ := os.ReadFile(filepath.Join(f.cfg.VaultDir(), "master.key.age"))
	before := filepath.Join(t.TempDir(), "vault-before")
	if out, err := exec.Command("cp", "-a", f.cfg.VaultDir(), before).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}

	cert, err := off.RunDestruction(ctx, q.ID, service.DestroyOptions{Passphrase: pass, Rotate: true, NewPassphrase: newPass})
	if err != nil {
		t.Fatal(err)
	}
	if cert.VerificationResult != "passed" || len(cert.Items) != 2 || len(cert.DestroyedEvents) != 2 || !cert.MasterKeyRotated ||
		cert.RequestedBy != "officer.a" || cert.ExecutedBy != "officer.a" || !strings.Contains(cert.ApprovedBy, "sue") || !strings.Contains(cert.ApprovedBy, "sam") ||
		cert.KeyFilesErased != len(doomed) || cert.CiphertextsErased != len(doomed) {
		t.Fatalf("certificate %+v", cert)
	}
	if cert.Items[0].SHA256 == "" || cert.Items[0].Name == "" || cert.Items[0].Size == 0 {
		t.Errorf("certificate items %+v", cert.Items)
	}

	// 1. No file under data_dir holds any of the keys (or their wraps).
	for what, needle := range needles {
		if hits := scanTree(t, f.cfg.DataDir, needle); len(hits) > 0 {
			t.Errorf("%s still under data_dir after destruction: %v", what, hits)
		}
	}
	if hits := scanTree(t, f.cfg.DataDir, oldMasterKey); len(hits) > 0 {
		t.Errorf("the old master key file is still under data_dir: %v", hits)
	}

	// 2. The certificate verifies: its proof, under the ledger's key, and
	// its fields against the ledger; changed, it does not.
	vkey, _ := d.Ledger.VerifierKey()
	got, err := f.as(t, "auditor.a").DestructionCertificate(ctx, q.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := service.VerifyCertificate(got, vkey); err != nil {
		t.Fatalf("certificate does not verify: %v", err)
	}
	forged := got
	forged.ExecutedBy = "someone.else"
	if err := service.VerifyCertificate(forged, vkey); err == nil {
		t.Error("a certificate with a changed field verifies")
	}
	for i, idx := range got.DestroyedEvents {
		evs, _ := d.Ledger.Events(idx, 1)
		if len(evs) != 1 || evs[0].Type != audit.EvDatasetDestroyed || evs[0].DatasetID != got.Items[i].Dataset || evs[0].Dataset.SHA256 != got.Items[i].SHA256 {
			t.Errorf("destroyed event %d does not match item %d: %+v", idx, i, evs)
		}
	}

	// 3. The ledger keeps the metadata; use is refused with who, when and
	// which request.
	after, _, _ := d.Ledger.Dataset(good.ID)
	if after.State != audit.StateDestroyed || after.SHA256 != goodD.SHA256 || after.DestroyedFrom != audit.StateVerified {
		t.Errorf("destroyed dataset record %+v", after)
	}
	err = d.Service.CheckNotDestroyed(after)
	if err == nil || !strings.Contains(err.Error(), "destroyed on ") || !strings.Contains(err.Error(), "by officer.a (request "+q.ID+")") {
		t.Errorf("refusal of a destroyed dataset: %v", err)
	}
	if _, err := off.FileDestruction(ctx, service.DestructionRequest{Datasets: []string{bad.ID}, Reason: "destroy it once more"}); err == nil || !strings.Contains(err.Error(), "destroyed on") {
		t.Errorf("a destruction request for a destroyed dataset: %v", err)
	}
	v, err = vault.Open(f.cfg.VaultDir())
	if err != nil {
		t.Fatal(err)
	}
	newIdent, err := v.Unlock(newPass)
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range doomed {
		if _, err := d.Vault.Open(obj, newIdent); err == nil {
			t.Errorf("object %s still decrypts", obj)
		}
	}

	// 4. vault verify's plan counts the destroyed datasets, and every
	// other object reads with the new key and not with the old.
	plan, err := off.ScrubPlan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plan.Destroyed, sortedIDs(good.ID, bad.ID)) || len(plan.Items) != len(keepD.Objects()) {
		t.Errorf("scrub plan: destroyed %v, %d items", plan.Destroyed, len(plan.Items))
	}
	if err := d.Vault.CheckObject(ctx, newIdent, keepD); err != nil {
		t.Errorf("the kept dataset after rotation: %v", err)
	}
	if _, err := d.Vault.Open(keepD.ObjectID, oldIdent); err == nil {
		t.Error("the old master key still opens a live object")
	}

	// 5. The copy taken before: its objects open with the old master key
	// (the old passphrase unlocks the copy's old master.key.age), never
	// with the live one; the live vault has no old key left.
	bv, err := vault.Open(before)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := bv.RevealObjectKey(goodD.ObjectID, newIdent); !errors.Is(err, vault.ErrWrongIdentity) {
		t.Errorf("the live master key opens the old copy's key file: %v", err)
	}
	if _, err := bv.Unlock(newPass); err == nil {
		t.Error("the new passphrase unlocks the old copy")
	}
	bIdent, err := bv.Unlock(pass)
	if err != nil {
		t.Fatal(err)
	}
	if err := bv.CheckObject(ctx, bIdent, goodD); err != nil {
		t.Errorf("the old copy with the old key and passphrase (docs/destruction.md says it still opens): %v", err)
	}
	if _, err := v.Unlock(pass); err == nil {
		t.Error("the old passphrase unlocks the live vault")
	}

	// 6. The daemon restarts after the rotation, and refuses the vault of
	// before put back.
	stop()
	stop = func() {}
	d2, err := Open(f.cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("the daemon does not start after rotation: %v", err)
	}
	d2.Close()
	live := filepath.Join(t.TempDir(), "vault-live")
	if err := os.Rename(f.cfg.VaultDir(), live); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", before, f.cfg.VaultDir()).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if _, err := Open(f.cfg, zerolog.Nop()); !errors.Is(err, ErrSubstituted) || !strings.Contains(err.Error(), "vault.rotated") {
		t.Fatalf("a vault from before the rotation was accepted: %v", err)
	}
	os.RemoveAll(f.cfg.VaultDir())
	os.Rename(live, f.cfg.VaultDir())
	rep, err := audit.Verify(mustOpenRO(t, f.cfg.LedgerPath()), audit.VerifyOptions{})
	if err != nil || !rep.OK {
		t.Fatalf("ledger verify after destruction and rotation: %v %v", err, rep)
	}
}

func mustKeyPath(t *testing.T, v *vault.Vault, id string) string {
	t.Helper()
	p, err := v.KeyFilePath(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustOpenRO(t *testing.T, path string) *audit.Ledger {
	t.Helper()
	l, err := audit.Open(path, audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func sortedIDs(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

// TestBackupAcrossDestruction: a backup holds each object's key file; a
// backup into the same directory after a destruction with rotation
// replaces the old master key, keeps the re-wrapped keys, and overwrites
// and removes the destroyed objects' files; it verifies and decrypts with
// the new passphrase.
func TestBackupAcrossDestruction(t *testing.T) {
	f := newFixture(t, nil)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 30, Seed: 1}},
		synth.FileSpec{Name: "HR_2.txt", Options: synth.Options{Records: 40, Seed: 2}})
	_, d, stop := f.serve(t)
	defer stop()
	ctx := context.Background()
	off := f.as(t, "officer.a")
	if _, err := off.Run(ctx, "extract", nil); err != nil {
		t.Fatal(err)
	}
	ds, _ := off.Datasets(ctx)
	if len(ds) != 2 {
		t.Fatalf("%d datasets", len(ds))
	}
	gone, kept := ds[0], ds[1]
	out := filepath.Join(t.TempDir(), "bk")
	if _, err := f.as(t, "adam").Backup(ctx, out, nil); err != nil {
		t.Fatal(err)
	}
	goneKey := filepath.Join(out, "vault", "keys", gone.ObjectID[:2], gone.ObjectID+".key")
	goneObj := filepath.Join(out, "vault", "objects", gone.ObjectID[:2], gone.ObjectID+".age")
	if !fileExists(goneKey) || !fileExists(goneObj) {
		t.Fatal("the backup lacks an object or its key file")
	}
	oldMaster, _ := os.ReadFile(filepath.Join(out, "vault", "master.key.age"))

	sam := f.addSupervisor(t, "sam")
	q, err := off.FileDestruction(ctx, service.DestructionRequest{Datasets: []string{gone.ID}, Reason: "retention has passed"})
	if err != nil {
		t.Fatal(err)
	}
	f.as(t, "sue").Approve(ctx, q.ID, "schedule checked")
	sam.Approve(ctx, q.ID, "list checked too")
	newPass := []byte("passphrase after the destruction")
	if _, err := off.RunDestruction(ctx, q.ID, service.DestroyOptions{Passphrase: []byte("a long test passphrase"), Rotate: true, NewPassphrase: newPass}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.as(t, "adam").Backup(ctx, out, nil); err != nil {
		t.Fatalf("a backup into the same directory after rotation: %v", err)
	}
	if fileExists(goneKey) || fileExists(goneObj) {
		t.Error("the backup still holds the destroyed object or its key file")
	}
	if hits := scanTree(t, out, oldMaster); len(hits) > 0 {
		t.Errorf("the backup still holds the old master key: %v", hits)
	}
	rep, err := backupVerify(ctx, out, newPass)
	if err != nil || !rep.OK || rep.Decrypted != 1 || len(rep.Unlisted) != 0 {
		t.Fatalf("backup verify after destruction: %+v %v", rep, err)
	}
	keptD, _, _ := d.Ledger.Dataset(kept.ID)
	if !fileExists(filepath.Join(out, "vault", "keys", keptD.ObjectID[:2], keptD.ObjectID+".key")) {
		t.Error("the kept object's key file is not in the backup")
	}
}

func backupVerify(ctx context.Context, dir string, pass []byte) (*backup.Report, error) {
	return backup.Verify(ctx, dir, backup.VerifyOptions{Passphrase: pass})
}
