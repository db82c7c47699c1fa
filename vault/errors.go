package vault

import "errors"

// Sentinel errors. Every error returned by this package that corresponds to
// one of these conditions wraps the sentinel, so callers can test with
// errors.Is. The wrapping message carries the details (path, object ID,
// underlying cause).
var (
	// ErrExists is returned by Init when the directory already holds a vault
	// (or the remains of an interrupted Init).
	ErrExists = errors.New("vault: already exists")

	// ErrNotVault is returned by Open when the directory does not hold a
	// complete vault layout.
	ErrNotVault = errors.New("vault: not a vault")

	// ErrPermissions is returned by Open when a sensitive path is accessible
	// to group or other users. The message names the path, the mode found and
	// the chmod command that fixes it.
	ErrPermissions = errors.New("vault: insecure permissions")

	// ErrBadPassphrase is returned by Unlock when the passphrase does not
	// decrypt the master key.
	ErrBadPassphrase = errors.New("vault: wrong passphrase")

	// ErrKeyMismatch is returned by Unlock when the decrypted master identity
	// does not correspond to master.pub, meaning one of the two files was
	// replaced. Objects written since may be encrypted to a foreign key.
	ErrKeyMismatch = errors.New("vault: master.pub does not match master.key.age")

	// ErrBadID is returned for an object ID that is not exactly 32 lowercase
	// hexadecimal characters.
	ErrBadID = errors.New("vault: invalid object id")

	// ErrNotFound is returned when an object does not exist.
	ErrNotFound = errors.New("vault: object not found")

	// ErrWrongIdentity is returned when an object is not encrypted to the
	// given identity (for example it comes from another vault), or its
	// recipient stanza is damaged.
	ErrWrongIdentity = errors.New("vault: object not encrypted to this identity")

	// ErrKeyMissing is returned when an object's own key file is gone and
	// the master key cannot open it: the object was destroyed (its key
	// erased) or its key file was lost.
	ErrKeyMissing = errors.New("vault: object key missing")

	// ErrCorrupt is returned when stored data fails to parse or authenticate:
	// a modified, truncated or extended object, or a malformed key file.
	ErrCorrupt = errors.New("vault: corrupt data")

	// ErrClosed is returned when a Writer is used after Commit or Abort, or
	// an object reader after Close.
	ErrClosed = errors.New("vault: already closed")

	// ErrInvalidArgument is returned for invalid arguments such as an empty
	// passphrase, an out-of-range work factor, a nil identity or an empty
	// search string.
	ErrInvalidArgument = errors.New("vault: invalid argument")
)
