package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"golang.org/x/sys/unix"
)

// Master key rotation. Rotate makes a new master key and re-wraps every
// object key to it; payloads are not re-encrypted (except, once, legacy
// objects, which have no key of their own to re-wrap: see migrate). The
// new state is staged beside the live one and swapped in after a commit
// point, so that a crash leaves either the old vault or the new one:
//
//	keys-next/xx/ID.key       every object key, wrapped to the new master key
//	keys-next/aside/ID.key    the same for keys set aside in orphans/
//	master-next.key.age       the new private key, under the passphrase
//	master-next.pub           the new public key
//	rotation                  the commit point: the old and new public keys
//
// After the commit point the caller records the rotation (its ledger); then
// finishRotation overwrites the old master.key.age with random bytes,
// renames the staged files into place and erases the old key files. If the
// process stops in between, ResumeRotation, given the recipient the ledger
// trusts, finishes the swap (the ledger recorded it) or undoes it (it did
// not); nothing else can adopt a staged key, so a planted staging area
// cannot substitute the vault's key.
const (
	nextKeyFile  = "master-next.key.age"
	nextPubFile  = "master-next.pub"
	nextKeysDir  = "keys-next"
	oldKeysDir   = "keys-old"
	asideSubdir  = "aside"
	rotationFile = "rotation"
	rotationHead = "custodian-vault-rotation/1"
)

// ErrRotationPending: a rotation passed its commit point but was not
// finished; ResumeRotation decides.
var ErrRotationPending = errors.New("vault: an interrupted key rotation is pending")

// RotateOptions configures Rotate.
type RotateOptions struct {
	// NewPassphrase protects the new master key; empty keeps the
	// passphrase given to Rotate.
	NewPassphrase []byte
	// ScryptWorkFactor as for Init; zero keeps the current master key
	// file's.
	ScryptWorkFactor int
	// Record, if set, is called at the commit point with the old and new
	// public keys, before the swap; an error undoes the rotation (the old
	// key stays in force) and is returned.
	Record func(oldRecipient, newRecipient string) error
}

// RotateResult says what a rotation did.
type RotateResult struct {
	OldRecipient string `json:"old_recipient"`
	NewRecipient string `json:"new_recipient"`
	// Rewrapped counts the object keys re-wrapped (orphans included),
	// Migrated the legacy objects given a key of their own.
	Rewrapped int `json:"rewrapped"`
	Migrated  int `json:"migrated"`
	// PassphraseChanged: the new master key is under a new passphrase.
	PassphraseChanged bool `json:"passphrase_changed"`
}

// Rotate replaces the master key: old must be the current identity (from
// Unlock with passphrase). It returns the new identity. Writers wait while
// the keys are re-wrapped.
func (v *Vault) Rotate(ctx context.Context, old *Identity, passphrase []byte, opts RotateOptions) (*Identity, RotateResult, error) {
	var res RotateResult
	if old == nil || old.x == nil {
		return nil, res, fmt.Errorf("%w: nil identity", ErrInvalidArgument)
	}
	pass := passphrase
	if len(opts.NewPassphrase) > 0 {
		pass = opts.NewPassphrase
		res.PassphraseChanged = !bytes.Equal(opts.NewPassphrase, passphrase)
	}
	if len(pass) == 0 {
		return nil, res, fmt.Errorf("%w: empty passphrase", ErrInvalidArgument)
	}
	if opts.ScryptWorkFactor == 0 {
		opts.ScryptWorkFactor = v.currentWorkFactor()
	}
	wf, err := InitOptions{ScryptWorkFactor: opts.ScryptWorkFactor}.workFactor()
	if err != nil {
		return nil, res, err
	}
	v.rot.Lock()
	defer v.rot.Unlock()
	if got := old.x.Recipient().String(); got != v.recipient.String() {
		return nil, res, fmt.Errorf("%w: the identity is for %s, the vault's key is %s", ErrKeyMismatch, got, v.recipient)
	}
	if _, _, ok, err := v.pendingRotation(); err != nil {
		return nil, res, err
	} else if ok {
		return nil, res, ErrRotationPending
	}
	res.OldRecipient = v.recipient.String()
	if err := v.abortRotation(); err != nil { // leftovers of one that never reached its commit point
		return nil, res, err
	}

	// Legacy objects get a key of their own, wrapped to the old key: they
	// stay readable throughout.
	if res.Migrated, err = v.migrate(ctx, old); err != nil {
		return nil, res, err
	}

	next, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, res, fmt.Errorf("vault: generate master key: %w", err)
	}
	res.NewRecipient = next.Recipient().String()
	sealed, err := sealMasterKey(next, pass, wf)
	if err != nil {
		return nil, res, err
	}
	tmp := filepath.Join(v.dir, tmpDir)
	if err := writeFileAtomic(tmp, filepath.Join(v.dir, nextKeyFile), sealed, 0o600); err != nil {
		return nil, res, err
	}
	if err := writeFileAtomic(tmp, filepath.Join(v.dir, nextPubFile), []byte(res.NewRecipient+"\n"), 0o600); err != nil {
		return nil, res, err
	}
	fail := func(err error) (*Identity, RotateResult, error) {
		if aerr := v.abortRotation(); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return nil, res, err
	}

	// Every key, re-wrapped into keys-next/.
	ids, err := v.ListKeys()
	if err != nil {
		return fail(err)
	}
	staged := filepath.Join(v.dir, nextKeysDir)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if err := rewrap(v.keyPath(id), filepath.Join(staged, id[:2], id+keyExt), old, next.Recipient()); err != nil {
			return fail(fmt.Errorf("vault: rotate: key of %s: %w", id, err))
		}
		res.Rewrapped++
	}
	aside, err := listAside(filepath.Join(v.dir, orphansDir))
	if err != nil {
		return fail(err)
	}
	for _, id := range aside {
		if err := rewrap(filepath.Join(v.dir, orphansDir, id+keyExt), filepath.Join(staged, asideSubdir, id+keyExt), old, next.Recipient()); err != nil {
			return fail(fmt.Errorf("vault: rotate: key of set-aside %s: %w", id, err))
		}
		res.Rewrapped++
	}
	if err := syncFS(v.dir); err != nil {
		return fail(err)
	}

	// The commit point.
	marker := fmt.Sprintf("%s\nold %s\nnew %s\n", rotationHead, res.OldRecipient, res.NewRecipient)
	if err := writeFileAtomic(tmp, filepath.Join(v.dir, rotationFile), []byte(marker), 0o600); err != nil {
		return fail(err)
	}
	if opts.Record != nil {
		if err := opts.Record(res.OldRecipient, res.NewRecipient); err != nil {
			return fail(fmt.Errorf("recording the rotation: %w (the old key stays in force)", err))
		}
	}
	if err := v.finishRotation(); err != nil {
		return nil, res, err
	}
	return &Identity{x: next}, res, nil
}

// currentWorkFactor reads the scrypt work factor of master.key.age from
// its age header (the stanza "-> scrypt SALT LOG2N"); 0 if unknown.
func (v *Vault) currentWorkFactor() int {
	b, err := readSmallFile(filepath.Join(v.dir, keyFile), maxKeyFileSize)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] == "->" && f[1] == "scrypt" {
			n := 0
			if _, err := fmt.Sscanf(f[3], "%d", &n); err == nil {
				return n
			}
		}
		if strings.HasPrefix(line, "---") {
			break
		}
	}
	return 0
}

func sealMasterKey(id *age.X25519Identity, pass []byte, wf int) ([]byte, error) {
	keyText := fmt.Appendf(nil, "# created: %s\n# public key: %s\n%s\n",
		time.Now().UTC().Format(time.RFC3339), id.Recipient(), id)
	defer clear(keyText)
	sr, err := age.NewScryptRecipient(string(pass))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	sr.SetWorkFactor(wf)
	var sealed bytes.Buffer
	aw, err := age.Encrypt(&sealed, sr)
	if err != nil {
		return nil, fmt.Errorf("vault: encrypt master key: %w", err)
	}
	if _, err := aw.Write(keyText); err != nil {
		return nil, fmt.Errorf("vault: encrypt master key: %w", err)
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("vault: encrypt master key: %w", err)
	}
	return sealed.Bytes(), nil
}

// rewrap reads the key file at from, unwraps it with old and writes it
// wrapped to r at to (0600, no fsync: the caller syncs the file system).
func rewrap(from, to string, old *Identity, r age.Recipient) error {
	wrapped, err := readSmallFile(from, maxObjectKeyFile)
	if err != nil {
		return err
	}
	k, err := unwrapKey(wrapped, old.x)
	if err != nil {
		return err
	}
	defer k.wipe()
	out, err := wrapKey(k, r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return err
	}
	return os.WriteFile(to, out, 0o600)
}

// listAside lists the IDs of key files set aside in dir.
func listAside(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), keyExt); ok && e.Type().IsRegular() && ValidID(id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// migrate gives every legacy object in objects/ a key of its own, wrapped
// to the current master key: the payload is decrypted with the master key
// and encrypted again to the new key (the one payload re-encryption a
// vault ever does). The key file is written first; until the new
// ciphertext replaces the old, Open still reads the object with the
// master key.
func (v *Vault) migrate(ctx context.Context, ident *Identity) (int, error) {
	ids, err := v.List()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if v.HasKeyFile(id) {
			if f, err := os.Open(v.objectPath(id)); err == nil {
				head, _ := io.ReadAll(io.LimitReader(f, headerCapture))
				f.Close()
				if !HeaderOpens(head, ident) {
					continue // already in the per-object key format
				}
				// A migration interrupted after its key file: redo it.
			}
		}
		if err := v.migrateOne(ctx, id, ident); err != nil {
			return n, fmt.Errorf("vault: migrating legacy object %s: %w", id, err)
		}
		n++
	}
	return n, nil
}

func (v *Vault) migrateOne(ctx context.Context, id string, ident *Identity) error {
	k, err := newObjectKey()
	if err != nil {
		return err
	}
	defer k.wipe()
	in, err := os.Open(v.objectPath(id))
	if err != nil {
		return err
	}
	defer in.Close()
	plain, err := age.Decrypt(in, ident.x)
	if err != nil {
		return err
	}
	tmp := filepath.Join(v.dir, tmpDir, id+".migrate"+partialExt)
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			out.Close()
			os.Remove(tmp)
		}
	}()
	aw, err := age.Encrypt(out, k.id.Recipient())
	if err != nil {
		return err
	}
	if _, err := io.Copy(aw, ctxReader{ctx, plain}); err != nil {
		return err
	}
	if err := aw.Close(); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	done = true
	wrapped, err := wrapKey(k, v.recipient)
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := v.writeKeyFile(id, wrapped, true); err != nil {
		os.Remove(tmp)
		return err
	}
	// The legacy ciphertext holds its data key, wrapped to the master key,
	// in its header: overwrite it before the new ciphertext takes its name.
	if err := overwriteInPlace(v.objectPath(id)); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, v.objectPath(id)); err != nil {
		return err
	}
	return syncDir(filepath.Dir(v.objectPath(id)))
}

// overwriteInPlace overwrites a file's bytes with random ones and fsyncs
// it, leaving the (now meaningless) file in place.
func overwriteInPlace(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = io.CopyN(f, randReader{}, fi.Size())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncFS syncs the file system holding dir (syncfs(2)).
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("vault: syncfs: %w", err)
	}
	return nil
}

// pendingRotation reads the commit marker of a rotation not yet finished.
func (v *Vault) pendingRotation() (oldR, newR string, ok bool, err error) {
	b, err := readSmallFile(filepath.Join(v.dir, rotationFile), maxPubFileSize)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 || lines[0] != rotationHead || !strings.HasPrefix(lines[1], "old ") || !strings.HasPrefix(lines[2], "new ") {
		return "", "", false, fmt.Errorf("%w: %s is not a rotation marker", ErrCorrupt, filepath.Join(v.dir, rotationFile))
	}
	return strings.TrimPrefix(lines[1], "old "), strings.TrimPrefix(lines[2], "new "), true, nil
}

// PendingRotation reports a rotation that passed its commit point but was
// not finished (the process stopped): its old and new public keys.
func (v *Vault) PendingRotation() (oldRecipient, newRecipient string, ok bool, err error) {
	v.rot.RLock()
	defer v.rot.RUnlock()
	return v.pendingRotation()
}

// ResumeRotation settles an interrupted rotation by what the caller's
// ledger trusts: if trusted is the rotation's new key (the ledger
// recorded the rotation), the swap is finished; if it is the old key, the
// rotation is undone. Anything else is refused: the staged key is not one
// the ledger knows. With no rotation pending it does nothing.
func (v *Vault) ResumeRotation(trusted string) (finished bool, err error) {
	v.rot.Lock()
	defer v.rot.Unlock()
	oldR, newR, ok, err := v.pendingRotation()
	if err != nil || !ok {
		return false, err
	}
	switch trusted {
	case newR:
		return true, v.finishRotation()
	case oldR:
		return false, v.abortRotation()
	}
	return false, fmt.Errorf("%w: the pending rotation goes from %s to %s, but the ledger trusts %s", ErrKeyMismatch, oldR, newR, trusted)
}

// finishRotation swaps the staged files in. Each step is idempotent, so
// it can run again after a crash. The caller holds rot.
func (v *Vault) finishRotation() error {
	staged := filepath.Join(v.dir, nextKeysDir)
	live := filepath.Join(v.dir, keysDir)
	old := filepath.Join(v.dir, oldKeysDir)
	if _, err := os.Lstat(staged); err == nil {
		// Set-aside keys go back to orphans/, replacing their old wraps.
		aside := filepath.Join(staged, asideSubdir)
		ids, err := listAside(aside)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := os.Rename(filepath.Join(aside, id+keyExt), filepath.Join(v.dir, orphansDir, id+keyExt)); err != nil {
				return fmt.Errorf("vault: rotate: %w", err)
			}
		}
		if len(ids) > 0 {
			if err := syncDir(filepath.Join(v.dir, orphansDir)); err != nil {
				return err
			}
		}
		if err := os.RemoveAll(aside); err != nil {
			return fmt.Errorf("vault: rotate: %w", err)
		}
		if _, err := os.Lstat(live); err == nil {
			if err := os.Rename(live, old); err != nil {
				return fmt.Errorf("vault: rotate: %w", err)
			}
		}
		if err := os.Rename(staged, live); err != nil {
			return fmt.Errorf("vault: rotate: %w", err)
		}
		if err := os.Chmod(live, 0o700); err != nil {
			return fmt.Errorf("vault: rotate: %w", err)
		}
		if err := syncDir(v.dir); err != nil {
			return err
		}
	}
	// The old master key: overwritten where it lies, then replaced.
	if _, err := os.Lstat(filepath.Join(v.dir, nextKeyFile)); err == nil {
		if err := overwriteInPlace(filepath.Join(v.dir, keyFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("vault: rotate: destroying the old master key: %w", err)
		}
		if err := os.Rename(filepath.Join(v.dir, nextKeyFile), filepath.Join(v.dir, keyFile)); err != nil {
			return fmt.Errorf("vault: rotate: %w", err)
		}
	}
	if _, err := os.Lstat(filepath.Join(v.dir, nextPubFile)); err == nil {
		if err := os.Rename(filepath.Join(v.dir, nextPubFile), filepath.Join(v.dir, pubFile)); err != nil {
			return fmt.Errorf("vault: rotate: %w", err)
		}
	}
	if err := syncDir(v.dir); err != nil {
		return err
	}
	// The old wraps are useless without the old master key; erase them all
	// the same.
	if err := eraseTree(old); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(v.dir, rotationFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("vault: rotate: %w", err)
	}
	if err := syncDir(v.dir); err != nil {
		return err
	}
	pub, err := readSmallFile(filepath.Join(v.dir, pubFile), maxPubFileSize)
	if err != nil {
		return err
	}
	r, err := age.ParseX25519Recipient(strings.TrimSpace(string(pub)))
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, pubFile, err)
	}
	v.recipient = r
	return nil
}

// abortRotation erases whatever a rotation staged. The caller holds rot.
func (v *Vault) abortRotation() error {
	if err := eraseTree(filepath.Join(v.dir, nextKeysDir)); err != nil {
		return err
	}
	if err := eraseFile(filepath.Join(v.dir, nextKeyFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("vault: %w", err)
	}
	for _, name := range []string{nextPubFile, rotationFile} {
		if err := os.Remove(filepath.Join(v.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("vault: %w", err)
		}
	}
	return syncDir(v.dir)
}

// eraseTree erases every regular file under dir and removes dir.
func eraseTree(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			return overwriteInPlace(p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("vault: erasing %s: %w", dir, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	return syncDir(filepath.Dir(dir))
}

// randReader reads from crypto/rand.
type randReader struct{}

func (randReader) Read(p []byte) (int, error) { return cryptoRandRead(p) }
