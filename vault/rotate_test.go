package vault

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var newPass = []byte("a different passphrase entirely")

// TestRotate: every object (new format, legacy, set aside) reads with the
// new key and not with the old; no payload of a new-format object is
// touched; the old master key file is gone from the vault; the new
// passphrase unlocks it and the old no longer does.
func TestRotate(t *testing.T) {
	v, old := newTestVault(t)
	a := store(t, v, []byte("object a"))
	b := store(t, v, []byte("object b"))
	aside := store(t, v, []byte("set aside"))
	if err := v.SetAside(aside.ID); err != nil {
		t.Fatal(err)
	}
	const legacy = "00112233445566778899aabbccddeeff"
	storeLegacy(t, v, legacy, []byte("legacy object"))
	objA, _ := os.ReadFile(v.objectPath(a.ID))
	oldKeyFile, _ := os.ReadFile(filepath.Join(v.dir, keyFile))
	oldRecipient := v.Recipient()

	var recorded []string
	next, res, err := v.Rotate(context.Background(), old, testPass, RotateOptions{NewPassphrase: newPass, ScryptWorkFactor: testWorkFactor,
		Record: func(o, n string) error { recorded = []string{o, n}; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if res.OldRecipient != oldRecipient || res.NewRecipient != v.Recipient() || res.NewRecipient == oldRecipient ||
		len(recorded) != 2 || recorded[1] != res.NewRecipient || res.Migrated != 1 || res.Rewrapped != 4 || !res.PassphraseChanged {
		t.Errorf("result %+v, recorded %v", res, recorded)
	}
	for id, want := range map[string]string{a.ID: "object a", b.ID: "object b", legacy: "legacy object"} {
		if got, err := load(v, id, next); err != nil || string(got) != want {
			t.Errorf("%s with the new key: %q %v", id, got, err)
		}
		if _, err := load(v, id, old); err == nil {
			t.Errorf("%s still opens with the old key", id)
		}
	}
	if v.Format(legacy) != FormatObjectKey {
		t.Error("the legacy object was not migrated")
	}
	if got, _ := os.ReadFile(v.objectPath(a.ID)); !bytes.Equal(got, objA) {
		t.Error("rotation rewrote a payload")
	}
	if hits := scan(t, v.dir, oldKeyFile); len(hits) > 0 {
		t.Errorf("the old master key file is still in the vault: %v", hits)
	}
	// The set-aside object's key was re-wrapped too.
	os.MkdirAll(filepath.Dir(v.keyPath(aside.ID)), 0o700)
	if err := os.Rename(filepath.Join(v.dir, orphansDir, aside.ID+keyExt), v.keyPath(aside.ID)); err != nil {
		t.Fatal(err)
	}
	os.Rename(filepath.Join(v.dir, orphansDir, aside.ID+objectExt), v.objectPath(aside.ID))
	if got, err := load(v, aside.ID, next); err != nil || string(got) != "set aside" {
		t.Errorf("set-aside object after rotation: %q %v", got, err)
	}

	v2, err := Open(v.dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v2.Unlock(testPass); !errors.Is(err, ErrBadPassphrase) {
		t.Errorf("old passphrase after rotation: %v", err)
	}
	if id, err := v2.Unlock(newPass); err != nil || id.Recipient() != res.NewRecipient {
		t.Errorf("new passphrase: %v", err)
	}
	for _, name := range []string{nextKeyFile, nextPubFile, nextKeysDir, oldKeysDir, rotationFile} {
		if _, err := os.Lstat(filepath.Join(v.dir, name)); err == nil {
			t.Errorf("%s left after rotation", name)
		}
	}
	// New objects are wrapped to the new key.
	c := store(t, v, []byte("after"))
	if got, err := load(v, c.ID, next); err != nil || string(got) != "after" {
		t.Errorf("new object: %v", err)
	}
}

// TestRotateRecordFails: if the rotation cannot be recorded, nothing
// changes.
func TestRotateRecordFails(t *testing.T) {
	v, old := newTestVault(t)
	a := store(t, v, []byte("object a"))
	before := v.Recipient()
	_, _, err := v.Rotate(context.Background(), old, testPass, RotateOptions{ScryptWorkFactor: testWorkFactor,
		Record: func(o, n string) error { return errors.New("ledger closed") }})
	if err == nil {
		t.Fatal("rotation succeeded although it was not recorded")
	}
	if v.Recipient() != before {
		t.Error("the recipient changed")
	}
	if got, err := load(v, a.ID, old); err != nil || string(got) != "object a" {
		t.Errorf("read with the old key: %q %v", got, err)
	}
	if _, _, ok, _ := v.PendingRotation(); ok {
		t.Error("a rotation is pending")
	}
}

// copyDir copies a directory tree (a crash at that moment, as the disk
// holds it).
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
}

// TestRotateResume: a crash after the commit point is settled by what the
// ledger trusts: the new key (it recorded the rotation) finishes it, the
// old key undoes it, any other key is refused.
func TestRotateResume(t *testing.T) {
	v, old := newTestVault(t)
	a := store(t, v, []byte("object a"))
	snap := filepath.Join(t.TempDir(), "crash")
	var newR string
	_, _, err := v.Rotate(context.Background(), old, testPass, RotateOptions{ScryptWorkFactor: testWorkFactor,
		Record: func(o, n string) error { newR = n; copyDir(t, v.dir, snap); return errors.New("crash") }})
	if err == nil {
		t.Fatal("want the simulated failure")
	}
	for _, tc := range []struct {
		name, trusted string
		finished      bool
		fails         bool
	}{
		{"recorded", newR, true, false},
		{"not recorded", old.Recipient(), false, false},
		{"foreign", "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "vault")
			copyDir(t, snap, dir)
			cv, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if o, n, ok, err := cv.PendingRotation(); !ok || err != nil || o != old.Recipient() || n != newR {
				t.Fatalf("pending: %s %s %v %v", o, n, ok, err)
			}
			finished, err := cv.ResumeRotation(tc.trusted)
			if tc.fails {
				if err == nil {
					t.Fatal("a rotation to a key the ledger does not trust was adopted")
				}
				return
			}
			if err != nil || finished != tc.finished {
				t.Fatalf("resume: %v %v", finished, err)
			}
			id, err := cv.Unlock(testPass)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]string{true: newR, false: old.Recipient()}[tc.finished]; id.Recipient() != want || cv.Recipient() != want {
				t.Errorf("recipient %s, want %s", id.Recipient(), want)
			}
			if got, err := load(cv, a.ID, id); err != nil || string(got) != "object a" {
				t.Errorf("read after resume: %q %v", got, err)
			}
		})
	}
}

// TestRotateKeepsWorkFactor: the new master key file has the old one's
// scrypt cost unless told otherwise.
func TestRotateKeepsWorkFactor(t *testing.T) {
	v, old := newTestVault(t)
	if got := v.currentWorkFactor(); got != testWorkFactor {
		t.Fatalf("work factor read %d, want %d", got, testWorkFactor)
	}
	if _, _, err := v.Rotate(context.Background(), old, testPass, RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := v.currentWorkFactor(); got != testWorkFactor {
		t.Errorf("after rotation: work factor %d, want %d", got, testWorkFactor)
	}
}
