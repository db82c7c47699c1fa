package audit

import (
	"bytes"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// LeafProof is an event's exact leaf bytes with an inclusion proof against
// the tree of the ledger's signed checkpoint, all read in one transaction,
// so the proof, the leaf and the checkpoint always agree.
type LeafProof struct {
	Index      int64
	Leaf       []byte           // the stored leaf, as hashed into the tree
	Proof      tlog.RecordProof // RFC 6962 audit path from the leaf to the root
	Checkpoint []byte           // the signed checkpoint of the tree proven against
	Tree       tlog.Tree        // the tree of that checkpoint, from the stored hashes
}

// ProveLeaf returns event index's stored leaf and its inclusion proof
// against the latest signed checkpoint. It is [Ledger.ProveEvent] with
// the leaf bytes and the checkpoint read in the same transaction; check
// it with tlog.CheckRecord(p.Proof, p.Tree.N, p.Tree.Hash, index,
// tlog.RecordHash(p.Leaf)) after opening p.Checkpoint.
func (l *Ledger) ProveLeaf(index int64) (LeafProof, error) {
	p := LeafProof{Index: index}
	err := l.view(func(b buckets) error {
		n, err := readSize(b.meta)
		if err != nil {
			return err
		}
		if index < 0 || index >= n {
			return fmt.Errorf("%w: index %d outside [0, %d)", ErrInvalidArgument, index, n)
		}
		p.Checkpoint = bytes.Clone(b.meta.Get(keyCheckpoint))
		if p.Checkpoint == nil {
			return ErrEmpty
		}
		p.Leaf = bytes.Clone(b.events.Get(u64(index)))
		if p.Leaf == nil {
			return fmt.Errorf("%w: event %d missing", ErrCorrupt, index)
		}
		r := bucketHashReader{b.hashes}
		if p.Proof, err = tlog.ProveRecord(n, index, r); err != nil {
			return err
		}
		p.Tree.N = n
		p.Tree.Hash, err = tlog.TreeHash(n, r)
		return err
	})
	if err != nil {
		return LeafProof{}, fmt.Errorf("audit: prove leaf: %w", err)
	}
	return p, nil
}

// ProveTree returns a proof that the tree of oldSize leaves is a prefix
// of the tree of newSize leaves (1 <= oldSize <= newSize <= Size()), with
// both trees' hashes as the stored hashes give them. It generalises
// [Ledger.ProveConsistency] to two earlier sizes, for example two kept
// checkpoints; check it with tlog.CheckTree(proof, newSize, newHash,
// oldSize, oldHash).
func (l *Ledger) ProveTree(oldSize, newSize int64) (proof tlog.TreeProof, oldHash, newHash tlog.Hash, err error) {
	err = l.view(func(b buckets) error {
		n, err := readSize(b.meta)
		if err != nil {
			return err
		}
		if newSize < 1 || newSize > n {
			return fmt.Errorf("%w: size %d outside [1, %d]", ErrInvalidArgument, newSize, n)
		}
		if oldSize < 1 || oldSize > newSize {
			return fmt.Errorf("%w: size %d outside [1, %d]", ErrInvalidArgument, oldSize, newSize)
		}
		r := bucketHashReader{b.hashes}
		if proof, err = tlog.ProveTree(newSize, oldSize, r); err != nil {
			return err
		}
		if oldHash, err = tlog.TreeHash(oldSize, r); err != nil {
			return err
		}
		newHash, err = tlog.TreeHash(newSize, r)
		return err
	})
	if err != nil {
		return nil, tlog.Hash{}, tlog.Hash{}, fmt.Errorf("audit: prove tree: %w", err)
	}
	return proof, oldHash, newHash, nil
}

// PrefixProof is the first Count events' exact leaf bytes with a proof
// that they are the start of the tree of the ledger's signed checkpoint:
// their own tree (of Count leaves) is a prefix of it. All are read in one
// transaction.
type PrefixProof struct {
	Count      int64
	Leaves     [][]byte
	Proof      tlog.TreeProof // RFC 6962 consistency proof from Count to Tree.N
	Checkpoint []byte
	Tree       tlog.Tree
}

// ProvePrefix returns the leaves of events 0 to count-1 and the proof
// that they begin the tree of the latest signed checkpoint (an archive of
// the ledger's oldest segment). Check it by computing the tree hash of the
// leaves and tlog.CheckTree(p.Proof, p.Tree.N, p.Tree.Hash, count, thatHash).
func (l *Ledger) ProvePrefix(count int64) (PrefixProof, error) {
	p := PrefixProof{Count: count}
	err := l.view(func(b buckets) error {
		n, err := readSize(b.meta)
		if err != nil {
			return err
		}
		if count < 1 || count > n {
			return fmt.Errorf("%w: count %d outside [1, %d]", ErrInvalidArgument, count, n)
		}
		p.Checkpoint = bytes.Clone(b.meta.Get(keyCheckpoint))
		if p.Checkpoint == nil {
			return ErrEmpty
		}
		p.Leaves = make([][]byte, 0, count)
		c := b.events.Cursor()
		for k, v := c.First(); k != nil && int64(len(p.Leaves)) < count; k, v = c.Next() {
			if i, ok := parseIndex(k); !ok || i != int64(len(p.Leaves)) {
				return fmt.Errorf("%w: event %d missing", ErrCorrupt, len(p.Leaves))
			}
			p.Leaves = append(p.Leaves, bytes.Clone(v))
		}
		if int64(len(p.Leaves)) != count {
			return fmt.Errorf("%w: event %d missing", ErrCorrupt, len(p.Leaves))
		}
		r := bucketHashReader{b.hashes}
		if p.Proof, err = tlog.ProveTree(n, count, r); err != nil {
			return err
		}
		p.Tree.N = n
		p.Tree.Hash, err = tlog.TreeHash(n, r)
		return err
	})
	if err != nil {
		return PrefixProof{}, fmt.Errorf("audit: prove prefix: %w", err)
	}
	return p, nil
}
