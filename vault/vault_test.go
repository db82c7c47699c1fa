package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"filippo.io/age"
)

var testPass = []byte("correct horse battery staple")

// testWorkFactor keeps scrypt cheap in tests.
const testWorkFactor = 2

func newTestVault(t testing.TB) (*Vault, *Identity) {
	t.Helper()
	return newTestVaultAt(t, t.TempDir())
}

// newTestVaultAt creates and unlocks a vault in a new directory under base.
func newTestVaultAt(t testing.TB, base string) (*Vault, *Identity) {
	t.Helper()
	dir := filepath.Join(base, "vault")
	if err := Init(dir, testPass, InitOptions{ScryptWorkFactor: testWorkFactor}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	v, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	id, err := v.Unlock(testPass)
	if err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	return v, id
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func randInt(t testing.TB, n int) int {
	t.Helper()
	x, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		t.Fatal(err)
	}
	return int(x.Int64())
}

// store writes data as one object, in random-sized chunks.
func store(t testing.TB, v *Vault, data []byte) ObjectInfo {
	t.Helper()
	w, err := v.Create(context.Background())
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	defer w.Abort()
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+randInt(t, 200<<10))
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		rest = rest[n:]
	}
	info, err := w.Commit()
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return info
}

func load(v *Vault, id string, ident *Identity) ([]byte, error) {
	r, err := v.Open(id, ident)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestRoundTrip(t *testing.T) {
	v, ident := newTestVault(t)
	sizes := []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 5 << 20}
	var ids []string
	for _, size := range sizes {
		data := randBytes(t, size)
		info := store(t, v, data)
		if !ValidID(info.ID) {
			t.Fatalf("size %d: invalid ID %q", size, info.ID)
		}
		if info.PlainSize != int64(size) {
			t.Errorf("size %d: PlainSize = %d", size, info.PlainSize)
		}
		p, err := v.Path(info.ID)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != info.CipherSize {
			t.Errorf("size %d: CipherSize = %d, file has %d", size, info.CipherSize, fi.Size())
		}
		if !v.Exists(info.ID) {
			t.Errorf("size %d: Exists = false", size)
		}
		got, err := load(v, info.ID, ident)
		if err != nil {
			t.Fatalf("size %d: read: %v", size, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("size %d: plaintext mismatch (got %d bytes)", size, len(got))
		}
		ids = append(ids, info.ID)
	}

	listed, err := v.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(ids) {
		t.Fatalf("List = %d ids, want %d", len(listed), len(ids))
	}
	for _, id := range ids {
		if !contains(listed, id) {
			t.Errorf("List misses %s", id)
		}
	}
	for i := 1; i < len(listed); i++ {
		if listed[i-1] >= listed[i] {
			t.Errorf("List not sorted: %v", listed)
		}
	}
	if got := dirEntries(t, filepath.Join(v.dir, tmpDir)); len(got) != 0 {
		t.Errorf("tmp/ not empty after commits: %v", got)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestRemove(t *testing.T) {
	v, ident := newTestVault(t)
	info := store(t, v, []byte("hello"))
	if err := v.Remove(info.ID); err != nil {
		t.Fatal(err)
	}
	if v.Exists(info.ID) {
		t.Error("Exists after Remove")
	}
	if ids, _ := v.List(); len(ids) != 0 {
		t.Errorf("List after Remove = %v", ids)
	}
	if err := v.Remove(info.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove: %v, want ErrNotFound", err)
	}
	if _, err := v.Open(info.ID, ident); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open removed: %v, want ErrNotFound", err)
	}
}

func TestListIgnoresStrayFiles(t *testing.T) {
	v, _ := newTestVault(t)
	info := store(t, v, []byte("x"))
	objects := filepath.Join(v.dir, objectsDir)
	mustWrite(t, filepath.Join(objects, "README"), "x")
	mustWrite(t, filepath.Join(objects, info.ID[:2], "junk.age"), "x")
	mustWrite(t, filepath.Join(objects, info.ID[:2], info.ID+".tmp"), "x")
	other := "ff" + info.ID[2:]
	if info.ID[:2] == "ff" {
		other = "00" + info.ID[2:]
	}
	// An object filed under the wrong prefix is not listed.
	mustWrite(t, filepath.Join(objects, info.ID[:2], other+objectExt), "x")
	ids, err := v.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != info.ID {
		t.Errorf("List = %v, want [%s]", ids, info.ID)
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestUnlock(t *testing.T) {
	v, ident := newTestVault(t)
	if ident.Recipient() != v.Recipient() {
		t.Errorf("identity recipient %s != vault recipient %s", ident.Recipient(), v.Recipient())
	}
	if _, err := v.Unlock([]byte("wrong passphrase")); !errors.Is(err, ErrBadPassphrase) {
		t.Errorf("wrong passphrase: %v, want ErrBadPassphrase", err)
	}
	if _, err := v.Unlock(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty passphrase: %v, want ErrInvalidArgument", err)
	}
}

func TestIdentityRedacted(t *testing.T) {
	_, ident := newTestVault(t)
	for _, s := range []string{ident.String(), ident.GoString()} {
		if strings.Contains(strings.ToUpper(s), "AGE-SECRET-KEY") {
			t.Errorf("identity formatting leaks the secret key: %s", s)
		}
	}
}

func TestInitRefusesOverwrite(t *testing.T) {
	v, _ := newTestVault(t)
	before, err := os.ReadFile(filepath.Join(v.dir, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	err = Init(v.dir, []byte("other"), InitOptions{ScryptWorkFactor: testWorkFactor})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second Init: %v, want ErrExists", err)
	}
	after, err := os.ReadFile(filepath.Join(v.dir, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("second Init modified master.key.age")
	}

	// Either key file alone (an interrupted Init) is enough to refuse.
	for _, name := range []string{pubFile, keyFile} {
		dir := t.TempDir()
		mustWrite(t, filepath.Join(dir, name), "x")
		if err := Init(dir, testPass, InitOptions{ScryptWorkFactor: testWorkFactor}); !errors.Is(err, ErrExists) {
			t.Errorf("Init with only %s present: %v, want ErrExists", name, err)
		}
	}

	// A non-empty objects/ is never adopted.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, objectsDir, "ab"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Init(dir, testPass, InitOptions{ScryptWorkFactor: testWorkFactor}); !errors.Is(err, ErrExists) {
		t.Errorf("Init with non-empty objects/: %v, want ErrExists", err)
	}
}

func TestInitOptions(t *testing.T) {
	dir := t.TempDir()
	for _, wf := range []int{-1, MaxScryptWorkFactor + 1} {
		if err := Init(dir, testPass, InitOptions{ScryptWorkFactor: wf}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("work factor %d: %v, want ErrInvalidArgument", wf, err)
		}
	}
	if err := Init(dir, nil, InitOptions{ScryptWorkFactor: testWorkFactor}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty passphrase: %v, want ErrInvalidArgument", err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := Init(dir, testPass, InitOptions{ScryptWorkFactor: testWorkFactor}); !errors.Is(err, ErrPermissions) {
		t.Errorf("world-writable dir: %v, want ErrPermissions", err)
	}
	if got := dirEntries(t, dir); len(got) != 0 {
		t.Errorf("refused Init left files: %v", got)
	}
	if wf, err := (InitOptions{}).workFactor(); err != nil || wf != DefaultScryptWorkFactor {
		t.Errorf("default work factor = %d, %v; want %d", wf, err, DefaultScryptWorkFactor)
	}
}

func TestInitWorkFactorRecorded(t *testing.T) {
	v, _ := newTestVault(t)
	sealed, err := os.ReadFile(filepath.Join(v.dir, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	// The scrypt stanza line is "-> scrypt <salt> <logN>".
	re := regexp.MustCompile(`(?m)^-> scrypt \S+ (\d+)$`)
	m := re.FindSubmatch(sealed)
	if m == nil || string(m[1]) != strconv.Itoa(testWorkFactor) {
		t.Errorf("master.key.age scrypt stanza = %q, want work factor %d", m, testWorkFactor)
	}
}

func TestPermissionsOnDisk(t *testing.T) {
	v, _ := newTestVault(t)
	info := store(t, v, []byte("data"))
	p, _ := v.Path(info.ID)
	want := map[string]fs.FileMode{
		v.dir:                            0o700,
		filepath.Join(v.dir, pubFile):    0o600,
		filepath.Join(v.dir, keyFile):    0o600,
		filepath.Join(v.dir, objectsDir): 0o700,
		filepath.Join(v.dir, tmpDir):     0o700,
		filepath.Join(v.dir, keysDir):    0o700,
		filepath.Dir(p):                  0o700,
		p:                                0o600,
		v.keyPath(info.ID):               0o600,
		filepath.Dir(v.keyPath(info.ID)): 0o700,
	}
	for path, mode := range want {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != mode {
			t.Errorf("%s: mode %#o, want %#o", path, got, mode)
		}
	}

	w, err := v.Create(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	fi, err := os.Stat(filepath.Join(v.dir, tmpDir, w.ID()+partialExt))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("partial file: mode %#o, want 0600", got)
	}
}

func TestOpenChecksPermissions(t *testing.T) {
	cases := []struct {
		name string
		bad  fs.FileMode
		good fs.FileMode
	}{
		{objectsDir, 0o750, 0o700},
		{tmpDir, 0o705, 0o700},
		{keyFile, 0o640, 0o600},
		{keyFile, 0o604, 0o600},
		{pubFile, 0o620, 0o600},
		{".", 0o777, 0o700},
	}
	for _, c := range cases {
		v, _ := newTestVault(t)
		path := filepath.Join(v.dir, c.name)
		if err := os.Chmod(path, c.bad); err != nil {
			t.Fatal(err)
		}
		_, err := Open(v.dir)
		if !errors.Is(err, ErrPermissions) {
			t.Errorf("%s mode %#o: Open = %v, want ErrPermissions", c.name, c.bad, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "chmod") || !strings.Contains(msg, filepath.Clean(path)) {
			t.Errorf("%s: message lacks path or fix: %s", c.name, msg)
		}
		if !strings.Contains(msg, octal(c.bad)) {
			t.Errorf("%s: message lacks the mode found (%s): %s", c.name, octal(c.bad), msg)
		}
		if err := os.Chmod(path, c.good); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(v.dir); err != nil {
			t.Errorf("%s after chmod %#o: %v", c.name, c.good, err)
		}
	}
	// A world-readable public key is fine.
	v, _ := newTestVault(t)
	if err := os.Chmod(filepath.Join(v.dir, pubFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(v.dir); err != nil {
		t.Errorf("master.pub 0644: %v", err)
	}
}

func octal(m fs.FileMode) string {
	const digits = "01234567"
	p := uint32(m.Perm())
	return string([]byte{'0', digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}

func TestOpenNotVault(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, ErrNotVault) {
		t.Errorf("missing dir: %v, want ErrNotVault", err)
	}
	if _, err := Open(t.TempDir()); !errors.Is(err, ErrNotVault) {
		t.Errorf("empty dir: %v, want ErrNotVault", err)
	}
	v, _ := newTestVault(t)
	if err := os.Remove(filepath.Join(v.dir, keyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(v.dir); !errors.Is(err, ErrNotVault) {
		t.Errorf("missing master.key.age: %v, want ErrNotVault", err)
	}
	v, _ = newTestVault(t)
	mustWrite(t, filepath.Join(v.dir, pubFile), "age1notakey\n")
	if _, err := Open(v.dir); !errors.Is(err, ErrCorrupt) {
		t.Errorf("garbage master.pub: %v, want ErrCorrupt", err)
	}
}

// headerLen returns the length of the age header (through the MAC line)
// of an object file.
func headerLen(t *testing.T, obj []byte) int {
	t.Helper()
	i := bytes.Index(obj, []byte("\n---"))
	if i < 0 {
		t.Fatal("no header footer")
	}
	j := bytes.IndexByte(obj[i+1:], '\n')
	if j < 0 {
		t.Fatal("unterminated footer")
	}
	return i + 1 + j + 1
}

func TestTamper(t *testing.T) {
	v, ident := newTestVault(t)
	data := randBytes(t, 200<<10) // four payload chunks
	info := store(t, v, data)
	path, _ := v.Path(info.ID)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hl := headerLen(t, orig)
	const nonceLen = 16
	payload := hl + nonceLen

	offsets := map[string]int{
		"intro line":         0,
		"recipient stanza":   bytes.Index(orig, []byte("X25519")) + 2,
		"stanza body":        bytes.Index(orig, []byte("\n---")) - 3,
		"header MAC":         hl - 5,
		"stream nonce":       hl + 3,
		"first chunk":        payload + 10,
		"first chunk tag":    payload + 64<<10 + 3,
		"second chunk":       payload + 64<<10 + 16 + 100,
		"last byte":          len(orig) - 1,
		"last chunk, middle": len(orig) - 1000,
	}
	for name, off := range offsets {
		bad := bytes.Clone(orig)
		bad[off] ^= 0x01
		checkRejected(t, v, ident, info.ID, path, bad, "flip "+name, data)
	}

	truncations := map[string]int{
		"empty":               0,
		"mid header":          hl / 2,
		"header only":         hl,
		"nonce only":          payload,
		"after first chunk":   payload + 64<<10 + 16,
		"mid chunk":           payload + 70000,
		"last byte missing":   len(orig) - 1,
		"last chunk tag only": len(orig) - 16,
	}
	for name, n := range truncations {
		checkRejected(t, v, ident, info.ID, path, orig[:n], "truncate "+name, data)
	}
	checkRejected(t, v, ident, info.ID, path, append(bytes.Clone(orig), 0), "trailing byte", data)
	checkRejected(t, v, ident, info.ID, path, append(bytes.Clone(orig), orig[payload:]...), "appended chunks", data)

	// Restored original still reads.
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := load(v, info.ID, ident); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("restored object: %v", err)
	}
}

func checkRejected(t *testing.T, v *Vault, ident *Identity, id, path string, content []byte, what string, plain []byte) {
	t.Helper()
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := load(v, id, ident)
	if err == nil {
		t.Errorf("%s: read succeeded (%d bytes)", what, len(got))
		return
	}
	if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrWrongIdentity) {
		t.Errorf("%s: error %v does not wrap ErrCorrupt or ErrWrongIdentity", what, err)
	}
	if len(got) >= len(plain) {
		t.Errorf("%s: returned the full plaintext before failing", what)
	}
}

func TestReaderErrorsAreSticky(t *testing.T) {
	v, ident := newTestVault(t)
	info := store(t, v, randBytes(t, 100<<10))
	path, _ := v.Path(info.ID)
	obj, _ := os.ReadFile(path)
	obj[len(obj)-1] ^= 0xff
	if err := os.WriteFile(path, obj, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := v.Open(info.ID, ident)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.Copy(io.Discard, r); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("first error: %v", err)
	}
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("second read: %v, want ErrCorrupt", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, ErrClosed) {
		t.Errorf("read after close: %v, want ErrClosed", err)
	}
}

func TestWrongVaultIdentity(t *testing.T) {
	a, _ := newTestVault(t)
	b, identB := newTestVault(t)
	if a.Recipient() == b.Recipient() {
		t.Fatal("two vaults share a master key")
	}
	info := store(t, a, []byte("household 42: 3 persons"))
	_, err := a.Open(info.ID, identB)
	if !errors.Is(err, ErrWrongIdentity) {
		t.Fatalf("Open with foreign identity: %v, want ErrWrongIdentity", err)
	}
	if _, err := a.Open(info.ID, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("nil identity: %v, want ErrInvalidArgument", err)
	}
}

func TestKeyMismatch(t *testing.T) {
	a, _ := newTestVault(t)
	b, _ := newTestVault(t)
	// Someone swaps master.pub for another key: new objects would be
	// encrypted to it. Unlock must notice.
	pub, err := os.ReadFile(filepath.Join(b.dir, pubFile))
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(a.dir, pubFile), string(pub))
	swapped, err := Open(a.dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := swapped.Unlock(testPass); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("Unlock with swapped master.pub: %v, want ErrKeyMismatch", err)
	}
}

// TestStockAgeRecovery checks the disaster-recovery path documented in the
// package comment: the key file and objects are plain age files.
func TestStockAgeRecovery(t *testing.T) {
	v, _ := newTestVault(t)
	data := []byte("recoverable with the age CLI")
	info := store(t, v, data)

	sealed, err := os.Open(filepath.Join(v.dir, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	defer sealed.Close()
	si, err := age.NewScryptIdentity(string(testPass))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := age.Decrypt(sealed, si)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := age.ParseIdentities(kr)
	if err != nil {
		t.Fatal(err)
	}
	// Two steps, as with the age CLI: the object's key file with the
	// master key, then the object with its own key.
	kp, _ := v.KeyFilePath(info.ID)
	kf, err := os.Open(kp)
	if err != nil {
		t.Fatal(err)
	}
	defer kf.Close()
	okr, err := age.Decrypt(kf, ids...)
	if err != nil {
		t.Fatal(err)
	}
	objIDs, err := age.ParseIdentities(okr)
	if err != nil {
		t.Fatal(err)
	}
	path, _ := v.Path(info.ID)
	obj, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	r, err := age.Decrypt(obj, objIDs...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stock age decrypt: %q, %v", got, err)
	}
}

func TestAbort(t *testing.T) {
	v, _ := newTestVault(t)
	w, err := v.Create(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(randBytes(t, 300<<10)); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("second Abort: %v", err)
	}
	if got := dirEntries(t, filepath.Join(v.dir, tmpDir)); len(got) != 0 {
		t.Errorf("tmp/ after Abort: %v", got)
	}
	if got := dirEntries(t, filepath.Join(v.dir, objectsDir)); len(got) != 0 {
		t.Errorf("objects/ after Abort: %v", got)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Abort: %v, want ErrClosed", err)
	}
	if _, err := w.Commit(); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Abort: %v, want ErrClosed", err)
	}
	if v.Exists(w.ID()) {
		t.Error("aborted object exists")
	}
}

func TestCommitThenAbort(t *testing.T) {
	v, ident := newTestVault(t)
	w, err := v.Create(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("kept")); err != nil {
		t.Fatal(err)
	}
	info, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != w.ID() {
		t.Errorf("ObjectInfo.ID %s != Writer.ID %s", info.ID, w.ID())
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Commit: %v, want ErrClosed", err)
	}
	if _, err := w.Commit(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Commit: %v, want ErrClosed", err)
	}
	if got, err := load(v, info.ID, ident); err != nil || string(got) != "kept" {
		t.Errorf("object after Abort-after-Commit: %q, %v", got, err)
	}
}

func TestContextCancel(t *testing.T) {
	v, _ := newTestVault(t)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := v.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := w.Write([]byte("more")); !errors.Is(err, context.Canceled) {
		t.Errorf("Write after cancel: %v, want context.Canceled", err)
	}
	if _, err := w.Commit(); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit after cancel: %v, want context.Canceled", err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after failure: %v", err)
	}
	if got := dirEntries(t, filepath.Join(v.dir, tmpDir)); len(got) != 0 {
		t.Errorf("tmp/ after cancel: %v", got)
	}
	if _, err := v.Create(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with canceled ctx: %v", err)
	}
}

func TestRecover(t *testing.T) {
	v, ident := newTestVault(t)
	tmp := filepath.Join(v.dir, tmpDir)
	// Leftovers of a crash.
	mustWrite(t, filepath.Join(tmp, "0123456789abcdef0123456789abcdef"+partialExt), "ciphertext")
	mustWrite(t, filepath.Join(tmp, ".master.pub.123.tmp"), "x")
	// A writer that is still in progress must survive.
	w, err := v.Create(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("in flight")); err != nil {
		t.Fatal(err)
	}

	removed, err := v.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 {
		t.Errorf("Recover removed %v, want the 2 leftovers", removed)
	}
	if got := dirEntries(t, tmp); len(got) != 1 || got[0] != w.ID()+partialExt {
		t.Errorf("tmp/ after Recover = %v, want only the live writer", got)
	}
	info, err := w.Commit()
	if err != nil {
		t.Fatalf("Commit after Recover: %v", err)
	}
	if got, err := load(v, info.ID, ident); err != nil || string(got) != "in flight" {
		t.Errorf("read: %q, %v", got, err)
	}

	// A fresh Vault value (as after a restart) removes everything.
	mustWrite(t, filepath.Join(tmp, "fedcba9876543210fedcba9876543210"+partialExt), "x")
	v2, err := Open(v.dir)
	if err != nil {
		t.Fatal(err)
	}
	removed, err = v2.Recover()
	if err != nil || len(removed) != 1 {
		t.Errorf("Recover after restart: %v, %v", removed, err)
	}
	if removed, err = v2.Recover(); err != nil || len(removed) != 0 {
		t.Errorf("Recover on clean tmp/: %v, %v", removed, err)
	}
}

func TestBadIDs(t *testing.T) {
	v, ident := newTestVault(t)
	good := "0123456789abcdef0123456789abcdef"
	if !ValidID(good) {
		t.Fatal("good id rejected")
	}
	bad := []string{
		"",
		"../x",
		"../../../../etc/passwd",
		strings.ToUpper(good),
		"0123456789ABCDEF0123456789abcdef",
		good[:31],
		good + "0",
		"0123456789abcdef0123456789abcdeg",
		"01/3456789abcdef0123456789abcdef",
		"..23456789abcdef0123456789abcdef",
		"0123456789abcdef0123456789abcde\x00",
		"0123456789abcdef0123456789abcdé",
	}
	for _, id := range bad {
		if ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
		if _, err := v.Open(id, ident); !errors.Is(err, ErrBadID) {
			t.Errorf("Open(%q): %v", id, err)
		}
		if err := v.Remove(id); !errors.Is(err, ErrBadID) {
			t.Errorf("Remove(%q): %v", id, err)
		}
		if _, err := v.Path(id); !errors.Is(err, ErrBadID) {
			t.Errorf("Path(%q): %v", id, err)
		}
		if v.Exists(id) {
			t.Errorf("Exists(%q) = true", id)
		}
	}
}

func TestContainsPlaintext(t *testing.T) {
	v, _ := newTestVault(t)
	needle := []byte("NID-1984-05-17-4471 Lindqvist household")
	data := bytes.Repeat(append(randBytes(t, 1000), needle...), 300)
	store(t, v, data)
	found, err := v.ContainsPlaintext(needle)
	if err != nil {
		t.Fatal(err)
	}
	if found {
		t.Fatal("plaintext found in vault after storing encrypted object")
	}

	// The scanner does find it in a plain file.
	mustWrite(t, filepath.Join(v.dir, objectsDir, "leak.txt"), "header\n"+string(needle)+"\n")
	found, err = v.ContainsPlaintext(needle)
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatal("needle in plain file not found")
	}
	if _, err := v.ContainsPlaintext(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty needle: %v", err)
	}
}

func TestFileContainsAcrossReads(t *testing.T) {
	needle := []byte("abcdefg")
	path := filepath.Join(t.TempDir(), "f")
	buf := make([]byte, 2*len(needle))
	for pos := 0; pos < 40; pos++ {
		content := append(bytes.Repeat([]byte{'x'}, pos), needle...)
		content = append(content, "yyy"...)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		ok, err := fileContains(path, needle, buf)
		if err != nil || !ok {
			t.Errorf("needle at %d not found (err %v)", pos, err)
		}
		// Almost-matches must not be reported.
		content = append(bytes.Repeat([]byte{'x'}, pos), needle[:len(needle)-1]...)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if ok, _ := fileContains(path, needle, buf); ok {
			t.Errorf("prefix at %d reported as match", pos)
		}
	}
}

func TestConcurrentWriters(t *testing.T) {
	v, ident := newTestVault(t)
	const n = 8
	type result struct {
		info ObjectInfo
		data []byte
		err  error
	}
	results := make(chan result, n)
	for i := 0; i < n; i++ {
		data := randBytes(t, 100<<10+i)
		go func() {
			w, err := v.Create(context.Background())
			if err != nil {
				results <- result{err: err}
				return
			}
			defer w.Abort()
			if _, err := w.Write(data); err != nil {
				results <- result{err: err}
				return
			}
			info, err := w.Commit()
			results <- result{info, data, err}
		}()
	}
	for i := 0; i < n; i++ {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		got, err := load(v, r.info.ID, ident)
		if err != nil || !bytes.Equal(got, r.data) {
			t.Errorf("object %s: %v", r.info.ID, err)
		}
	}
}

func TestPreallocateKeepsSize(t *testing.T) {
	v, _ := newTestVault(t)
	w, err := v.Create(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Preallocate(10 << 20); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("small object"))
	info, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := v.Path(info.ID)
	fi, err := os.Stat(p)
	if err != nil || fi.Size() != info.CipherSize {
		t.Fatalf("file size %d, want %d (%v)", fi.Size(), info.CipherSize, err)
	}
}

// TestSealUnseal: a sealed secret reads back only with the vault's own
// identity, and the sealed bytes do not contain it.
func TestSealUnseal(t *testing.T) {
	v, ident := newTestVault(t)
	secret := []byte("PRIVATE+KEY+custodian-ledger+00000000+not-a-real-key")
	sealed, err := v.Seal(secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("the sealed bytes contain the secret")
	}
	got, err := ident.Unseal(sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("unseal: %q %v", got, err)
	}
	_, other := newTestVault(t)
	if _, err := other.Unseal(sealed); err == nil {
		t.Fatal("another vault's identity unsealed the secret")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := ident.Unseal(sealed); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a damaged sealed secret: %v", err)
	}
}
