package vault

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

// storeLegacy writes data as an object of the format before per-object
// keys: one age file encrypted to the master key, no key file.
func storeLegacy(t *testing.T, v *Vault, id string, data []byte) {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, v.recipient)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := v.objectPath(id)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// scan reports the files under dir that contain needle.
func scan(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, needle) {
			hits = append(hits, p)
		}
		return nil
	})
	return hits
}

// TestObjectKeyFormat: a new object has a key file of its own (0600),
// wrapped to the master key; the master key alone does not open the
// ciphertext, and the key is nowhere on disk in the clear.
func TestObjectKeyFormat(t *testing.T) {
	v, ident := newTestVault(t)
	info := store(t, v, []byte("per-object key"))
	if v.Format(info.ID) != FormatObjectKey {
		t.Fatalf("format %s", v.Format(info.ID))
	}
	fi, err := os.Stat(v.keyPath(info.ID))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	obj, _ := os.ReadFile(v.objectPath(info.ID))
	if HeaderOpens(obj, ident) {
		t.Error("the master key opens the object's ciphertext: the data key is not kept apart")
	}
	raw, str, err := v.RevealObjectKey(info.ID, ident)
	if err != nil {
		t.Fatal(err)
	}
	for _, needle := range [][]byte{raw, []byte(str), []byte(strings.ToLower(str))} {
		if hits := scan(t, v.dir, needle); len(hits) > 0 {
			t.Errorf("the object key is on disk in the clear: %v", hits)
		}
	}
	if got, err := load(v, info.ID, ident); err != nil || string(got) != "per-object key" {
		t.Fatalf("read: %q %v", got, err)
	}
}

// TestLegacyObjectReads: objects written before per-object keys (no key
// file, encrypted to the master key) keep reading.
func TestLegacyObjectReads(t *testing.T) {
	v, ident := newTestVault(t)
	const id = "0123456789abcdef0123456789abcdef"
	storeLegacy(t, v, id, []byte("old format"))
	if v.Format(id) != FormatLegacy {
		t.Fatalf("format %s", v.Format(id))
	}
	if got, err := load(v, id, ident); err != nil || string(got) != "old format" {
		t.Fatalf("legacy read: %q %v", got, err)
	}
	if _, _, err := v.RevealObjectKey(id, ident); !errors.Is(err, ErrNotFound) {
		t.Errorf("RevealObjectKey of a legacy object: %v", err)
	}
}

// TestDestroy: after Destroy nothing of the object is left in the vault:
// not the key file, not the ciphertext, not the raw key in any file; and a
// copy of the ciphertext taken before (as a stray copy or an export
// would be) no longer opens with the master key, which is still there.
// With one age file per object wrapped to the master key (the design
// before per-object keys) that copy would still decrypt.
func TestDestroy(t *testing.T) {
	v, ident := newTestVault(t)
	keep := store(t, v, []byte("stays"))
	info := store(t, v, bytes.Repeat([]byte("secret record\n"), 5000))
	raw, str, err := v.RevealObjectKey(info.ID, ident)
	if err != nil {
		t.Fatal(err)
	}
	wrapped, _ := os.ReadFile(v.keyPath(info.ID))
	copyOfCiphertext, _ := os.ReadFile(v.objectPath(info.ID))
	if _, err := age.Decrypt(bytes.NewReader(copyOfCiphertext), ident.x); err == nil {
		t.Fatal("precondition: the master key alone opens the ciphertext")
	}
	// Also a copy set aside by crash recovery (the same ID in orphans/).
	e, err := v.Destroy(info.ID, ident)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Gone || e.KeyFilesErased != 1 || e.CiphertextsErased != 1 || e.MasterOpens || e.Format != FormatObjectKey {
		t.Errorf("erasure %+v", e)
	}
	if ok, err := v.Erased(info.ID); !ok || err != nil {
		t.Errorf("Erased: %v %v", ok, err)
	}
	for name, needle := range map[string][]byte{"raw key": raw, "identity": []byte(str), "identity (lower case)": []byte(strings.ToLower(str)), "wrapped key": wrapped} {
		if hits := scan(t, filepath.Dir(v.dir), needle); len(hits) > 0 {
			t.Errorf("%s still on disk after destruction: %v", name, hits)
		}
	}
	// The copy: with the master key (and the object's own key gone) it
	// does not decrypt.
	if HeaderOpens(copyOfCiphertext, ident) {
		t.Error("a copy of the ciphertext opens with the master key after destruction")
	}
	if _, err := v.Open(info.ID, ident); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open after destruction: %v", err)
	}
	// Put the copy back: the vault cannot open it either.
	os.MkdirAll(filepath.Dir(v.objectPath(info.ID)), 0o700)
	os.WriteFile(v.objectPath(info.ID), copyOfCiphertext, 0o600)
	if _, err := v.Open(info.ID, ident); !errors.Is(err, ErrKeyMissing) {
		t.Errorf("Open of a copy after destruction: %v, want ErrKeyMissing", err)
	}
	os.Remove(v.objectPath(info.ID))
	// Idempotent: a second run finds it gone.
	if e, err := v.Destroy(info.ID, ident); err != nil || !e.Gone || e.KeyFilesErased+e.CiphertextsErased != 0 {
		t.Errorf("second Destroy: %+v %v", e, err)
	}
	if got, err := load(v, keep.ID, ident); err != nil || string(got) != "stays" {
		t.Errorf("other object: %q %v", got, err)
	}
}

// TestDestroySetAside: copies crash recovery set aside in orphans/ are
// erased with the object.
func TestDestroySetAside(t *testing.T) {
	v, ident := newTestVault(t)
	info := store(t, v, []byte("set aside"))
	if err := v.SetAside(info.ID); err != nil {
		t.Fatal(err)
	}
	if v.HasKeyFile(info.ID) || v.Exists(info.ID) {
		t.Fatal("SetAside left files in keys/ or objects/")
	}
	e, err := v.Destroy(info.ID, ident)
	if err != nil || !e.Gone || e.KeyFilesErased != 1 || e.CiphertextsErased != 1 {
		t.Fatalf("%+v %v", e, err)
	}
	if got := dirEntries(t, filepath.Join(v.dir, orphansDir)); len(got) != 0 {
		t.Errorf("orphans/ after destruction: %v", got)
	}
}

// TestDestroyLegacy: a legacy object's data key is in its own header,
// wrapped to the master key, so a copy stays decryptable until the master
// key is rotated; Destroy says so, and after a rotation it no longer is.
func TestDestroyLegacy(t *testing.T) {
	v, ident := newTestVault(t)
	const id = "fedcba9876543210fedcba9876543210"
	storeLegacy(t, v, id, []byte("legacy data"))
	e, err := v.Destroy(id, ident)
	if err != nil || !e.Gone || e.Format != FormatLegacy {
		t.Fatalf("%+v %v", e, err)
	}
	if !e.MasterOpens {
		t.Error("a legacy object's header must still open with the master key before rotation")
	}
	next, _, err := v.Rotate(context.Background(), ident, testPass, RotateOptions{ScryptWorkFactor: testWorkFactor})
	if err != nil {
		t.Fatal(err)
	}
	if e.Recheck(next) {
		t.Error("after rotation the new master key opens the destroyed legacy object's header")
	}
}
