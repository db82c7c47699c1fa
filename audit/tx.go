package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// Tx is a read-write ledger transaction, valid only inside the function
// passed to [Ledger.Update].
type Tx struct {
	btx    *bolt.Tx
	b      buckets
	start  int64 // size before the transaction
	size   int64 // current size
	closed bool
	err    error // a write failed: the transaction must not commit
}

// testSkipTransitions lets a test write a state change the custody rules
// forbid, as a faulty or hostile writer holding the signing key could, to
// prove that Verify finds it.
var testSkipTransitions bool

// emptyValue is the value of timeline entries. bbolt keeps a reference to
// values until commit; this one is never modified.
var emptyValue = []byte{}

// Append adds ev to the log and returns the event as stored.
//
// Append assigns Index (any value given is ignored) and sets Time to the
// current time if it is zero; all times are stored in UTC. If ev.Dataset
// is set, DatasetID defaults to its ID and must equal it, UpdatedAt
// defaults to the event time and ReceivedAt to the event time (first
// state) or to the previous state's ReceivedAt. A dataset's Source and
// RemotePath cannot change once recorded, and a new dataset may not name
// a remote file already recorded for another dataset
// ([ErrDuplicateRemote]).
//
// An event may name a dataset (DatasetID) without recording its state,
// for example an access or a failed check; it then appears in that
// dataset's timeline only.
//
// A rejected event ([ErrInvalidEvent], [ErrDuplicateRemote]) writes
// nothing and the transaction can continue. If a write fails, the whole
// transaction is aborted when the Update function returns.
func (tx *Tx) Append(ev Event) (Event, error) {
	if tx.closed {
		return Event{}, ErrTxClosed
	}
	if tx.err != nil {
		return Event{}, fmt.Errorf("audit: append after failed write: %w", tx.err)
	}
	ev.Index = tx.size
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Time = ev.Time.UTC()

	var (
		d      *Dataset
		prev   Dataset
		exists bool
	)
	if ev.Dataset != nil {
		dd := *ev.Dataset // defaults are filled in below: don't touch the caller's
		d = &dd
		if ev.DatasetID == "" {
			ev.DatasetID = d.ID
		}
		ev.Dataset = d
	}
	if err := validateEvent(&ev); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	if !ev.Type.Known() {
		return Event{}, fmt.Errorf("%w: unknown event type %q (the catalogue is in audit/custody.go and docs/ledger-format.md)", ErrInvalidEvent, ev.Type)
	}
	if d == nil && ev.Type.ChangesState() {
		return Event{}, fmt.Errorf("%w: a %s event must carry the dataset's new state", ErrInvalidEvent, ev.Type)
	}
	if d != nil {
		p, ok, err := getDataset(tx.b, d.ID)
		prev = p
		if err != nil {
			return Event{}, fmt.Errorf("audit: append: %w", err)
		}
		exists = ok
		if exists {
			if prev.Source != d.Source || prev.RemotePath != d.RemotePath {
				return Event{}, fmt.Errorf("%w: dataset %s: source and remote_path cannot change (recorded %q %q)",
					ErrInvalidEvent, d.ID, prev.Source, prev.RemotePath)
			}
			if prev.Supersedes != d.Supersedes {
				return Event{}, fmt.Errorf("%w: dataset %s: supersedes cannot change (recorded %q)", ErrInvalidEvent, d.ID, prev.Supersedes)
			}
			if d.ReceivedAt.IsZero() {
				d.ReceivedAt = prev.ReceivedAt
			}
		} else {
			if d.ReceivedAt.IsZero() {
				d.ReceivedAt = ev.Time
			}
			if d.hasRemote() {
				id, ok := getRemote(tx.b, d.Source, d.RemotePath)
				switch {
				case ok && id != d.Supersedes:
					return Event{}, fmt.Errorf("%w: %s %s is dataset %s", ErrDuplicateRemote, d.Source, d.RemotePath, id)
				case !ok && d.Supersedes != "":
					return Event{}, fmt.Errorf("%w: dataset %s supersedes %s, which is not the dataset recorded for %s %s",
						ErrInvalidEvent, d.ID, d.Supersedes, d.Source, d.RemotePath)
				}
			}
		}
		from := State("")
		if exists {
			from = prev.State
		}
		if err := CheckTransition(ev.Type, from, d.State); err != nil && !testSkipTransitions {
			return Event{}, fmt.Errorf("%w: dataset %s: %v", ErrTransition, d.ID, err)
		}
		if d.UpdatedAt.IsZero() {
			d.UpdatedAt = ev.Time
		}
		d.RemoteMtime = d.RemoteMtime.UTC()
		d.ReceivedAt = d.ReceivedAt.UTC()
		d.UpdatedAt = d.UpdatedAt.UTC()
	}

	onceKey, once := ev.Details[OnceKey]
	if once {
		if i, seen := getOnce(tx.b, onceKey); seen {
			return Event{}, fmt.Errorf("%w: %s %q was recorded by event %d", ErrRecorded, OnceKey, onceKey, i)
		}
	}

	leaf, ds, err := encodeEvent(&ev)
	if err != nil {
		return Event{}, fmt.Errorf("%w: encode: %v", ErrInvalidEvent, err)
	}
	if len(leaf) > MaxEventSize {
		return Event{}, fmt.Errorf("%w: %d bytes encoded, limit %d", ErrInvalidEvent, len(leaf), MaxEventSize)
	}
	// Never write what Verify would reject: the leaf must decode to an
	// event that encodes to the same bytes.
	var stored Event
	if err := json.Unmarshal(leaf, &stored); err != nil {
		return Event{}, fmt.Errorf("%w: does not decode: %v", ErrInvalidEvent, err)
	}
	if again, _, err := encodeEvent(&stored); err != nil || !bytes.Equal(again, leaf) {
		return Event{}, fmt.Errorf("%w: encoding is not canonical", ErrInvalidEvent)
	}
	hashes, err := tlog.StoredHashes(ev.Index, leaf, bucketHashReader{tx.b.hashes})
	if err != nil {
		return Event{}, fmt.Errorf("audit: append: %w", err)
	}

	// From here on a failure leaves partial writes behind: poison the
	// transaction so Update rolls it back.
	var before *Dataset
	if exists {
		before = &prev
	}
	if err := tx.write(&ev, leaf, ds, hashes, before, d != nil && !exists, onceKey); err != nil {
		tx.err = err
		return Event{}, fmt.Errorf("audit: append: %w", err)
	}
	tx.size++
	return stored, nil
}

func (tx *Tx) write(ev *Event, leaf, ds []byte, hashes []tlog.Hash, prev *Dataset, newDataset bool, onceKey string) error {
	if err := tx.b.events.Put(u64(ev.Index), leaf); err != nil {
		return fmt.Errorf("event %d: %w", ev.Index, err)
	}
	base := tlog.StoredHashIndex(0, ev.Index)
	for i := range hashes {
		if err := tx.b.hashes.Put(u64(base+int64(i)), hashes[i][:]); err != nil {
			return fmt.Errorf("hash %d: %w", base+int64(i), err)
		}
	}
	if ev.DatasetID != "" {
		if err := tx.b.timeline.Put(timelineKey(ev.DatasetID, ev.Index), emptyValue); err != nil {
			return fmt.Errorf("timeline %d: %w", ev.Index, err)
		}
	}
	if d := ev.Dataset; d != nil {
		if err := tx.b.datasets.Put([]byte(d.ID), ds); err != nil {
			return fmt.Errorf("dataset %s: %w", d.ID, err)
		}
		if err := noteDatasetTime(tx.b.datasetTime, prev, d); err != nil {
			return err
		}
		if newDataset && d.hasRemote() {
			if err := tx.b.remote.Put(remoteKey(d.Source, d.RemotePath), []byte(d.ID)); err != nil {
				return fmt.Errorf("remote index %s: %w", d.ID, err)
			}
		}
	}
	if d := ev.Dataset; d != nil {
		if job, seq, ok := chainSequence(d); ok {
			if tx.b.sequence == nil {
				return fmt.Errorf("sequence index: %w: bucket missing", ErrFormat)
			}
			if err := noteSequence(tx.b.sequence, job, seq); err != nil {
				return fmt.Errorf("sequence index %s: %w", job, err)
			}
		}
	}
	if onceKey != "" {
		if tx.b.once == nil {
			return fmt.Errorf("once index: %w: bucket missing", ErrFormat)
		}
		if err := tx.b.once.Put([]byte(onceKey), u64(ev.Index)); err != nil {
			return fmt.Errorf("once index %d: %w", ev.Index, err)
		}
	}
	return nil
}

func timelineKey(datasetID string, index int64) []byte {
	k := make([]byte, 0, len(datasetID)+9)
	k = append(k, datasetID...)
	k = append(k, 0)
	return append(k, u64(index)...)
}

// Dataset returns the current state of dataset id, including changes made
// earlier in this transaction.
func (tx *Tx) Dataset(id string) (Dataset, bool, error) {
	if tx.closed {
		return Dataset{}, false, ErrTxClosed
	}
	d, ok, err := getDataset(tx.b, id)
	if err != nil {
		return Dataset{}, false, fmt.Errorf("audit: dataset: %w", err)
	}
	return d, ok, nil
}

// RemoteDataset returns the ID of the dataset recorded for a remote file,
// including datasets recorded earlier in this transaction.
func (tx *Tx) RemoteDataset(source, remotePath string) (id string, ok bool, err error) {
	if tx.closed {
		return "", false, ErrTxClosed
	}
	id, ok = getRemote(tx.b, source, remotePath)
	return id, ok, nil
}

// AppendOnce appends ev unless an event with the same once key was
// recorded before, in which case it returns that event's index and
// recorded=false. The key is stored in ev.Details[OnceKey], so Verify can
// rebuild the index from the events. It serves notices that must be on the
// ledger once, not on every run (a refused remote file, say).
func (tx *Tx) AppendOnce(key string, ev Event) (index int64, recorded bool, err error) {
	if tx.closed {
		return 0, false, ErrTxClosed
	}
	if i, seen := getOnce(tx.b, key); seen {
		return i, false, nil
	}
	details := make(map[string]string, len(ev.Details)+1)
	for k, v := range ev.Details {
		details[k] = v
	}
	details[OnceKey] = key
	ev.Details = details
	stored, err := tx.Append(ev)
	if err != nil {
		return 0, false, err
	}
	return stored.Index, true, nil
}

// Size returns the number of events, including those appended in this
// transaction.
func (tx *Tx) Size() int64 { return tx.size }
