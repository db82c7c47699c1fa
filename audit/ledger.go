package audit

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// FormatVersion is stored under meta "format".
const FormatVersion = "custodian-ledger/1"

// DefaultTimeout is the default time Open waits for the file lock.
const DefaultTimeout = time.Second

var (
	bucketEvents   = []byte("events")
	bucketHashes   = []byte("hashes")
	bucketDatasets = []byte("datasets")
	bucketRemote   = []byte("remote")
	bucketTimeline = []byte("timeline")
	bucketMeta     = []byte("meta")
	// bucketOnce maps a once key (Event.Details[OnceKey]) to the index of
	// the event that carries it. Ledgers written before it existed get it
	// on their first writable open; Verify treats a missing one as empty.
	bucketOnce = []byte("once")

	allBuckets = [][]byte{bucketEvents, bucketHashes, bucketDatasets, bucketRemote, bucketTimeline, bucketMeta}

	keyFormat      = []byte("format")
	keySize        = []byte("size")
	keyCheckpoint  = []byte("checkpoint")
	keyVerifierKey = []byte("verifier_key")
)

// Options configure [Open].
type Options struct {
	// Signer signs checkpoints. Without a signer the ledger can only be
	// read and Update fails with ErrReadOnly.
	Signer note.Signer

	// VerifierKey is the verifier key of Signer. It is needed only when
	// Signer does not implement KeyedSigner; if both are given they
	// must agree.
	VerifierKey string

	// ReadOnly opens the file with a shared lock; several read-only
	// handles may coexist, but none with a writer.
	ReadOnly bool

	// Timeout bounds the wait for the file lock (default 1s).
	Timeout time.Duration

	// NoSync skips fsync on commit. For tests and benchmarks only: a
	// crash may then lose or corrupt committed events.
	NoSync bool
}

// Ledger is an open custody ledger. Its methods are safe for concurrent
// use; bbolt serialises writers and gives readers consistent snapshots.
type Ledger struct {
	db       *bolt.DB
	signer   note.Signer
	vkey     string // verifier key of signer
	readOnly bool
	guard    writeGuard // Freeze and the commit fault hook (guard.go)

	bmu     sync.Mutex
	pending []*batchCall // Batch calls waiting for the next group commit
	leading bool         // a caller is committing batches
}

type batchCall struct {
	fn   func(tx *Tx) error
	done chan error
}

// Open opens the ledger at path, creating it (mode 0600) if it does not
// exist and opts.ReadOnly is false. A read-only handle accepts a file
// with missing buckets, so that [Verify] can report on it. If another
// handle holds the file's lock for longer than opts.Timeout, Open fails
// with [ErrLocked].
func Open(path string, opts Options) (*Ledger, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	l := &Ledger{readOnly: opts.ReadOnly}
	if opts.Signer != nil && !opts.ReadOnly {
		vkey := opts.VerifierKey
		if ks, ok := opts.Signer.(KeyedSigner); ok {
			if vkey != "" && vkey != ks.VerifierKey() {
				return nil, fmt.Errorf("%w: Options.VerifierKey differs from the signer's key", ErrKeyMismatch)
			}
			vkey = ks.VerifierKey()
		}
		if vkey == "" {
			return nil, fmt.Errorf("%w: signer does not implement KeyedSigner and Options.VerifierKey is empty", ErrNoVerifierKey)
		}
		if _, err := checkKeyPair(opts.Signer, vkey); err != nil {
			return nil, err
		}
		l.signer, l.vkey = opts.Signer, vkey
	}
	if opts.ReadOnly {
		// bbolt would otherwise report a confusing error.
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("audit: open %s: %w", path, err)
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:  timeout,
		ReadOnly: opts.ReadOnly,
		NoSync:   opts.NoSync,
	})
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, openError(err))
	}
	l.db = db
	if err := l.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	return l, nil
}

// openError translates bbolt's lock timeout into ErrLocked, keeping the
// original error in the chain.
func openError(err error) error {
	if errors.Is(err, bolt.ErrTimeout) {
		return fmt.Errorf("%w: %w", ErrLocked, err)
	}
	return err
}

// init checks the file format, creating the buckets in a new file, and
// checks the signer against the recorded verifier key.
func (l *Ledger) init() error {
	fresh := false
	err := l.db.View(func(btx *bolt.Tx) error {
		n := 0
		if err := btx.ForEach(func([]byte, *bolt.Bucket) error { n++; return nil }); err != nil {
			return err
		}
		if n == 0 {
			fresh = true
			return nil
		}
		return checkFormat(btx, l.vkey, l.readOnly)
	})
	if err != nil {
		return err
	}
	if !fresh {
		if l.readOnly {
			return nil
		}
		return l.db.Update(func(btx *bolt.Tx) error {
			if btx.Bucket(bucketOnce) == nil {
				if _, err := btx.CreateBucket(bucketOnce); err != nil {
					return err
				}
			}
			if btx.Bucket(bucketDatasetTime) == nil {
				b, err := btx.CreateBucket(bucketDatasetTime)
				if err != nil {
					return err
				}
				if err := buildDatasetTime(btx, b); err != nil {
					return err
				}
			}
			if btx.Bucket(bucketSequence) != nil {
				return nil
			}
			b, err := btx.CreateBucket(bucketSequence)
			if err != nil {
				return err
			}
			return buildSequence(btx, b)
		})
	}
	if l.readOnly {
		return fmt.Errorf("%w: empty file", ErrFormat)
	}
	return l.db.Update(func(btx *bolt.Tx) error {
		for _, name := range append(allBuckets, bucketOnce, bucketSequence, bucketDatasetTime) {
			if _, err := btx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := btx.Bucket(bucketMeta)
		if meta.Get(keyFormat) == nil {
			return meta.Put(keyFormat, []byte(FormatVersion))
		}
		return checkFormat(btx, l.vkey, false)
	})
}

// checkFormat checks that btx is a ledger. A read-only handle only needs
// the meta bucket, so that Verify can report on a damaged file.
func checkFormat(btx *bolt.Tx, vkey string, readOnly bool) error {
	for _, name := range allBuckets {
		if btx.Bucket(name) == nil && (!readOnly || string(name) == string(bucketMeta)) {
			return fmt.Errorf("%w: bucket %q missing", ErrFormat, name)
		}
	}
	meta := btx.Bucket(bucketMeta)
	if f := meta.Get(keyFormat); string(f) != FormatVersion {
		return fmt.Errorf("%w: format %q, want %q", ErrFormat, f, FormatVersion)
	}
	if stored := meta.Get(keyVerifierKey); vkey != "" && stored != nil && string(stored) != vkey {
		return fmt.Errorf("%w: ledger is signed by %s", ErrKeyMismatch, stored)
	}
	return nil
}

// Close closes the file. It waits for open transactions to finish.
func (l *Ledger) Close() error {
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("audit: close: %w", err)
	}
	return nil
}

// buckets holds the buckets of one transaction.
type buckets struct {
	events, hashes, datasets, remote, timeline, meta *bolt.Bucket
	once, sequence, datasetTime                      *bolt.Bucket // nil in a read-only ledger written before they existed
}

// lookupBuckets returns the buckets of btx; a missing one is nil.
func lookupBuckets(btx *bolt.Tx) buckets {
	return buckets{
		events:      btx.Bucket(bucketEvents),
		hashes:      btx.Bucket(bucketHashes),
		datasets:    btx.Bucket(bucketDatasets),
		remote:      btx.Bucket(bucketRemote),
		timeline:    btx.Bucket(bucketTimeline),
		meta:        btx.Bucket(bucketMeta),
		once:        btx.Bucket(bucketOnce),
		sequence:    btx.Bucket(bucketSequence),
		datasetTime: btx.Bucket(bucketDatasetTime),
	}
}

func openBuckets(btx *bolt.Tx) (buckets, error) {
	b := lookupBuckets(btx)
	if b.events == nil || b.hashes == nil || b.datasets == nil || b.remote == nil || b.timeline == nil || b.meta == nil {
		return b, fmt.Errorf("%w: bucket missing", ErrFormat)
	}
	return b, nil
}

func (l *Ledger) view(fn func(b buckets) error) error {
	return l.db.View(func(btx *bolt.Tx) error {
		b, err := openBuckets(btx)
		if err != nil {
			return err
		}
		return fn(b)
	})
}

func u64(n int64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(n))
}

// parseIndex decodes an 8-byte big-endian non-negative index.
func parseIndex(k []byte) (int64, bool) {
	if len(k) != 8 {
		return 0, false
	}
	v := binary.BigEndian.Uint64(k)
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

func readSize(meta *bolt.Bucket) (int64, error) {
	v := meta.Get(keySize)
	if v == nil {
		return 0, nil
	}
	n, ok := parseIndex(v)
	if !ok {
		return 0, fmt.Errorf("%w: meta size %x", ErrCorrupt, v)
	}
	return n, nil
}

// bucketHashReader reads tlog stored hashes from the hashes bucket. In a
// read-write transaction it sees the transaction's own writes.
type bucketHashReader struct{ b *bolt.Bucket }

func (r bucketHashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var k [8]byte
	for i, x := range indexes {
		binary.BigEndian.PutUint64(k[:], uint64(x))
		v := r.b.Get(k[:])
		if len(v) != tlog.HashSize {
			return nil, fmt.Errorf("%w: stored hash %d missing or malformed", ErrCorrupt, x)
		}
		copy(out[i][:], v)
	}
	return out, nil
}

// Update runs fn in one read-write transaction. If fn appended events, a
// checkpoint of the new tree is signed and stored in the same
// transaction. If fn returns an error, or an append failed midway, nothing
// is written and the error is returned.
//
// fn must work through tx only: calling the Ledger's own methods from fn
// can deadlock, as with any bbolt transaction.
func (l *Ledger) Update(fn func(tx *Tx) error) error {
	if l.readOnly || l.signer == nil {
		return ErrReadOnly
	}
	if fn == nil {
		return fmt.Errorf("%w: nil function", ErrInvalidArgument)
	}
	var applied error
	err := l.db.Update(func(btx *bolt.Tx) error { applied = l.apply(btx, fn); return applied })
	return writeError(err, applied)
}

// Batch is Update for many concurrent callers (group commit): calls that
// arrive while a commit is in progress wait for it, then all commit together
// in the next transaction, with one fsync and one signed checkpoint. There is
// no timer: a lone caller commits at once, and under load each fsync carries
// everything that queued behind the previous one. Each caller returns only
// once its own events are durable. If one call's fn fails, the batch is
// retried without it, so fn may run more than once and must compute all it
// writes from what it reads in tx.
func (l *Ledger) Batch(fn func(tx *Tx) error) error {
	if l.readOnly || l.signer == nil {
		return ErrReadOnly
	}
	if fn == nil {
		return fmt.Errorf("%w: nil function", ErrInvalidArgument)
	}
	c := &batchCall{fn: fn, done: make(chan error, 1)}
	l.bmu.Lock()
	l.pending = append(l.pending, c)
	if l.leading {
		l.bmu.Unlock()
		return <-c.done
	}
	l.leading = true
	l.bmu.Unlock()
	// This caller commits batches until nobody is waiting.
	for {
		l.bmu.Lock()
		batch := l.pending
		l.pending = nil
		if len(batch) == 0 {
			l.leading = false
			l.bmu.Unlock()
			break
		}
		l.bmu.Unlock()
		l.commitBatch(batch)
	}
	return <-c.done
}

// commitBatch commits the calls in one transaction; a call whose fn fails
// gets its error and the rest are committed without it.
func (l *Ledger) commitBatch(batch []*batchCall) {
	for len(batch) > 0 {
		failed, ferr := -1, error(nil)
		var applied error
		err := l.db.Update(func(btx *bolt.Tx) error {
			applied = l.apply(btx, func(tx *Tx) error {
				for i, c := range batch {
					if err := c.fn(tx); err != nil {
						failed, ferr = i, err
						return err
					}
				}
				return nil
			})
			return applied
		})
		err = writeError(err, applied)
		if err == nil {
			for _, c := range batch {
				c.done <- nil
			}
			return
		}
		if failed < 0 { // the transaction itself failed (disk, corruption)
			for _, c := range batch {
				c.done <- err
			}
			return
		}
		batch[failed].done <- ferr
		batch = append(batch[:failed:failed], batch[failed+1:]...)
	}
}

// apply runs fn in btx and, if it appended events, stores the new size and a
// signed checkpoint of the new tree in the same transaction.
func (l *Ledger) apply(btx *bolt.Tx, fn func(tx *Tx) error) error {
	if err := l.guard.admit(); err != nil {
		return err
	}
	b, err := openBuckets(btx)
	if err != nil {
		return err
	}
	// Events and hashes are append-only: fill pages completely.
	b.events.FillPercent = 1
	b.hashes.FillPercent = 1
	size, err := readSize(b.meta)
	if err != nil {
		return err
	}
	// Refuse to extend a log whose size record disagrees with its
	// contents; appending would bury the inconsistency.
	var last int64 = -1
	if k, _ := b.events.Cursor().Last(); k != nil {
		var ok bool
		if last, ok = parseIndex(k); !ok {
			return fmt.Errorf("%w: malformed event key %x", ErrCorrupt, k)
		}
	}
	if last+1 != size {
		return fmt.Errorf("%w: meta size %d but last event %d; run Verify", ErrCorrupt, size, last)
	}
	if stored := b.meta.Get(keyVerifierKey); stored == nil {
		if err := b.meta.Put(keyVerifierKey, []byte(l.vkey)); err != nil {
			return fmt.Errorf("audit: store verifier key: %w", err)
		}
	} else if string(stored) != l.vkey {
		return fmt.Errorf("%w: ledger is signed by %s", ErrKeyMismatch, stored)
	}

	tx := &Tx{btx: btx, b: b, start: size, size: size}
	err = func() error {
		defer func() { tx.closed = true }()
		return fn(tx)
	}()
	if err != nil {
		return err
	}
	if tx.err != nil {
		return fmt.Errorf("audit: transaction aborted: %w", tx.err)
	}
	if tx.size == tx.start {
		return nil
	}
	th, err := tlog.TreeHash(tx.size, bucketHashReader{b.hashes})
	if err != nil {
		return fmt.Errorf("audit: tree hash: %w", err)
	}
	cp, err := signCheckpoint(l.signer, tlog.Tree{N: tx.size, Hash: th})
	if err != nil {
		return err
	}
	if err := b.meta.Put(keyCheckpoint, cp); err != nil {
		return fmt.Errorf("audit: store checkpoint: %w", err)
	}
	if err := b.meta.Put(keySize, u64(tx.size)); err != nil {
		return fmt.Errorf("audit: store size: %w", err)
	}
	return l.guard.commit()
}

// Size returns the number of events.
func (l *Ledger) Size() (int64, error) {
	var n int64
	err := l.view(func(b buckets) (err error) {
		n, err = readSize(b.meta)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("audit: size: %w", err)
	}
	return n, nil
}

func getDataset(b buckets, id string) (Dataset, bool, error) {
	v := b.datasets.Get([]byte(id))
	if v == nil {
		return Dataset{}, false, nil
	}
	var d Dataset
	if err := json.Unmarshal(v, &d); err != nil {
		return Dataset{}, false, fmt.Errorf("%w: dataset %q: %v", ErrCorrupt, id, err)
	}
	return d, true, nil
}

func getOnce(b buckets, key string) (int64, bool) {
	if b.once == nil {
		return 0, false
	}
	v := b.once.Get([]byte(key))
	if v == nil {
		return 0, false
	}
	return parseIndex(v)
}

// Once returns the index of the event that recorded once key, if any.
func (l *Ledger) Once(key string) (int64, bool, error) {
	var (
		i  int64
		ok bool
	)
	err := l.view(func(b buckets) error {
		i, ok = getOnce(b, key)
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("audit: once: %w", err)
	}
	return i, ok, nil
}

func getRemote(b buckets, source, remotePath string) (string, bool) {
	v := b.remote.Get(remoteKey(source, remotePath))
	if v == nil {
		return "", false
	}
	return string(v), true
}

// Dataset returns the current state of dataset id.
func (l *Ledger) Dataset(id string) (Dataset, bool, error) {
	var (
		d  Dataset
		ok bool
	)
	err := l.view(func(b buckets) (err error) {
		d, ok, err = getDataset(b, id)
		return err
	})
	if err != nil {
		return Dataset{}, false, fmt.Errorf("audit: dataset: %w", err)
	}
	return d, ok, nil
}

// Datasets returns the current state of all datasets, ordered by
// ReceivedAt, then ID.
func (l *Ledger) Datasets() ([]Dataset, error) {
	var out []Dataset
	err := l.view(func(b buckets) error {
		return b.datasets.ForEach(func(k, v []byte) error {
			var d Dataset
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("%w: dataset %q: %v", ErrCorrupt, k, err)
			}
			out = append(out, d)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("audit: datasets: %w", err)
	}
	slices.SortFunc(out, func(a, b Dataset) int {
		return cmp.Or(a.ReceivedAt.Compare(b.ReceivedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// RemoteDataset returns the ID of the dataset recorded for a remote file,
// if any.
func (l *Ledger) RemoteDataset(source, remotePath string) (string, bool, error) {
	var (
		id string
		ok bool
	)
	err := l.view(func(b buckets) error {
		id, ok = getRemote(b, source, remotePath)
		return nil
	})
	if err != nil {
		return "", false, fmt.Errorf("audit: remote dataset: %w", err)
	}
	return id, ok, nil
}

func decodeEvent(k, v []byte) (Event, error) {
	idx, ok := parseIndex(k)
	if !ok {
		return Event{}, fmt.Errorf("%w: malformed event key %x", ErrCorrupt, k)
	}
	var ev Event
	if err := json.Unmarshal(v, &ev); err != nil {
		return Event{}, fmt.Errorf("%w: event %d: %v", ErrCorrupt, idx, err)
	}
	if ev.Index != idx {
		return Event{}, fmt.Errorf("%w: event %d has index %d", ErrCorrupt, idx, ev.Index)
	}
	return ev, nil
}

// Events returns up to limit events starting at index from. A limit of
// zero or less means no limit.
func (l *Ledger) Events(from int64, limit int) ([]Event, error) {
	if from < 0 {
		return nil, fmt.Errorf("audit: events: %w: from %d", ErrInvalidArgument, from)
	}
	var out []Event
	err := l.view(func(b buckets) error {
		c := b.events.Cursor()
		for k, v := c.Seek(u64(from)); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			ev, err := decodeEvent(k, v)
			if err != nil {
				return err
			}
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: events: %w", err)
	}
	return out, nil
}

// Timeline returns the events that name datasetID, in order.
func (l *Ledger) Timeline(datasetID string) ([]Event, error) {
	if datasetID == "" {
		return nil, fmt.Errorf("audit: timeline: %w: empty dataset ID", ErrInvalidArgument)
	}
	if err := validateID("dataset ID", datasetID); err != nil {
		return nil, fmt.Errorf("audit: timeline: %w: %v", ErrInvalidArgument, err)
	}
	prefix := append([]byte(datasetID), 0)
	var out []Event
	err := l.view(func(b buckets) error {
		c := b.timeline.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			ik := k[len(prefix):]
			if _, ok := parseIndex(ik); !ok {
				return fmt.Errorf("%w: malformed timeline key %x", ErrCorrupt, k)
			}
			v := b.events.Get(ik)
			if v == nil {
				return fmt.Errorf("%w: timeline names missing event %x", ErrCorrupt, ik)
			}
			ev, err := decodeEvent(ik, v)
			if err != nil {
				return err
			}
			if ev.DatasetID != datasetID {
				return fmt.Errorf("%w: timeline of %q names event %d of dataset %q", ErrCorrupt, datasetID, ev.Index, ev.DatasetID)
			}
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: timeline: %w", err)
	}
	return out, nil
}

// Checkpoint returns the latest signed checkpoint: a note, signed by the
// ledger key, whose text is tlog.FormatTree of the current tree.
func (l *Ledger) Checkpoint() ([]byte, error) {
	var cp []byte
	err := l.view(func(b buckets) error {
		cp = bytes.Clone(b.meta.Get(keyCheckpoint))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint: %w", err)
	}
	if cp == nil {
		return nil, ErrEmpty
	}
	return cp, nil
}

// VerifierKey returns the note verifier key recorded in the ledger at its
// first update.
func (l *Ledger) VerifierKey() (string, error) {
	var vkey []byte
	err := l.view(func(b buckets) error {
		vkey = bytes.Clone(b.meta.Get(keyVerifierKey))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("audit: verifier key: %w", err)
	}
	if vkey == nil {
		return "", ErrNoVerifierKey
	}
	return string(vkey), nil
}

// Export writes a consistent copy of the whole ledger file to w, for
// example for an offline audit, and returns the number of bytes written.
// The copy is itself a ledger that Open (read-only) and Verify accept.
func (l *Ledger) Export(w io.Writer) (int64, error) {
	var n int64
	err := l.db.View(func(btx *bolt.Tx) (err error) {
		n, err = btx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("audit: export: %w", err)
	}
	return n, nil
}

// ProveConsistency returns a proof that the current tree contains the
// tree of size oldSize (1 <= oldSize <= Size()) as a prefix, and the
// current tree hash. Check it
// with tlog.CheckTree(proof, Size(), hash, oldSize, oldHash); the size is
// that of the latest checkpoint if no update ran in between.
func (l *Ledger) ProveConsistency(oldSize int64) (tlog.TreeProof, tlog.Hash, error) {
	var (
		proof tlog.TreeProof
		th    tlog.Hash
	)
	err := l.view(func(b buckets) error {
		n, err := readSize(b.meta)
		if err != nil {
			return err
		}
		if oldSize < 1 || oldSize > n {
			return fmt.Errorf("%w: size %d outside [1, %d]", ErrInvalidArgument, oldSize, n)
		}
		r := bucketHashReader{b.hashes}
		if proof, err = tlog.ProveTree(n, oldSize, r); err != nil {
			return err
		}
		th, err = tlog.TreeHash(n, r)
		return err
	})
	if err != nil {
		return nil, tlog.Hash{}, fmt.Errorf("audit: prove consistency: %w", err)
	}
	return proof, th, nil
}

// ProveEvent returns a proof that event index is in the current tree,
// and that tree. Check it with tlog.CheckRecord(proof, tree.N, tree.Hash,
// index, tlog.RecordHash(leaf)), where leaf is the event's canonical
// encoding (json.Marshal of the Event).
func (l *Ledger) ProveEvent(index int64) (tlog.RecordProof, tlog.Tree, error) {
	var (
		proof tlog.RecordProof
		tree  tlog.Tree
	)
	err := l.view(func(b buckets) error {
		n, err := readSize(b.meta)
		if err != nil {
			return err
		}
		if index < 0 || index >= n {
			return fmt.Errorf("%w: index %d outside [0, %d)", ErrInvalidArgument, index, n)
		}
		r := bucketHashReader{b.hashes}
		if proof, err = tlog.ProveRecord(n, index, r); err != nil {
			return err
		}
		tree.N = n
		tree.Hash, err = tlog.TreeHash(n, r)
		return err
	})
	if err != nil {
		return nil, tlog.Tree{}, fmt.Errorf("audit: prove event: %w", err)
	}
	return proof, tree, nil
}

// ScanEvents reads the events from index from on, in order, in one read
// transaction, looking at no more than max of them. keep sees each
// event's stored bytes (its leaf) first: only those it keeps are decoded
// and passed to visit, which returns false to stop. It returns the index
// after the last event looked at and how many were looked at. A keep that
// rejects on the leaf's bytes alone lets a search pass over many events
// without decoding them.
func (l *Ledger) ScanEvents(from, max int64, keep func(leaf []byte) bool, visit func(Event) bool) (next, scanned int64, err error) {
	if from < 0 || max < 0 {
		return 0, 0, fmt.Errorf("audit: scan events: %w: from %d, max %d", ErrInvalidArgument, from, max)
	}
	next = from
	err = l.view(func(b buckets) error {
		c := b.events.Cursor()
		for k, v := c.Seek(u64(from)); k != nil && scanned < max; k, v = c.Next() {
			i, ok := parseIndex(k)
			if !ok {
				return fmt.Errorf("%w: malformed event key %x", ErrCorrupt, k)
			}
			scanned++
			next = i + 1
			if keep != nil && !keep(v) {
				continue
			}
			ev, err := decodeEvent(k, v)
			if err != nil {
				return err
			}
			if !visit(ev) {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("audit: scan events: %w", err)
	}
	return next, scanned, nil
}
