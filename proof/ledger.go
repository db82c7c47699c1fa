package proof

import (
	"errors"
	"fmt"

	"custodian/audit"
)

// ErrMismatch: the ledger does not contain what a checkpoint signs (it
// was rewritten, truncated or rolled back, or the checkpoint is another
// ledger's), or it cannot produce a proof that checks (it is damaged).
var ErrMismatch = errors.New("the ledger does not match")

// ErrArgument: a proof was asked for something that does not exist (an
// event index past the end, an old checkpoint larger than the new one).
var ErrArgument = errors.New("invalid proof request")

// Prove builds the inclusion proof of event index from l and checks it
// before returning it: a damaged ledger yields an error, never a proof
// file that does not check.
func Prove(l *audit.Ledger, index int64) (Inclusion, error) {
	n, err := l.Size()
	if err != nil {
		return Inclusion{}, err
	}
	if index < 0 || index >= n {
		return Inclusion{}, fmt.Errorf("%w: no event %d: the ledger's events are 0 to %d", ErrArgument, index, n-1)
	}
	lp, err := l.ProveLeaf(index)
	if err != nil {
		return Inclusion{}, err
	}
	vkey, err := l.VerifierKey()
	if err != nil {
		return Inclusion{}, err
	}
	inc := NewInclusion(lp, vkey)
	b, err := Encode(inc)
	if err != nil {
		return Inclusion{}, err
	}
	if _, err := Check(b, Options{VerifierKey: vkey}); err != nil {
		return Inclusion{}, fmt.Errorf("%w: the proof of event %d does not check against the ledger's own signed checkpoint (%v): the ledger is damaged; run `custodian audit verify`", ErrMismatch, index, err)
	}
	return inc, nil
}

// ProveConsistency builds the consistency proof between two checkpoints
// of l: oldCP, and newCP or, when newCP is empty, l's current checkpoint.
// Both must be signed by l's key (other signatures, such as an auditor's
// cosignature, are kept), and l must still hold the trees they sign.
func ProveConsistency(l *audit.Ledger, oldCP, newCP []byte) (Consistency, error) {
	vkey, err := l.VerifierKey()
	if err != nil {
		return Consistency{}, err
	}
	if len(newCP) == 0 {
		if newCP, err = l.Checkpoint(); err != nil {
			return Consistency{}, err
		}
	}
	oldT, err := audit.ParseCheckpoint(oldCP, vkey)
	if err != nil {
		return Consistency{}, fmt.Errorf("%w: old checkpoint: %v (the ledger's key is %s)", ErrMismatch, err, vkey)
	}
	newT, err := audit.ParseCheckpoint(newCP, vkey)
	if err != nil {
		return Consistency{}, fmt.Errorf("%w: new checkpoint: %v (the ledger's key is %s)", ErrMismatch, err, vkey)
	}
	if oldT.N < 1 || oldT.N > newT.N {
		return Consistency{}, fmt.Errorf("%w: the old checkpoint (size %d) must be of size 1 to %d, the new one's", ErrArgument, oldT.N, newT.N)
	}
	n, err := l.Size()
	if err != nil {
		return Consistency{}, err
	}
	if newT.N > n {
		return Consistency{}, fmt.Errorf("%w: the ledger has %d events but the new checkpoint covers %d: events were removed (truncated or rolled back)", ErrMismatch, n, newT.N)
	}
	p, oldH, newH, err := l.ProveTree(oldT.N, newT.N)
	if err != nil {
		return Consistency{}, err
	}
	for _, c := range []struct {
		what string
		size int64
		want [32]byte
		got  [32]byte
	}{{"old", oldT.N, oldT.Hash, oldH}, {"new", newT.N, newT.Hash, newH}} {
		if c.want != c.got {
			return Consistency{}, fmt.Errorf("%w: the ledger's first %d events are not those the %s checkpoint signs: the ledger was rewritten", ErrMismatch, c.size, c.what)
		}
	}
	return NewConsistency(oldCP, newCP, vkey, p), nil
}
