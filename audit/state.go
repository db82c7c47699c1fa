package audit

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketState holds the application's mutable records (accounts, requests)
// in nested buckets, one per kind. They live in the ledger's file so that a
// change and the event recording it commit in one transaction: an account is
// never locked without its lock event, nor the reverse. They are not
// evidence: not hashed, not covered by checkpoints, and Verify ignores them;
// the events are the evidence.
var bucketState = []byte("state")

// ErrStateName: a state bucket name is empty or too long.
var ErrStateName = errors.New("audit: state bucket name must be 1 to 64 bytes")

// Records is one nested state bucket. Keys are strings; values are the
// caller's (JSON in practice) and must not be modified after Put until the
// transaction ends.
type Records interface {
	Get(key string) []byte
	ForEach(fn func(key string, value []byte) error) error
}

// RecordsWriter is a state bucket in a read-write transaction.
type RecordsWriter interface {
	Records
	Put(key string, value []byte) error
	// Delete removes key (absent: nothing happens).
	Delete(key string) error
	// NextSequence returns the bucket's next sequence number (1, 2, …),
	// for IDs that are never reused.
	NextSequence() (uint64, error)
}

type stateBucket struct{ b *bolt.Bucket }

func (s stateBucket) Get(key string) []byte {
	if s.b == nil {
		return nil
	}
	v := s.b.Get([]byte(key))
	if v == nil {
		return nil
	}
	return append([]byte(nil), v...)
}

func (s stateBucket) ForEach(fn func(string, []byte) error) error {
	if s.b == nil {
		return nil
	}
	return s.b.ForEach(func(k, v []byte) error {
		if v == nil { // a nested bucket
			return nil
		}
		return fn(string(k), append([]byte(nil), v...))
	})
}

func (s stateBucket) Put(key string, value []byte) error {
	if key == "" {
		return fmt.Errorf("%w: empty state key", ErrInvalidArgument)
	}
	return s.b.Put([]byte(key), value)
}

func (s stateBucket) NextSequence() (uint64, error) { return s.b.NextSequence() }

func (s stateBucket) Delete(key string) error { return s.b.Delete([]byte(key)) }

func checkStateName(name string) error {
	if name == "" || len(name) > 64 {
		return ErrStateName
	}
	return nil
}

// State returns the named state bucket for writing, creating it (and the
// state bucket of a file written before it existed) on first use. A write
// that fails aborts the whole transaction, events included.
func (tx *Tx) State(name string) (RecordsWriter, error) {
	if err := checkStateName(name); err != nil {
		return nil, err
	}
	if tx.closed {
		return nil, fmt.Errorf("%w: transaction closed", ErrInvalidArgument)
	}
	root, err := tx.btx.CreateBucketIfNotExists(bucketState)
	if err != nil {
		tx.err = err
		return nil, err
	}
	b, err := root.CreateBucketIfNotExists([]byte(name))
	if err != nil {
		tx.err = err
		return nil, err
	}
	return &failingState{stateBucket{b}, tx}, nil
}

// failingState marks the transaction failed when a write fails, as Append
// does, so that a change is never committed without the rest.
type failingState struct {
	stateBucket
	tx *Tx
}

func (s *failingState) Delete(key string) error {
	err := s.stateBucket.Delete(key)
	if err != nil {
		s.tx.err = err
	}
	return err
}

func (s *failingState) Put(key string, value []byte) error {
	err := s.stateBucket.Put(key, value)
	if err != nil && !errors.Is(err, ErrInvalidArgument) {
		s.tx.err = err
	}
	return err
}

// ViewState runs fn over the named state bucket in a read-only
// transaction; a bucket never written reads as empty.
func (l *Ledger) ViewState(name string, fn func(Records) error) error {
	if err := checkStateName(name); err != nil {
		return err
	}
	return l.db.View(func(btx *bolt.Tx) error {
		var b *bolt.Bucket
		if root := btx.Bucket(bucketState); root != nil {
			b = root.Bucket([]byte(name))
		}
		return fn(stateBucket{b})
	})
}
