package audit

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these (or
// an error from bbolt or the operating system) and can be tested with
// [errors.Is].
var (
	// ErrReadOnly is returned by [Ledger.Update] on a ledger opened
	// read-only or without a signer.
	ErrReadOnly = errors.New("audit: ledger is read-only")

	// ErrEmpty is returned by [Ledger.Checkpoint] when no event has been
	// recorded yet.
	ErrEmpty = errors.New("audit: ledger is empty")

	// ErrNoVerifierKey is returned when a verifier key is needed but the
	// ledger has none recorded (no update yet) or none can be derived
	// from the signer.
	ErrNoVerifierKey = errors.New("audit: no verifier key")

	// ErrKeyMismatch is returned when the signer does not match the
	// verifier key recorded in the ledger or given in the options.
	ErrKeyMismatch = errors.New("audit: signing key does not match verifier key")

	// ErrInvalidEvent is returned by [Tx.Append] for an event that
	// violates the ledger's rules; nothing is written.
	ErrInvalidEvent = errors.New("audit: invalid event")

	// ErrDuplicateRemote is returned by [Tx.Append] when a new dataset
	// names a remote file already recorded for another dataset.
	// A new dataset may take over a recorded remote file only by naming
	// the recorded dataset in Dataset.Supersedes.
	ErrDuplicateRemote = errors.New("audit: remote file already recorded for another dataset")

	// ErrTransition is returned by [Tx.Append] for a state change the
	// custody rules forbid ([CheckTransition]); nothing is written.
	ErrTransition = errors.New("audit: state change not allowed")

	// ErrRecorded is returned by [Tx.Append] for an event whose once key
	// ([OnceKey]) is already on the ledger; nothing is written.
	ErrRecorded = errors.New("audit: already recorded")

	// ErrInvalidArgument is returned for out-of-range arguments.
	ErrInvalidArgument = errors.New("audit: invalid argument")

	// ErrTxClosed is returned when a [Tx] is used after its Update
	// function returned.
	ErrTxClosed = errors.New("audit: transaction closed")

	// ErrFormat is returned by [Open] for a file that is not a custody
	// ledger or has an unsupported format version.
	ErrFormat = errors.New("audit: not a custodian ledger or unsupported format")

	// ErrLocked is returned by [Open] when another handle (another
	// process, usually a running daemon) holds the file's lock beyond
	// Options.Timeout.
	ErrLocked = errors.New("audit: ledger file is locked by another handle")

	// ErrCorrupt is returned by read methods that find stored data they
	// cannot interpret. Run [Verify] for a full diagnosis.
	ErrCorrupt = errors.New("audit: ledger data corrupt")
)
