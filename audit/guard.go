package audit

import (
	"errors"
	"fmt"
	"sync"
)

var (
	// ErrFrozen is returned by [Ledger.Update] and [Ledger.Batch] on a
	// ledger that [Ledger.Freeze] closed to writes; the error also carries
	// the reason.
	ErrFrozen = errors.New("audit: ledger refuses writes")

	// ErrWrite wraps a failure to commit a write transaction to the file
	// (a full disk, an I/O error): the transaction was valid, nothing of it
	// was written, and the same transaction may succeed later.
	ErrWrite = errors.New("audit: ledger write failed")
)

// writeError marks err, returned by bbolt's Update, as a commit failure
// unless it is what the transaction function itself returned.
func writeError(err, applied error) error {
	if err == nil || err == applied {
		return err
	}
	return fmt.Errorf("%w: %w", ErrWrite, err)
}

// writeGuard decides whether a write transaction may commit. Every write
// goes through Ledger.apply, which consults it twice: before running the
// caller's function (frozen) and just before committing (commit fault).
type writeGuard struct {
	mu     sync.Mutex
	frozen error
	fault  func() error
}

// Freeze makes every later Update and Batch fail with [ErrFrozen], wrapping
// reason, and write nothing; reads keep working. A daemon freezes a ledger
// that failed verification: appending would sign a new checkpoint over
// whatever the file now holds and bury the evidence. There is no Unfreeze:
// reopen the file once it has been examined or restored.
func (l *Ledger) Freeze(reason error) {
	if reason == nil {
		reason = errors.New("no reason given")
	}
	l.guard.mu.Lock()
	defer l.guard.mu.Unlock()
	if l.guard.frozen == nil {
		l.guard.frozen = reason
	}
}

// Frozen returns the reason given to [Ledger.Freeze], or nil.
func (l *Ledger) Frozen() error {
	l.guard.mu.Lock()
	defer l.guard.mu.Unlock()
	return l.guard.frozen
}

// SetCommitFault is for fault-injection tests. While fault returns an error,
// every write transaction is rolled back at its commit with that error, as
// if bbolt's commit had failed (a full disk: wrap syscall.ENOSPC in an
// *os.PathError). Nil removes the fault.
func (l *Ledger) SetCommitFault(fault func() error) {
	l.guard.mu.Lock()
	defer l.guard.mu.Unlock()
	l.guard.fault = fault
}

// admit is called before a write transaction runs the caller's function.
func (g *writeGuard) admit() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.frozen != nil {
		return fmt.Errorf("%w: %w", ErrFrozen, g.frozen)
	}
	return nil
}

// commit is called when a write transaction is about to commit.
func (g *writeGuard) commit() error {
	g.mu.Lock()
	fault := g.fault
	g.mu.Unlock()
	if fault == nil {
		return nil
	}
	if err := fault(); err != nil {
		return fmt.Errorf("%w: %w", ErrWrite, err)
	}
	return nil
}
