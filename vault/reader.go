package vault

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"filippo.io/age"
)

// Open opens object id for reading and returns a stream of its plaintext.
// The object header is authenticated before Open returns; the payload is
// authenticated chunk by chunk (64 KiB) as it is read, so a damaged or
// truncated object makes Read fail with ErrCorrupt, possibly after some
// authentic plaintext has been returned. Consumers must not act on the data
// until Read has returned io.EOF.
//
// An object with a key file (FormatObjectKey) is decrypted with its own
// key, unwrapped with ident; a legacy object (no key file) with ident
// directly.
//
// Open returns ErrNotFound if the object does not exist, ErrWrongIdentity
// if it (or its key file) is not encrypted to ident, and ErrKeyMissing if
// its key file is gone (a destroyed object, or a lost file).
func (v *Vault) Open(id string, ident *Identity) (io.ReadCloser, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if ident == nil || ident.x == nil {
		return nil, fmt.Errorf("%w: nil identity", ErrInvalidArgument)
	}
	// The key and the master key both: during a rotation's migration an
	// object may briefly have a new key file while still legacy.
	ids := []age.Identity{ident.x}
	k, err := v.loadObjectKey(id, ident)
	if err != nil {
		return nil, err
	}
	if k != nil {
		defer k.wipe()
		ids = []age.Identity{k.id, ident.x}
	}
	f, err := os.Open(v.objectPath(id))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return nil, fmt.Errorf("vault: open %s: %w", id, err)
	}
	r := &objectReader{id: id, f: f, src: trackingReader{r: f}}
	r.plain, err = age.Decrypt(&r.src, ids...)
	if err != nil {
		err = r.classify(err)
		if k == nil && errors.Is(err, ErrWrongIdentity) {
			err = fmt.Errorf("%w: %s has no key file, and the master key does not open it", ErrKeyMissing, id)
		}
		_ = f.Close() // read-only; nothing to lose
		return nil, err
	}
	return r, nil
}

// trackingReader remembers the last non-EOF error of the underlying file, so
// that I/O failures can be told apart from authentication failures, which age
// reports as plain errors.
type trackingReader struct {
	r   io.Reader
	err error
}

func (t *trackingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

type objectReader struct {
	id     string
	f      *os.File
	src    trackingReader
	plain  io.Reader
	err    error // sticky classified error
	closed bool
}

func (r *objectReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("%w: reader for %s", ErrClosed, r.id)
	}
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.plain.Read(p)
	if err != nil && err != io.EOF {
		r.err = r.classify(err)
		return n, r.err
	}
	return n, err
}

// classify wraps an error from age with the matching sentinel.
func (r *objectReader) classify(err error) error {
	if r.src.err != nil {
		return fmt.Errorf("vault: read %s: %w", r.id, r.src.err)
	}
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		return fmt.Errorf("%w: %s", ErrWrongIdentity, r.id)
	}
	return fmt.Errorf("%w: object %s: %w", ErrCorrupt, r.id, err)
}

func (r *objectReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("vault: close %s: %w", r.id, err)
	}
	return nil
}
