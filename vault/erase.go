package vault

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"filippo.io/age"
)

// headerCapture is how much of an object Destroy keeps in memory to prove,
// after the erase, that the ciphertext no longer opens: the whole age
// header (under 512 bytes with one recipient) and the stream nonce.
const headerCapture = 4 << 10

// eraseFile overwrites the regular file at path with random bytes over its
// whole length, fsyncs it, unlinks it and fsyncs its directory. This is
// the "clear" of NIST SP 800-88 for one file on a file system: what the
// device or the file system keeps elsewhere (SSD remapping, journals,
// snapshots) is out of reach, which docs/destruction.md explains. It
// returns an error wrapping fs.ErrNotExist if there is no such file.
func eraseFile(path string) error {
	if err := Overwrite(path); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// Overwrite overwrites the regular file at path with random bytes over
// its whole length and fsyncs it, leaving it in place (eraseFile then
// unlinks it; a backup overwrites what it held of a destroyed object
// before removing or replacing it). It returns an error wrapping
// fs.ErrNotExist if there is no such file.
func Overwrite(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = io.CopyN(f, rand.Reader, fi.Size())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("overwriting %s: %w", path, err)
	}
	return nil
}

// Erasure is what Destroy did to one object, and what it checked.
type Erasure struct {
	ObjectID string `json:"object_id"`
	// Format is the object's format before the erase: FormatObjectKey or
	// FormatLegacy (see Format).
	Format string `json:"format"`
	// KeyFilesErased and CiphertextsErased count the files overwritten
	// and unlinked: in keys/ or objects/, and copies set aside in orphans/.
	KeyFilesErased    int `json:"key_files_erased"`
	CiphertextsErased int `json:"ciphertexts_erased"`
	// Gone: no key file and no ciphertext of the object remains in the
	// vault (objects/, keys/, orphans/, tmp/).
	Gone bool `json:"gone"`
	// MasterOpens reports whether the object's header, captured before
	// the erase, still opens with the master key given to Destroy. For an
	// object with its own key it never does: copies of its ciphertext
	// elsewhere are undecryptable. For a legacy object it does until the
	// master key is rotated.
	MasterOpens bool `json:"master_opens"`
	// header is the captured header, for a check after a rotation.
	header []byte
}

// Destroy erases object id: its key file, then its ciphertext, and any
// copies crash recovery set aside in orphans/, each overwritten with random
// bytes, fsynced and unlinked. It then verifies: nothing of the object is
// left in the vault, and the object's header, read before the erase, does
// not open with the master identity ident. Destroy is idempotent: an
// object already erased (a destruction interrupted after the erase) is
// reported Gone with nothing erased. ident is needed for the verification
// only.
func (v *Vault) Destroy(id string, ident *Identity) (Erasure, error) {
	e := Erasure{ObjectID: id, Format: v.Format(id)}
	if err := checkID(id); err != nil {
		return e, err
	}
	if ident == nil || ident.x == nil {
		return e, fmt.Errorf("%w: nil identity", ErrInvalidArgument)
	}
	v.rot.RLock() // no rotation re-wraps a key while it is erased
	defer v.rot.RUnlock()
	objPath := v.objectPath(id)
	aside := filepath.Join(v.dir, orphansDir, id+objectExt)
	for _, p := range []string{objPath, aside} {
		if h, err := readHead(p); err == nil {
			e.header = h
			break
		}
	}
	for _, p := range []string{v.keyPath(id), filepath.Join(v.dir, orphansDir, id+keyExt)} {
		switch err := eraseFile(p); {
		case err == nil:
			e.KeyFilesErased++
		case !errors.Is(err, fs.ErrNotExist):
			return e, fmt.Errorf("vault: destroy %s: key file: %w", id, err)
		}
	}
	for _, p := range []string{objPath, aside, filepath.Join(v.dir, tmpDir, id+partialExt)} {
		switch err := eraseFile(p); {
		case err == nil:
			e.CiphertextsErased++
		case !errors.Is(err, fs.ErrNotExist):
			return e, fmt.Errorf("vault: destroy %s: ciphertext: %w", id, err)
		}
	}
	gone, err := v.gone(id)
	if err != nil {
		return e, err
	}
	e.Gone = gone
	if e.header != nil {
		e.MasterOpens = HeaderOpens(e.header, ident)
	}
	return e, nil
}

// Recheck repeats the decryption attempt of e with another identity (the
// master key after a rotation): whether the header captured before the
// erase opens with it.
func (e Erasure) Recheck(ident *Identity) bool {
	return e.header != nil && HeaderOpens(e.header, ident)
}

// Header returns the header captured before the erase (nil if the object
// was already gone).
func (e Erasure) Header() []byte { return e.header }

// Erased reports whether no file of object id is left in the vault: no
// key file and no ciphertext in keys/, objects/, orphans/ or tmp/.
func (v *Vault) Erased(id string) (bool, error) {
	if err := checkID(id); err != nil {
		return false, err
	}
	return v.gone(id)
}

func (v *Vault) gone(id string) (bool, error) {
	for _, p := range []string{
		v.keyPath(id), v.objectPath(id),
		filepath.Join(v.dir, orphansDir, id+keyExt), filepath.Join(v.dir, orphansDir, id+objectExt),
		filepath.Join(v.dir, tmpDir, id+partialExt), filepath.Join(v.dir, tmpDir, id+keyExt+partialExt),
	} {
		_, err := os.Lstat(p)
		if err == nil {
			return false, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("vault: %w", err)
		}
	}
	return true, nil
}

func readHead(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, headerCapture))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// HeaderOpens reports whether the age header at the start of ciphertext
// opens with ident alone: whether the master key can recover the data key
// of that ciphertext. It is the decryption attempt a destruction's
// verification makes on a copy of the ciphertext.
func HeaderOpens(ciphertext []byte, ident *Identity) bool {
	if ident == nil || ident.x == nil {
		return false
	}
	// age.Decrypt reads the header and the stream nonce, unwrapping the
	// data key, and leaves the payload for Read: a nil error means the
	// key was recovered.
	_, err := age.Decrypt(bytes.NewReader(ciphertext), ident.x)
	return err == nil
}

var cryptoRandRead = rand.Read
