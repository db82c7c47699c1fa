package vault

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"filippo.io/age"

	"custodian/internal/fsutil"
)

// Names of the files and directories that make up a vault.
const (
	pubFile    = "master.pub"
	keyFile    = "master.key.age"
	objectsDir = "objects"
	tmpDir     = "tmp"
	// orphansDir holds objects set aside by crash recovery: ciphertext no
	// dataset refers to, kept (encrypted) rather than destroyed, since
	// destruction needs a supervisor's approval.
	orphansDir = "orphans"

	objectExt  = ".age"
	partialExt = ".partial"
)

// Scrypt work factors (log2 of the scrypt N parameter) accepted for the
// passphrase that protects the master key.
const (
	// DefaultScryptWorkFactor is used when InitOptions.ScryptWorkFactor is
	// zero. It is age's default (about one second and 256 MiB of memory).
	DefaultScryptWorkFactor = 18
	// MinScryptWorkFactor is the smallest work factor age accepts. Values
	// this low are only suitable for tests.
	MinScryptWorkFactor = 1
	// MaxScryptWorkFactor is the largest work factor Unlock will process
	// (about 15 seconds and 4 GiB of memory), matching age's own limit.
	MaxScryptWorkFactor = 22
)

// Size limits for the small key files, so that a damaged or hostile file
// cannot make Open or Unlock allocate without bound.
const (
	maxPubFileSize = 1 << 10
	maxKeyFileSize = 1 << 16
)

// InitOptions configures Init.
type InitOptions struct {
	// ScryptWorkFactor is log2 of the scrypt cost used to protect the master
	// key with the passphrase. Zero means DefaultScryptWorkFactor. It must be
	// between MinScryptWorkFactor and MaxScryptWorkFactor.
	ScryptWorkFactor int
}

// Vault is an open encrypted object store. Its methods are safe for
// concurrent use. A Vault holds only the public master key; decrypting
// requires an Identity obtained from Unlock.
type Vault struct {
	dir string

	// rot guards recipient and the key files as a whole: writers hold it
	// for reading while they wrap and store an object key, Rotate for
	// writing while it re-wraps every key and swaps the master key.
	rot       sync.RWMutex
	recipient *age.X25519Recipient

	mu   sync.Mutex
	live map[string]struct{} // temp file names of in-progress Writers

	flush groupSync // shared syncfs for Writer.Close
}

// Identity is the unlocked master private key. It is needed only to read
// objects. Its String and GoString methods never reveal the secret key.
type Identity struct {
	x *age.X25519Identity
}

// Recipient returns the public key (age1...) corresponding to the identity.
func (i *Identity) Recipient() string { return i.x.Recipient().String() }

// String returns a redacted description that is safe to log.
func (i *Identity) String() string { return "vault.Identity(" + i.Recipient() + ")" }

// GoString returns a redacted description that is safe to log.
func (i *Identity) GoString() string { return i.String() }

// Init creates a new vault in dir, which is created with mode 0700 if it does
// not exist. It generates a fresh X25519 master identity, stores its public
// key in master.pub and the private key, encrypted with passphrase, in
// master.key.age, and creates the objects/ and tmp/ directories.
//
// Init refuses with ErrExists if master.pub or master.key.age already exists,
// or if objects/ exists and is not empty. Init must not run concurrently with
// another Init or with any use of a vault in the same directory. It returns
// ErrPermissions if dir exists and is writable by group or other users.
//
// The passphrase slice is not retained, but age takes it as a string, which
// cannot be wiped from memory.
func Init(dir string, passphrase []byte, opts InitOptions) error {
	if len(passphrase) == 0 {
		return fmt.Errorf("%w: empty passphrase", ErrInvalidArgument)
	}
	workFactor, err := opts.workFactor()
	if err != nil {
		return err
	}
	for _, name := range []string{pubFile, keyFile} {
		p := filepath.Join(dir, name)
		_, err := os.Lstat(p)
		if err == nil {
			return fmt.Errorf("%w: %s exists (already initialized, or an earlier Init was interrupted)", ErrExists, p)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("vault: init: %w", err)
		}
	}

	if fi, err := os.Stat(dir); err == nil {
		if err := checkPerm(dir, fi.Mode(), 0o022); err != nil {
			return err
		}
	}
	if err := mkdirDurable(dir); err != nil {
		return err
	}
	// tmp/ may hold leftovers of an interrupted Init; they are harmless.
	// objects/ must be empty: never adopt objects encrypted to an unknown key.
	if err := ensureDir(filepath.Join(dir, tmpDir), true); err != nil {
		return err
	}
	if err := ensureDir(filepath.Join(dir, objectsDir), false); err != nil {
		return err
	}
	if err := ensureDir(filepath.Join(dir, keysDir), false); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}

	id, err := age.GenerateX25519Identity()
	if err != nil {
		return fmt.Errorf("vault: generate master key: %w", err)
	}
	recipient := id.Recipient().String()

	keyText := make([]byte, 0, 256)
	keyText = fmt.Appendf(keyText, "# created: %s\n# public key: %s\n%s\n",
		time.Now().UTC().Format(time.RFC3339), recipient, id)
	defer clear(keyText)

	sr, err := age.NewScryptRecipient(string(passphrase))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	sr.SetWorkFactor(workFactor)
	var sealed bytes.Buffer
	aw, err := age.Encrypt(&sealed, sr)
	if err != nil {
		return fmt.Errorf("vault: encrypt master key: %w", err)
	}
	if _, err := aw.Write(keyText); err != nil {
		return fmt.Errorf("vault: encrypt master key: %w", err)
	}
	if err := aw.Close(); err != nil {
		return fmt.Errorf("vault: encrypt master key: %w", err)
	}

	// The private key is written first: master.pub is the commit point, so a
	// crash can never leave a vault that accepts objects for a key that was
	// not saved.
	tmp := filepath.Join(dir, tmpDir)
	if err := writeFileAtomic(tmp, filepath.Join(dir, keyFile), sealed.Bytes(), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(tmp, filepath.Join(dir, pubFile), []byte(recipient+"\n"), 0o600)
}

func (o InitOptions) workFactor() (int, error) {
	wf := o.ScryptWorkFactor
	if wf == 0 {
		wf = DefaultScryptWorkFactor
	}
	if wf < MinScryptWorkFactor || wf > MaxScryptWorkFactor {
		return 0, fmt.Errorf("%w: scrypt work factor %d outside [%d, %d]",
			ErrInvalidArgument, wf, MinScryptWorkFactor, MaxScryptWorkFactor)
	}
	return wf, nil
}

// mkdirDurable creates dir (and missing parents) with mode 0700 and, if dir
// itself was created, fsyncs its parent.
func mkdirDurable(dir string) error {
	_, err := os.Stat(dir)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("vault: init: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("vault: init: %w", err)
	}
	return syncDir(filepath.Dir(filepath.Clean(dir)))
}

// ensureDir creates path with mode 0700, or accepts an existing directory
// (made 0700) if it is empty or allowNonEmpty is set.
func ensureDir(path string, allowNonEmpty bool) error {
	err := fsutil.EnsureDir(path, 0o700, allowNonEmpty)
	switch {
	case errors.Is(err, fsutil.ErrNotDir), errors.Is(err, fsutil.ErrNotEmpty):
		return fmt.Errorf("%w: %w", ErrExists, err)
	case err != nil:
		return fmt.Errorf("vault: init: %w", err)
	}
	return nil
}

// Open opens the vault in dir for writing and reading objects. It loads only
// the public master key; see Unlock for reading.
//
// Open returns ErrNotVault if the layout is incomplete, and ErrPermissions if
// objects/, tmp/ or master.key.age is accessible to group or other users, or
// if dir or master.pub is writable by them (which would allow redirecting new
// objects to a foreign key).
func Open(dir string) (*Vault, error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNotVault, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("vault: open: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrNotVault, dir)
	}
	if err := checkPerm(dir, fi.Mode(), 0o022); err != nil {
		return nil, err
	}

	checks := []struct {
		name      string
		dir       bool
		forbidden fs.FileMode
	}{
		{pubFile, false, 0o022},
		{keyFile, false, 0o077},
		{objectsDir, true, 0o077},
		{tmpDir, true, 0o077},
	}
	for _, c := range checks {
		if err := checkMode(filepath.Join(dir, c.name), c.dir, c.forbidden); err != nil {
			return nil, err
		}
	}
	// keys/ holds the per-object keys; a vault made before them has none
	// until its first new object.
	if _, err := os.Lstat(filepath.Join(dir, keysDir)); err == nil {
		if err := checkMode(filepath.Join(dir, keysDir), true, 0o077); err != nil {
			return nil, err
		}
	}

	pubPath := filepath.Join(dir, pubFile)
	pub, err := readSmallFile(pubPath, maxPubFileSize)
	if err != nil {
		return nil, err
	}
	r, err := age.ParseX25519Recipient(strings.TrimSpace(string(pub)))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, pubPath, err)
	}
	return &Vault{dir: dir, recipient: r, live: make(map[string]struct{})}, nil
}

// readSmallFile reads a file of at most limit bytes.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("vault: read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrCorrupt, path, limit)
	}
	return b, nil
}

// Recipient returns the vault's public master key (an age1... string).
func (v *Vault) Recipient() string {
	v.rot.RLock()
	defer v.rot.RUnlock()
	return v.recipient.String()
}

// Dir returns the vault's directory.
func (v *Vault) Dir() string { return v.dir }

// Unlock decrypts the master private key with passphrase. It returns
// ErrBadPassphrase if the passphrase is wrong and ErrKeyMismatch if the key
// does not match master.pub.
//
// The passphrase slice is not retained; Go strings cannot be wiped, so a copy
// of it and of the key may remain in memory until garbage-collected.
func (v *Vault) Unlock(passphrase []byte) (*Identity, error) {
	if len(passphrase) == 0 {
		return nil, fmt.Errorf("%w: empty passphrase", ErrInvalidArgument)
	}
	keyPath := filepath.Join(v.dir, keyFile)
	sealed, err := readSmallFile(keyPath, maxKeyFileSize)
	if err != nil {
		return nil, err
	}
	si, err := age.NewScryptIdentity(string(passphrase))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	si.SetMaxWorkFactor(MaxScryptWorkFactor)

	r, err := age.Decrypt(bytes.NewReader(sealed), si)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			return nil, fmt.Errorf("%w (or %s is damaged)", ErrBadPassphrase, keyPath)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, keyPath, err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, maxKeyFileSize))
	defer clear(plain)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, keyPath, err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(plain))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, keyPath, err)
	}
	if len(ids) != 1 {
		return nil, fmt.Errorf("%w: %s holds %d identities, want 1", ErrCorrupt, keyPath, len(ids))
	}
	x, ok := ids[0].(*age.X25519Identity)
	if !ok {
		return nil, fmt.Errorf("%w: %s does not hold an X25519 identity", ErrCorrupt, keyPath)
	}
	if got, want := x.Recipient().String(), v.Recipient(); got != want {
		return nil, fmt.Errorf("%w: key is for %s, master.pub says %s", ErrKeyMismatch, got, want)
	}
	return &Identity{x: x}, nil
}

// ValidID reports whether id is a well-formed object ID: exactly 32
// lowercase hexadecimal characters.
func ValidID(id string) bool {
	return len(id) == idLen && isLowerHex(id)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

const idLen = 32

func checkID(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("%w: %q", ErrBadID, id)
	}
	return nil
}

// objectPath returns the path of a validated object ID.
func (v *Vault) objectPath(id string) string {
	return filepath.Join(v.dir, objectsDir, id[:2], id+objectExt)
}

// Path returns the file path at which object id is (or would be) stored.
func (v *Vault) Path(id string) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	return v.objectPath(id), nil
}

// Exists reports whether object id exists. It returns false for invalid IDs.
func (v *Vault) Exists(id string) bool {
	if !ValidID(id) {
		return false
	}
	fi, err := os.Lstat(v.objectPath(id))
	return err == nil && fi.Mode().IsRegular()
}

// Remove deletes object id durably, erasing its key file first. It returns
// ErrNotFound if the object does not exist.
func (v *Vault) Remove(id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := eraseFile(v.keyPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("vault: remove %s: %w", id, err)
	}
	p := v.objectPath(id)
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return fmt.Errorf("vault: remove %s: %w", id, err)
	}
	return syncDir(filepath.Dir(p))
}

// SetAside moves object id out of objects/ into orphans/ (0700, created
// when first needed), still encrypted, with its key file if it has one.
// Crash recovery uses it for an object no dataset refers to: the vault no
// longer lists it, but it is not destroyed, because the ledger may have
// lost its record (a damaged ledger) and destruction is for a supervisor
// to approve. A key file without its object is set aside the same way.
func (v *Vault) SetAside(id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	dst := filepath.Join(v.dir, orphansDir)
	if err := os.Mkdir(dst, 0o700); err == nil {
		if err := syncDir(v.dir); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("vault: set aside %s: %w", id, err)
	}
	if err := checkMode(dst, true, 0o077); err != nil {
		return err
	}
	moved := 0
	// The key first: an object without its key is harmless where it is;
	// a key without its object in objects/ is set aside on the next try.
	for _, m := range []struct{ from, to string }{
		{v.keyPath(id), filepath.Join(dst, id+keyExt)},
		{v.objectPath(id), filepath.Join(dst, id+objectExt)},
	} {
		if err := os.Rename(m.from, m.to); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return fmt.Errorf("vault: set aside %s: %w", id, err)
		}
		moved++
		if err := syncDir(dst); err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(m.from)); err != nil {
			return err
		}
	}
	if moved == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return nil
}

// List returns the IDs of all committed objects in lexical order. Files in
// objects/ that do not follow the object naming scheme are ignored.
func (v *Vault) List() ([]string, error) {
	root := filepath.Join(v.dir, objectsDir)
	if _, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("vault: list: %w", err)
	}
	// os.ReadDir sorts by name, and each subdirectory is the IDs' prefix, so
	// the IDs come in lexical order.
	return listTree(root, objectExt)
}

// Recover deletes everything in tmp/: partial objects left by a crash and
// temporaries of interrupted key writes. It returns the names removed.
// Temporary files of Writers still open on this Vault are kept, but Recover
// cannot see Writers of another process or another Vault value for the same
// directory, so it should be run at startup, before objects are created.
func (v *Vault) Recover() ([]string, error) {
	dir := filepath.Join(v.dir, tmpDir)
	v.mu.Lock()
	defer v.mu.Unlock()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("vault: recover: %w", err)
	}
	var removed []string
	for _, e := range entries {
		if _, ok := v.live[e.Name()]; ok {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return removed, fmt.Errorf("vault: recover: %w", err)
		}
		removed = append(removed, e.Name())
	}
	if len(removed) > 0 {
		if err := syncDir(dir); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// ContainsPlaintext reports whether any regular file under the vault
// directory contains needle. It is a diagnostic proving that plaintext does
// not reach the disk; symlinks are not followed.
func (v *Vault) ContainsPlaintext(needle []byte) (bool, error) {
	if len(needle) == 0 {
		return false, fmt.Errorf("%w: empty needle", ErrInvalidArgument)
	}
	buf := make([]byte, max(1<<20, 2*len(needle)))
	found := false
	err := filepath.WalkDir(v.dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed concurrently (a temp file renamed or aborted)
		}
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		ok, err := fileContains(path, needle, buf)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if ok {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("vault: scan: %w", err)
	}
	return found, nil
}

// fileContains streams the file at path through buf looking for needle,
// including occurrences that straddle two reads. len(buf) must be at least
// 2*len(needle).
func fileContains(path string, needle, buf []byte) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	keep := len(needle) - 1
	carry := 0
	for {
		n, err := f.Read(buf[carry:])
		data := buf[:carry+n]
		if bytes.Contains(data, needle) {
			return true, nil
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if len(data) > keep {
			copy(buf, data[len(data)-keep:])
			carry = keep
		} else {
			carry = len(data)
		}
	}
}
