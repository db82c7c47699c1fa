package audit

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrUntrustedCheckpoint is returned by [VerifyIncremental] when the
// checkpoint it should start from is malformed or not signed by the trusted
// key. Nothing can be built on it: verify the whole ledger instead.
var ErrUntrustedCheckpoint = errors.New("audit: checkpoint to start from is not signed by the trusted key")

// IncrementalOptions configure [VerifyIncremental].
type IncrementalOptions struct {
	// VerifierKey is the trusted note verifier key. Required: an
	// incremental check builds on an earlier verdict, which holds only
	// under a key the caller trusts (not one read from the file).
	VerifierKey string

	// Verified is a checkpoint signed with VerifierKey whose tree an
	// earlier verification, full or incremental, found sound.
	Verified []byte

	// VerifiedTree may replace Verified: a tree the caller verified in
	// this process, for example the one [Verify] just reported OK.
	VerifiedTree *tlog.Tree
}

// IncrementalReport is the result of [VerifyIncremental]. Its Report lists
// the problems found, with the same kinds as [Verify].
type IncrementalReport struct {
	Report
	From            int64 // size of the verified tree the check started from
	NewEvents       int64 // events from From on, each checked as Verify does
	DatasetsChecked int   // dataset records checked against their last state event
	RemoteChecked   int   // remote index entries checked
	Proofs          int   // inclusion proofs checked
	// Checkpoint is the ledger's signed checkpoint the check ended at.
	// When OK is true it may serve as the Verified of the next check.
	Checkpoint []byte `json:"checkpoint,omitempty"`
}

// String summarises the report; a failed check lists its problems as
// [Report.String] does.
func (r *IncrementalReport) String() string {
	if !r.OK {
		return fmt.Sprintf("incremental check from the verified checkpoint of size %d:\n%s", r.From, r.Report.String())
	}
	return fmt.Sprintf("ledger OK (incremental): events %d..%d checked one by one, signed checkpoint of size %d "+
		"consistent with the verified one of size %d; %d dataset records and %d remote index entries match "+
		"signed events (%d inclusion proofs); tree hash %s\n",
		r.From, r.Events-1, r.CheckpointSize, r.From, r.DatasetsChecked, r.RemoteChecked, r.Proofs, r.TreeHash)
}

// VerifyIncremental checks, in one read transaction, what a daemon needs
// before it serves the ledger, at a cost that grows with the events added
// since the last verification and with the number of datasets, not with the
// whole log:
//
//   - the ledger's signed checkpoint verifies with the trusted key and is an
//     extension of the verified tree (an RFC 6962 consistency proof), and the
//     stored hashes still give the verified tree's hash;
//   - every event from the verified size on is checked as [Verify] checks it
//     (decoding, canonical encoding, index, rules), its stored hashes are
//     recomputed and the recomputed tree must be the signed one; its
//     timeline and remote index entries must exist;
//   - every dataset record, which is what the daemon serves, must be
//     byte-identical to the dataset state in its last state-change event,
//     and that event (and every event read to find it) must be in the signed
//     tree (an inclusion proof, O(log n) stored hashes);
//   - every dataset named by state-change events in the timeline index has a
//     record; every remote index entry names a dataset recorded for that very
//     remote file, and every dataset with a remote file has such an entry.
//
// The last state-change event of a dataset untouched since the verified
// checkpoint is found through the timeline index. A record set back to an
// earlier recorded state, together with the removal of the later events'
// timeline entries, is therefore caught only by the full [Verify], as is
// damage to older events no record depends on: run Verify on a schedule.
//
// Like [Verify], it returns an error only if it could not run (bad options,
// an untrusted starting checkpoint: [ErrUntrustedCheckpoint], I/O).
func VerifyIncremental(l *Ledger, opts IncrementalOptions) (*IncrementalReport, error) {
	if l == nil {
		return nil, fmt.Errorf("audit: verify incremental: %w: nil ledger", ErrInvalidArgument)
	}
	if opts.VerifierKey == "" {
		return nil, fmt.Errorf("audit: verify incremental: %w: a trusted verifier key is required", ErrInvalidArgument)
	}
	if (opts.Verified == nil) == (opts.VerifiedTree == nil) {
		return nil, fmt.Errorf("audit: verify incremental: %w: give exactly one of Verified and VerifiedTree", ErrInvalidArgument)
	}
	tv, err := note.NewVerifier(opts.VerifierKey)
	if err != nil {
		return nil, fmt.Errorf("audit: verify incremental: verifier key: %w", err)
	}
	var from tlog.Tree
	if opts.VerifiedTree != nil {
		from = *opts.VerifiedTree
		if from.N < 0 {
			return nil, fmt.Errorf("audit: verify incremental: %w: tree size %d", ErrInvalidArgument, from.N)
		}
	} else if from, err = openCheckpoint(opts.Verified, tv); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUntrustedCheckpoint, err)
	}
	v := &incVerifier{
		rep:     &IncrementalReport{From: from.N},
		trusted: tv,
		vkey:    opts.VerifierKey,
		from:    from,
		newLast: make(map[string]*newState),
	}
	v.rep.VerifierKey, v.rep.VerifierKeySource = opts.VerifierKey, "options"
	v.ps.perKind = make(map[string]int)
	if err := l.db.View(v.run); err != nil {
		return nil, fmt.Errorf("audit: verify incremental: %w", err)
	}
	v.ps.finish(&v.rep.Report)
	return v.rep, nil
}

// newState is the last state of a dataset among the new events.
type newState struct {
	index      int64
	snap       []byte // canonical dataset encoding; aliases the transaction's memory
	source     string
	remotePath string
}

type incVerifier struct {
	b        buckets
	ps       problemSet
	rep      *IncrementalReport
	trusted  note.Verifier
	vkey     string
	from     tlog.Tree
	tree     tlog.Tree // the ledger's signed checkpoint
	hashes   *overlayHashes
	proofs   tlog.HashReader // what inclusion proofs read: the overlay once it is complete
	newLast  map[string]*newState
	targets  []leafTarget      // events read through the timeline, to prove
	walked   []int64           // their indexes, in the order read
	remoteOf map[string]string // checked dataset ID -> its remote index key
	buf      []byte
	evCur    *bolt.Cursor // reused: a Get makes a cursor each time
}

// overlayHashes reads stored hashes recomputed from the new events from
// memory and older ones from the hashes bucket.
type overlayHashes struct {
	base int64 // first stored-hash index held in mem
	mem  []tlog.Hash
	old  tlog.HashReader
}

// cursorHashReader reads stored hashes through one reused cursor.
type cursorHashReader struct {
	c   *bolt.Cursor
	key [8]byte
}

func (r *cursorHashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		binary.BigEndian.PutUint64(r.key[:], uint64(x))
		k, v := r.c.Seek(r.key[:])
		if !bytes.Equal(k, r.key[:]) || len(v) != tlog.HashSize {
			return nil, fmt.Errorf("%w: stored hash %d missing or malformed", ErrCorrupt, x)
		}
		copy(out[i][:], v)
	}
	return out, nil
}

func (r *overlayHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x >= r.base {
			j := x - r.base
			if j >= int64(len(r.mem)) {
				return nil, fmt.Errorf("hash %d not computed (have %d)", x, r.base+int64(len(r.mem)))
			}
			out[i] = r.mem[j]
			continue
		}
		h, err := r.old.ReadHashes(indexes[i : i+1])
		if err != nil {
			return nil, err
		}
		out[i] = h[0]
	}
	return out, nil
}

func (v *incVerifier) run(btx *bolt.Tx) error {
	v.b = lookupBuckets(btx)
	missing := false
	for _, name := range allBuckets {
		if btx.Bucket(name) == nil {
			v.ps.add(-1, ProblemStructure, "bucket %q missing", name)
			missing = true
		}
	}
	if missing {
		return nil
	}
	v.remoteOf = make(map[string]string)
	v.evCur = v.b.events.Cursor()
	v.hashes = &overlayHashes{base: tlog.StoredHashIndex(0, v.from.N), old: &cursorHashReader{c: v.b.hashes.Cursor()}}
	v.proofs = v.hashes.old
	if !v.checkLog() {
		return nil // no trustworthy tree to check the records against
	}
	v.scanNew()
	v.checkDatasets()
	v.checkSequence()
	v.checkDatasetTime()
	v.checkHidden()
	v.checkRemote()
	v.rep.Datasets = v.rep.DatasetsChecked
	return nil
}

// checkLog checks the meta records, the signed checkpoint and its
// consistency with the verified tree. It reports whether the signed tree
// can anchor the remaining checks.
func (v *incVerifier) checkLog() bool {
	meta := v.b.meta
	if f := meta.Get(keyFormat); string(f) != FormatVersion {
		v.ps.add(-1, ProblemMeta, "format %q, want %q", f, FormatVersion)
	}
	if stored := meta.Get(keyVerifierKey); stored != nil && string(stored) != v.vkey {
		v.ps.add(-1, ProblemMeta, "ledger records verifier key %q, not the trusted key", stored)
	}
	size, err := readSize(meta)
	if err != nil {
		v.ps.add(-1, ProblemMeta, "%v", err)
		return false
	}
	v.rep.Events = size
	last := int64(-1)
	if k, _ := v.b.events.Cursor().Last(); k != nil {
		var ok bool
		if last, ok = parseIndex(k); !ok {
			v.ps.add(-1, ProblemStructure, "malformed event key %x", k)
			return false
		}
	}
	if last+1 != size {
		v.ps.add(-1, ProblemMeta, "meta size is %d, but the last event is %d", size, last)
	}
	cp := meta.Get(keyCheckpoint)
	if cp == nil {
		if size > 0 {
			v.ps.add(0, ProblemUnsignedTail, "no signed checkpoint covers the %d events", size)
			return false
		}
	} else {
		tree, err := openCheckpoint(cp, v.trusted)
		if err != nil {
			v.ps.add(-1, ProblemCheckpoint, "stored checkpoint: %v", err)
			return false
		}
		v.tree = tree
		v.rep.CheckpointSize = tree.N
		v.rep.Checkpoint = bytes.Clone(cp)
	}
	switch {
	case v.tree.N < size:
		v.ps.add(v.tree.N, ProblemUnsignedTail, "events %d..%d are not covered by the stored checkpoint (size %d)",
			v.tree.N, size-1, v.tree.N)
	case v.tree.N > size:
		v.ps.add(size, ProblemTruncated, "log has %d events but the stored checkpoint covers %d: events %d..%d were removed",
			size, v.tree.N, size, v.tree.N-1)
	}
	if v.from.N > v.tree.N {
		v.ps.add(v.tree.N, ProblemTruncated, "the signed checkpoint covers %d events, but %d were verified before: events %d..%d were removed (a rollback)",
			v.tree.N, v.from.N, v.tree.N, v.from.N-1)
		return false
	}
	if v.from.N == 0 {
		return true
	}
	// The signed tree must extend the verified one, and the stored hashes
	// the new ones build on must still give the verified tree. When either
	// fails, every proof through a changed hash fails too: nothing more can
	// be said cheaply, and the full verification locates the damage.
	proof, err := tlog.ProveTree(v.tree.N, v.from.N, v.hashes.old)
	if err == nil {
		err = tlog.CheckTree(proof, v.tree.N, v.tree.Hash, v.from.N, v.from.Hash)
	}
	if err != nil {
		v.ps.add(-1, ProblemCheckpoint, "the signed checkpoint (size %d) cannot be proven an extension of the verified tree "+
			"(size %d, hash %s) from the stored hashes: %v; either the history differs or stored hashes were changed; "+
			"the full verification names the first entry that does not match", v.tree.N, v.from.N, v.from.Hash, err)
		return false
	}
	if h, err := tlog.TreeHash(v.from.N, v.hashes.old); err != nil || h != v.from.Hash {
		if err == nil {
			err = fmt.Errorf("they give %s", h)
		}
		v.ps.add(-1, ProblemHash, "stored hashes no longer give the verified tree (size %d, hash %s): %v; "+
			"the full verification names the first entry that does not match", v.from.N, v.from.Hash, err)
		return false
	}
	return true
}

// scanNew checks the events from the verified size on, recomputes their
// stored hashes and the signed tree, and notes the datasets they change.
func (v *incVerifier) scanNew() {
	w := &leafWorker{canon: newCanonChecker()}
	var r leafResult
	next := v.from.N
	gap := false
	c := v.b.events.Cursor()
	for k, val := c.Seek(u64(v.from.N)); k != nil; k, val = c.Next() {
		w.check(next, k, val, &r)
		idx := r.key
		switch {
		case !r.keyOK:
			v.ps.add(next, ProblemStructure, "malformed event key %x", k)
			idx = next
		case idx != next:
			v.ps.add(next, ProblemMissing, "event %d is missing (next key is %d); stored hashes from here on were not compared", next, idx)
			gap = true
		}
		v.ps.addAll(r.problems)
		v.rep.NewEvents++
		if !gap {
			v.recompute(idx, r.hash)
		}
		if r.datasetID != "" && v.b.timeline.Get(timelineKey(r.datasetID, idx)) == nil {
			v.ps.add(idx, ProblemTimeline, "timeline entry for dataset %q is missing", r.datasetID)
		}
		if r.hasDataset {
			v.newLast[r.datasetID] = &newState{index: idx, snap: r.snap, source: r.source, remotePath: r.remotePath}
		}
		next = max(next, idx) + 1
	}
	if gap || next < v.tree.N {
		return // reported: the tree cannot be recomputed
	}
	th, err := tlog.TreeHash(v.tree.N, v.hashes)
	if err != nil {
		v.ps.add(-1, ProblemHash, "recomputing the tree of size %d: %v", v.tree.N, err)
		return
	}
	v.rep.TreeHash = th.String()
	if v.tree.N > 0 && th != v.tree.Hash {
		v.ps.add(-1, ProblemCheckpoint, "stored checkpoint (size %d) signs tree hash %s, recomputed %s", v.tree.N, v.tree.Hash, th)
	} else {
		v.proofs = v.hashes
	}
	// Stored hashes beyond the last event.
	if k, _ := v.b.hashes.Cursor().Last(); k != nil {
		if s, ok := parseIndex(k); !ok || s >= v.hashes.base+int64(len(v.hashes.mem)) {
			v.ps.add(-1, ProblemHash, "stored hash %x has no event", k)
		}
	}
}

// recompute appends event idx's stored hashes to the overlay and compares
// them with the hashes bucket.
func (v *incVerifier) recompute(idx int64, leaf tlog.Hash) {
	hs, err := tlog.StoredHashesForRecordHash(idx, leaf, v.hashes)
	if err != nil {
		v.ps.add(idx, ProblemHash, "recomputing the stored hashes: %v", err)
		return
	}
	base := v.hashes.base + int64(len(v.hashes.mem))
	v.hashes.mem = append(v.hashes.mem, hs...)
	for j := range hs {
		s := base + int64(j)
		stored := v.b.hashes.Get(u64(s))
		level, k := tlog.SplitStoredHashIndex(s)
		switch {
		case stored == nil:
			v.ps.add(idx, ProblemHash, "stored hash %d (level %d, events %d..%d) is missing", s, level, k<<uint(level), (k+1)<<uint(level)-1)
		case !bytes.Equal(stored, hs[j][:]) && level == 0:
			v.ps.add(idx, ProblemHash, "event bytes differ from those hashed when it was appended")
			return
		case !bytes.Equal(stored, hs[j][:]):
			v.ps.add(idx, ProblemHash, "stored tree hash %d (level %d, events %d..%d) differs from the recomputed one",
				s, level, k<<uint(level), (k+1)<<uint(level)-1)
		}
	}
}

// datasetMarker starts the dataset field of a canonical event. No other
// part of a canonical event can contain it: Dataset is the last field,
// details and integrity values are strings, and a string cannot hold an
// unescaped quote.
var datasetMarker = []byte(`,"dataset":{`)

// datasetHead is the part of a dataset the record checks need.
type datasetHead struct {
	ID         string `json:"id"`
	Source     string `json:"source"`
	RemotePath string `json:"remote_path"`
}

// leafTarget is an event whose presence in the signed tree is to be proven.
type leafTarget struct {
	index int64
	hash  tlog.Hash
}

// recordCheck is what the timeline says about one dataset record.
type recordCheck struct {
	id       string
	from, to int // the events read to find its last state: walked[from:to]
}

// stateEvent reads event idx, named by dataset id's timeline, adds it to
// the events to prove and, if it records a state, returns that state's
// canonical encoding. Each event read is proven to be in the signed tree,
// so it is taken as Append wrote it: canonical, with its index and dataset
// ID checked. That allows checking it without decoding it.
func (v *incVerifier) stateEvent(idx int64, id string) (snap []byte, isState, ok bool) {
	k, val := v.evCur.Seek(u64(idx))
	if k == nil || !bytes.Equal(k, u64(idx)) {
		v.ps.add(idx, ProblemTimeline, "timeline entry for dataset %q names event %d, which is missing", id, idx)
		return nil, false, false
	}
	if idx >= v.tree.N {
		v.ps.add(idx, ProblemUnsignedTail, "event %d is not covered by the signed checkpoint (size %d)", idx, v.tree.N)
		return nil, false, false
	}
	v.targets = append(v.targets, leafTarget{idx, tlog.RecordHash(val)})
	// {"index":N,"time":...,"dataset_id":"ID"[,"details":{...}][,"dataset":{"id":"ID",...}]}
	v.buf = strconv.AppendInt(append(v.buf[:0], `{"index":`...), idx, 10)
	if !bytes.HasPrefix(val, append(v.buf, ',')) {
		v.ps.add(idx, ProblemIndex, "event stored under index %d does not say so", idx)
		return nil, false, false
	}
	v.buf = appendJSONString(append(v.buf[:0], `,"dataset_id":`...), id)
	at := bytes.Index(val, v.buf)
	if end := at + len(v.buf); at < 0 || end >= len(val) || (val[end] != ',' && val[end] != '}') {
		v.ps.add(idx, ProblemTimeline, "timeline entry for dataset %q names event %d, which does not name that dataset", id, idx)
		return nil, false, false
	}
	at = bytes.Index(val, datasetMarker)
	if at < 0 {
		return nil, false, true
	}
	snap = val[at+len(datasetMarker)-1 : len(val)-1]
	v.buf = appendJSONString(append(v.buf[:0], `{"id":`...), id)
	if !bytes.HasPrefix(snap, append(v.buf, ',')) || val[len(val)-1] != '}' {
		v.ps.add(idx, ProblemTimeline, "timeline entry for dataset %q names event %d, whose dataset is another", id, idx)
		return nil, false, false
	}
	return snap, true, true
}

// readDatasetHead reads the ID and remote file of a canonical dataset
// encoding. They come first, so it decodes only the encoding up to
// remote_size when it can: any top-level key the prefix holds is a
// top-level key of the whole, with the same value.
func (v *incVerifier) readDatasetHead(rec []byte) (datasetHead, error) {
	var p struct {
		ID         *string `json:"id"`
		Source     *string `json:"source"`
		RemotePath *string `json:"remote_path"`
	}
	if i := bytes.Index(rec, []byte(`,"remote_size":`)); i > 0 {
		v.buf = append(append(v.buf[:0], rec[:i]...), '}')
		if json.Unmarshal(v.buf, &p) == nil && p.ID != nil && p.Source != nil && p.RemotePath != nil {
			return datasetHead{ID: *p.ID, Source: *p.Source, RemotePath: *p.RemotePath}, nil
		}
	}
	var d datasetHead
	err := json.Unmarshal(rec, &d)
	return d, err
}

// appendJSONString appends s as encoding/json encodes it.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return append(buf, b...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

// lastState finds dataset id's last state-change event through the
// timeline index. found=false with ok=true means the timeline names no
// state-change event for it.
func (v *incVerifier) lastState(rc *recordCheck) (idx int64, snap []byte, found, ok bool) {
	prefix := append([]byte(rc.id), 0)
	c := v.b.timeline.Cursor()
	k, _ := c.Seek(append([]byte(rc.id), 1))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
		i, good := parseIndex(k[len(prefix):])
		if !good {
			v.ps.add(-1, ProblemTimeline, "malformed timeline key %q", k)
			return -1, nil, false, false
		}
		v.walked = append(v.walked, i)
		rc.to = len(v.walked)
		snap, isState, good := v.stateEvent(i, rc.id)
		if !good {
			return i, nil, false, false
		}
		if isState {
			return i, snap, true, true
		}
	}
	return -1, nil, false, true
}

// checkSequence compares the sequence index with the dataset records,
// which checkDatasets has just proven equal to their last states.
func (v *incVerifier) checkSequence() {
	want := sequenceWant{}
	c := v.b.datasets.Cursor()
	for k, rec := c.First(); k != nil; k, rec = c.Next() {
		if !bytes.Contains(rec, []byte(`"`+IntegritySequence+`":`)) {
			continue
		}
		var d Dataset
		if json.Unmarshal(rec, &d) == nil {
			want.add(&d)
		}
	}
	want.compare(v.b.sequence, func(kind, format string, args ...any) { v.ps.add(-1, kind, format, args...) })
}

// checkDatasetTime compares the dataset time index with the dataset
// records, which checkDatasets has just proven equal to their last states.
func (v *incVerifier) checkDatasetTime() {
	want := datasetTimeWant{}
	c := v.b.datasets.Cursor()
	for k, rec := c.First(); k != nil; k, rec = c.Next() {
		want.add(rec)
	}
	want.compare(v.b.datasetTime, func(kind, format string, args ...any) { v.ps.add(-1, kind, format, args...) })
}

// checkDatasets checks every dataset record against its last state: from
// the new events when they changed it, else from the event the timeline
// names, which is then proven to be in the signed tree.
func (v *incVerifier) checkDatasets() {
	seen := make(map[string]bool, len(v.newLast))
	var checks []recordCheck
	c := v.b.datasets.Cursor()
	for k, rec := c.First(); k != nil; k, rec = c.Next() {
		id := string(k)
		v.rep.DatasetsChecked++
		var (
			idx  int64
			snap []byte
			d    datasetHead
		)
		if n := v.newLast[id]; n != nil {
			seen[id] = true
			idx, snap, d = n.index, n.snap, datasetHead{ID: id, Source: n.source, RemotePath: n.remotePath}
		} else {
			rc := recordCheck{id: id, from: len(v.walked), to: len(v.walked)}
			i, sn, found, ok := v.lastState(&rc)
			checks = append(checks, rc)
			if !ok {
				v.ps.add(i, ProblemDataset, "dataset record %q cannot be checked: its timeline leads to a damaged event", id)
				continue
			}
			if !found {
				v.ps.add(-1, ProblemDataset, "dataset record %q has no state-change event", id)
				continue
			}
			idx, snap = i, sn
		}
		if !bytes.Equal(rec, snap) {
			v.ps.add(idx, ProblemDataset, "dataset record %q differs from its last state (event %d)", id, idx)
			continue
		}
		if d.ID == "" { // the remote file of a record equal to a proven state
			var err error
			if d, err = v.readDatasetHead(rec); err != nil {
				v.ps.add(idx, ProblemDecode, "dataset record %q: %v", id, err)
				continue
			}
		}
		if d.RemotePath != "" {
			key := remoteKey(d.Source, d.RemotePath)
			v.remoteOf[id] = string(key)
			if v.b.remote.Get(key) == nil {
				v.ps.add(idx, ProblemRemote, "remote index entry for dataset %q (%s %s) is missing", id, d.Source, d.RemotePath)
			}
		}
	}
	for id, n := range v.newLast {
		if !seen[id] {
			v.ps.add(n.index, ProblemDataset, "dataset %q (last state in event %d) is missing from the datasets bucket", id, n.index)
		}
	}
	bad := v.proveTargets()
	if len(bad) == 0 {
		return
	}
	for _, rc := range checks {
		for _, i := range v.walked[rc.from:rc.to] {
			if bad[i] {
				v.ps.add(i, ProblemDataset, "dataset record %q cannot be trusted: its timeline leads to event %d, which is not in the signed tree", rc.id, i)
				break
			}
		}
	}
}

// proveTargets proves that every event read is in the signed tree, all at
// once: the tree hash is recomputed from their leaf hashes and the stored
// hashes of the subtrees between them, which costs far less than one
// inclusion proof each. If the result differs from the signed hash, each
// event is proven on its own to name the ones that are not in the tree.
func (v *incVerifier) proveTargets() (bad map[int64]bool) {
	ts := v.targets
	if len(ts) == 0 {
		return nil
	}
	slices.SortFunc(ts, func(a, b leafTarget) int { return cmp.Compare(a.index, b.index) })
	ts = slices.CompactFunc(ts, func(a, b leafTarget) bool { return a.index == b.index && a.hash == b.hash })
	v.rep.Proofs = len(ts)
	root, err := v.subtreeHash(0, v.tree.N, ts)
	if err == nil && root == v.tree.Hash {
		return nil
	}
	bad = make(map[int64]bool)
	for _, t := range ts {
		proof, err := tlog.ProveRecord(v.tree.N, t.index, v.proofs)
		if err == nil {
			err = tlog.CheckRecord(proof, v.tree.N, v.tree.Hash, t.index, t.hash)
		}
		if err != nil {
			bad[t.index] = true
			v.ps.add(t.index, ProblemHash, "event %d is not the one the signed tree (size %d) contains: %v", t.index, v.tree.N, err)
		}
	}
	if len(bad) == 0 {
		v.ps.add(-1, ProblemHash, "the events read do not give the signed tree hash (%v), although each one's inclusion proof holds", err)
	}
	return bad
}

// subtreeHash returns the hash of the subtree of leaves [lo, hi) in which
// the leaves ts (sorted, all in the range) have the given hashes; the rest
// comes from the stored hashes. The split follows RFC 6962: the left part
// is the largest power of two smaller than the range, so every left part,
// and every range of a power-of-two size met on the way, is a complete
// subtree with a stored hash.
func (v *incVerifier) subtreeHash(lo, hi int64, ts []leafTarget) (tlog.Hash, error) {
	n := hi - lo
	if len(ts) == 0 && n&(n-1) == 0 {
		level := bits.TrailingZeros64(uint64(n))
		h, err := v.proofs.ReadHashes([]int64{tlog.StoredHashIndex(level, lo>>uint(level))})
		if err != nil {
			return tlog.Hash{}, err
		}
		return h[0], nil
	}
	if n == 1 {
		return ts[0].hash, nil
	}
	k := int64(1) << (bits.Len64(uint64(n-1)) - 1) // the largest power of two < n
	split, _ := slices.BinarySearchFunc(ts, lo+k, func(t leafTarget, x int64) int { return cmp.Compare(t.index, x) })
	left, err := v.subtreeHash(lo, lo+k, ts[:split])
	if err != nil {
		return tlog.Hash{}, err
	}
	right, err := v.subtreeHash(lo+k, hi, ts[split:])
	if err != nil {
		return tlog.Hash{}, err
	}
	return tlog.NodeHash(left, right), nil
}

// checkHidden reports datasets the timeline shows with a state but that
// have no record (a record removed from the datasets bucket). It visits
// each dataset ID of the timeline once, seeking past its entries.
func (v *incVerifier) checkHidden() {
	c := v.b.timeline.Cursor()
	for k, _ := c.First(); k != nil; {
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			v.ps.add(-1, ProblemTimeline, "malformed timeline key %q", k)
			k, _ = c.Next()
			continue
		}
		id := string(k[:i])
		if v.b.datasets.Get(k[:i]) == nil {
			rc := recordCheck{id: id}
			if idx, _, found, _ := v.lastState(&rc); found {
				v.ps.add(idx, ProblemDataset, "dataset %q (last state in event %d) is missing from the datasets bucket", id, idx)
			}
		}
		k, _ = c.Seek(append([]byte(id), 1))
	}
}

// checkRemote checks that every remote index entry names a dataset recorded
// for that remote file.
func (v *incVerifier) checkRemote() {
	c := v.b.remote.Cursor()
	for k, id := c.First(); k != nil; k, id = c.Next() {
		v.rep.RemoteChecked++
		if key, ok := v.remoteOf[string(id)]; ok {
			if key != string(k) {
				v.ps.add(-1, ProblemRemote, "remote index entry %q -> %q names a dataset recorded for %s",
					k, id, strings.ReplaceAll(key, "\x00", " "))
			}
			continue
		}
		// Not a checked record with a remote file.
		rec := v.b.datasets.Get(id)
		if rec == nil {
			v.ps.add(-1, ProblemRemote, "remote index entry %q -> %q matches no dataset", k, id)
			continue
		}
		d, err := v.readDatasetHead(rec)
		if err != nil || !bytes.Equal(remoteKey(d.Source, d.RemotePath), k) {
			v.ps.add(-1, ProblemRemote, "remote index entry %q -> %q names a dataset recorded for %s",
				k, id, strings.TrimSpace(d.Source+" "+d.RemotePath))
		}
	}
}
