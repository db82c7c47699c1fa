package audit

import (
	"errors"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
)

// TestCommitFault: the fault hook fails commits like a full disk would
// (nothing written, the cause visible to errors.Is) and, once removed,
// writes go on where they stopped.
func TestCommitFault(t *testing.T) {
	key := newTestKey(t, "custodian.test/ledger")
	l, path := openTest(t, key)
	fill(t, l, 0, 10)
	cp, _ := l.Checkpoint()
	var full atomic.Bool
	full.Store(true)
	l.SetCommitFault(func() error {
		if full.Load() {
			return &os.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}
		}
		return nil
	})
	err := l.Update(func(tx *Tx) error { _, err := tx.Append(genEvent(10)); return err })
	if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, ErrWrite) {
		t.Fatalf("Update on a full disk: %v", err)
	}
	err = l.Batch(func(tx *Tx) error { _, err := tx.Append(genEvent(10)); return err })
	if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, ErrWrite) {
		t.Fatalf("Batch on a full disk: %v", err)
	}
	// An error of the transaction function is not a write failure.
	errMine := errors.New("mine")
	if err := l.Update(func(tx *Tx) error { return errMine }); err != errMine {
		t.Fatalf("Update returned %v", err)
	}
	if n, _ := l.Size(); n != 10 {
		t.Fatalf("a failed commit wrote events: size %d", n)
	}
	if cp2, _ := l.Checkpoint(); string(cp2) != string(cp) {
		t.Fatal("a failed commit changed the checkpoint")
	}
	full.Store(false)
	fill(t, l, 10, 20)
	if rep := verifyLedger(t, l, key.vkey); !rep.OK {
		t.Fatalf("after the fault:\n%v", rep)
	}
}

// TestFreeze: a frozen ledger refuses every write with the reason, changes
// nothing, and still answers reads.
func TestFreeze(t *testing.T) {
	key := newTestKey(t, "custodian.test/ledger")
	l, _ := openTest(t, key)
	fill(t, l, 0, 10)
	reason := errors.New("failed verification at start")
	l.Freeze(reason)
	l.Freeze(errors.New("a later reason does not replace the first"))
	for name, write := range map[string]func(func(*Tx) error) error{"Update": l.Update, "Batch": l.Batch} {
		err := write(func(tx *Tx) error { _, err := tx.Append(genEvent(10)); return err })
		if !errors.Is(err, ErrFrozen) || !errors.Is(err, reason) {
			t.Errorf("%s on a frozen ledger: %v", name, err)
		}
	}
	if !errors.Is(l.Frozen(), reason) {
		t.Errorf("Frozen() = %v", l.Frozen())
	}
	if n, err := l.Size(); err != nil || n != 10 {
		t.Fatalf("reads on a frozen ledger: %d %v", n, err)
	}
	if ds, err := l.Datasets(); err != nil || len(ds) == 0 {
		t.Fatalf("datasets on a frozen ledger: %d %v", len(ds), err)
	}
}

func verifyLedger(t *testing.T, l *Ledger, vkey string) *Report {
	t.Helper()
	rep, err := Verify(l, VerifyOptions{VerifierKey: vkey})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
