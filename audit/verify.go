package audit

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// VerifyOptions configure [Verify].
type VerifyOptions struct {
	// VerifierKey is the trusted note verifier key. If empty, the key
	// recorded in the ledger is used, which proves internal consistency
	// only: whoever can rewrite the file can replace that key too.
	VerifierKey string

	// Checkpoint is an optional signed checkpoint kept outside the
	// ledger. Verify proves that the log still contains everything it
	// covered: a shorter log is reported as "truncated", a different
	// history as "checkpoint".
	Checkpoint []byte

	// Progress, if set, is called from the verifying goroutine as events
	// are checked. total is the recorded log size.
	Progress func(done, total int64)
}

// Problem kinds.
const (
	ProblemStructure    = "structure"     // missing bucket, malformed key
	ProblemMeta         = "meta"          // format, size or verifier key record
	ProblemMissing      = "missing"       // gap in event indexes
	ProblemDecode       = "decode"        // event is not valid JSON for Event
	ProblemNonCanonical = "noncanonical"  // event does not re-encode to its bytes
	ProblemIndex        = "index"         // event's index differs from its key
	ProblemInvalid      = "invalid"       // event breaks a ledger rule
	ProblemHash         = "hash"          // stored tree hash differs or is missing
	ProblemCheckpoint   = "checkpoint"    // signature or tree hash mismatch
	ProblemUnsignedTail = "unsigned-tail" // events beyond the signed checkpoint
	ProblemTruncated    = "truncated"     // log shorter than a checkpoint
	ProblemDataset      = "dataset"       // dataset record differs from its events
	ProblemRemote       = "remote"        // remote index differs from events
	ProblemTimeline     = "timeline"      // timeline index differs from events
	ProblemOnce         = "once"          // once index differs from events
	ProblemTransition   = "transition"    // a state change the custody rules forbid
	ProblemSequence     = "sequence"      // sequence index differs from the dataset states
)

// Problem is one discrepancy found by [Verify].
type Problem struct {
	Index  int64  // event index concerned, -1 if not event-specific
	Kind   string // one of the Problem* constants
	Detail string
}

func (p Problem) String() string {
	if p.Index < 0 {
		return fmt.Sprintf("[%s] %s", p.Kind, p.Detail)
	}
	return fmt.Sprintf("event %d [%s] %s", p.Index, p.Kind, p.Detail)
}

// Report is the result of [Verify].
//
// FirstBad is the lowest event index named by a problem with the log
// itself or, if the log is sound, by a problem with the dataset, remote
// or timeline indexes, which a damaged event also disturbs.
type Report struct {
	Events             int64     // events present in the log
	TreeHash           string    // recomputed tree hash (base64), "" if not computable
	CheckpointSize     int64     // tree size of the ledger's signed checkpoint
	KeptCheckpointSize int64     // tree size of VerifyOptions.Checkpoint, if given
	Datasets           int       // datasets in the events
	VerifierKey        string    // verifier key used
	VerifierKeySource  string    // "options" or "ledger"
	OK                 bool      // no problems
	Problems           []Problem // ordered by Index; non-event problems last
	FirstBad           int64     // first entry that does not match, -1 if none (see below)
	Omitted            int64     // problems found but not listed (at most 100 per kind are)
}

// String returns a human-readable summary that names the first entry
// that does not match.
func (r *Report) String() string {
	var b strings.Builder
	if r.OK {
		fmt.Fprintf(&b, "ledger OK: %d events, %d datasets, tree hash %s, signed checkpoint of size %d",
			r.Events, r.Datasets, r.TreeHash, r.CheckpointSize)
		if r.KeptCheckpointSize > 0 {
			fmt.Fprintf(&b, ", consistent with kept checkpoint of size %d", r.KeptCheckpointSize)
		}
		b.WriteString("\n")
	} else {
		fmt.Fprintf(&b, "ledger FAILED verification: %d events, %d problems\n", r.Events, int64(len(r.Problems))+r.Omitted)
		if r.FirstBad >= 0 {
			fmt.Fprintf(&b, "first entry that does not match: event %d\n", r.FirstBad)
		} else if len(r.Problems) > 0 {
			fmt.Fprintf(&b, "first problem: %s\n", r.Problems[0])
		}
		const show = 20
		for i, p := range r.Problems {
			if i == show {
				fmt.Fprintf(&b, "  ... %d more\n", int64(len(r.Problems)-show)+r.Omitted)
				break
			}
			fmt.Fprintf(&b, "  %s\n", p)
		}
		if len(r.Problems) <= show && r.Omitted > 0 {
			fmt.Fprintf(&b, "  ... %d more\n", r.Omitted)
		}
	}
	switch {
	case r.VerifierKey == "":
		b.WriteString("no verifier key: signatures not checked\n")
	case r.VerifierKeySource == "ledger":
		fmt.Fprintf(&b, "verifier key %s (taken from the ledger itself: proves consistency, not authenticity)\n", r.VerifierKey)
	default:
		fmt.Fprintf(&b, "verifier key %s (from %s)\n", r.VerifierKey, r.VerifierKeySource)
	}
	return b.String()
}

const maxProblemsPerKind = 100

// derivedKind reports whether problems of this kind concern the derived
// indexes rather than the log itself. They are often consequences of a
// damaged event, so they name the first bad entry only when the log
// itself is sound.
func derivedKind(kind string) bool {
	return kind == ProblemDataset || kind == ProblemRemote || kind == ProblemTimeline || kind == ProblemOnce || kind == ProblemSequence || kind == ProblemDatasetTime
}

// problemSet collects problems, listing at most maxProblemsPerKind per
// kind but always the lowest-index problem of the log and of the derived
// indexes.
type problemSet struct {
	list    []Problem
	perKind map[string]int
	omitted int64
	first   [2]*Problem // lowest-index problem: [0] log, [1] derived indexes
	listed  [2]bool     // first[i] is in list
}

func (ps *problemSet) add(index int64, kind, format string, args ...any) {
	tier := 0
	if derivedKind(kind) {
		tier = 1
	}
	newFirst := index >= 0 && (ps.first[tier] == nil || index < ps.first[tier].Index)
	keep := ps.perKind[kind] < maxProblemsPerKind
	if !keep && !newFirst {
		ps.omitted++
		return
	}
	p := Problem{Index: index, Kind: kind, Detail: fmt.Sprintf(format, args...)}
	if newFirst {
		if ps.first[tier] != nil && !ps.listed[tier] {
			ps.omitted++ // the previous first is dropped for good
		}
		ps.first[tier], ps.listed[tier] = &p, keep
	}
	if keep {
		ps.perKind[kind]++
		ps.list = append(ps.list, p)
	}
}

func (ps *problemSet) finish(r *Report) {
	list := ps.list
	for i, p := range ps.first {
		if p != nil && !ps.listed[i] {
			list = append(list, *p)
		}
	}
	slices.SortStableFunc(list, func(a, b Problem) int {
		return cmp.Compare(sortIndex(a.Index), sortIndex(b.Index))
	})
	r.Problems = list
	r.Omitted = ps.omitted
	r.FirstBad = -1
	if p := cmp.Or(ps.first[0], ps.first[1]); p != nil {
		r.FirstBad = p.Index
	}
	r.OK = len(list) == 0 && ps.omitted == 0
}

// sortIndex orders non-event problems (index -1) last.
func sortIndex(i int64) int64 {
	if i < 0 {
		return math.MaxInt64
	}
	return i
}

func (ps *problemSet) addAll(list []Problem) {
	for _, p := range list {
		ps.add(p.Index, p.Kind, "%s", p.Detail)
	}
}

// hashStore holds the recomputed stored hashes, indexed like the hashes
// bucket.
type hashStore struct{ h []tlog.Hash }

func (s *hashStore) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(s.h)) {
			return nil, fmt.Errorf("hash %d not computed (have %d)", x, len(s.h))
		}
		out[i] = s.h[x]
	}
	return out, nil
}

// leafResult is what a worker learns from one event.
type leafResult struct {
	key        int64
	keyOK      bool
	hash       tlog.Hash
	datasetID  string
	hasDataset bool
	snap       []byte // canonical dataset encoding
	source     string
	remotePath string
	supersedes string
	onceKey    string
	typ        EventType
	state      State
	problems   []Problem
}

type leafWorker struct {
	canon *canonChecker
	ev    Event
}

func (w *leafWorker) check(pos int64, k, v []byte, r *leafResult) {
	*r = leafResult{}
	r.key, r.keyOK = parseIndex(k)
	idx := r.key
	if !r.keyOK {
		idx = pos
	}
	r.hash = tlog.RecordHash(v)
	// Reuse the details map: json.Unmarshal adds to a non-nil map, and
	// an empty map encodes like a nil one (omitempty).
	details := w.ev.Details
	clear(details)
	w.ev = Event{Details: details}
	ev := &w.ev
	if err := json.Unmarshal(v, ev); err != nil {
		r.problems = append(r.problems, Problem{idx, ProblemDecode, err.Error()})
		return
	}
	ok, ds := w.canon.check(v, ev)
	if !ok {
		r.problems = append(r.problems, Problem{idx, ProblemNonCanonical,
			"stored bytes are not the canonical encoding of the event they decode to"})
	}
	if r.keyOK && ev.Index != r.key {
		r.problems = append(r.problems, Problem{idx, ProblemIndex,
			fmt.Sprintf("event stored under index %d says index %d", r.key, ev.Index)})
	}
	if err := validateEvent(ev); err != nil {
		r.problems = append(r.problems, Problem{idx, ProblemInvalid, err.Error()})
	}
	r.datasetID = ev.DatasetID
	r.onceKey = ev.Details[OnceKey]
	r.typ = ev.Type
	if d := ev.Dataset; d != nil {
		if ds == nil {
			ds, _ = json.Marshal(d)
		}
		r.hasDataset, r.snap = true, ds
		if d.hasRemote() {
			r.source, r.remotePath = d.Source, d.RemotePath
		}
		r.supersedes, r.state = d.Supersedes, d.State
	}
}

// verifyChunk is the number of events checked per parallel batch; a
// variable so tests can exercise batch boundaries.
var verifyChunk = 4096

// chunk is a batch of consecutive events checked in parallel.
type chunk struct {
	base    int64 // position of the first event
	keys    [][]byte
	vals    [][]byte
	res     []leafResult
	workers []*leafWorker
	wg      sync.WaitGroup
}

func (c *chunk) start() {
	n := len(c.keys)
	if cap(c.res) < n {
		c.res = make([]leafResult, n)
	}
	c.res = c.res[:n]
	per := (n + len(c.workers) - 1) / len(c.workers)
	for w, lw := range c.workers {
		lo, hi := w*per, min((w+1)*per, n)
		if lo >= hi {
			break
		}
		c.wg.Go(func() {
			for i := lo; i < hi; i++ {
				lw.check(c.base+int64(i), c.keys[i], c.vals[i], &c.res[i])
			}
		})
	}
}

// dsTrack is what the events say about one dataset.
type dsTrack struct {
	id          string
	events      []int64 // indexes of events naming it
	first, last int64   // first and last state-change event, -1 if none
	snap        []byte  // last state
	source      string  // remote file of the first state
	remotePath  string
	supersedes  string // dataset of the earlier delivery, from the first state
	state       State  // last state
	seen        bool
}

type verifier struct {
	b       buckets
	ps      problemSet
	rep     *Report
	opts    VerifyOptions
	trusted note.Verifier

	n    int64 // events seen
	next int64 // index expected next
	gap  bool  // an index is missing: positions no longer match indexes

	mem         hashStore
	hc          *bolt.Cursor
	hk, hv      []byte
	lastBadLeaf int64

	ds        map[string]*dsTrack
	lastTrack *dsTrack   // cache: consecutive events often name the same dataset
	byFirst   []*dsTrack // datasets in order of their first state
	once      map[string]int64
	sorted    []*dsTrack // datasets by ID, once the scan is done
}

// Verify recomputes the whole ledger from the event bytes, in one
// consistent read transaction, and reports every discrepancy: events that
// do not decode or re-encode to the same bytes, index gaps, stored tree
// hashes that differ from the recomputed ones, a tree that does not match
// the signed checkpoint (or a signature that does not verify), events
// beyond the checkpoint, a log shorter than, or inconsistent with, a kept
// checkpoint, and dataset, remote and timeline indexes that disagree with
// the events.
//
// Verify returns an error only if it could not run (bad options, I/O);
// findings are in the report.
//
// Verification reads a consistent snapshot while writers carry on, but
// its long read transaction keeps bbolt from remapping a growing file, so
// a writer may wait for it. Another process cannot open a ledger that the
// daemon holds; verify an [Ledger.Export] copy instead.
func Verify(l *Ledger, opts VerifyOptions) (*Report, error) {
	if l == nil {
		return nil, fmt.Errorf("audit: verify: %w: nil ledger", ErrInvalidArgument)
	}
	v := &verifier{
		rep:         &Report{},
		opts:        opts,
		lastBadLeaf: -1,
		ds:          make(map[string]*dsTrack),
		once:        make(map[string]int64),
	}
	v.ps.perKind = make(map[string]int)
	if opts.VerifierKey != "" {
		tv, err := note.NewVerifier(opts.VerifierKey)
		if err != nil {
			return nil, fmt.Errorf("audit: verify: verifier key: %w", err)
		}
		v.trusted = tv
		v.rep.VerifierKey, v.rep.VerifierKeySource = opts.VerifierKey, "options"
	}
	if err := l.db.View(v.run); err != nil {
		return nil, fmt.Errorf("audit: verify: %w", err)
	}
	v.ps.finish(v.rep)
	return v.rep, nil
}

func (v *verifier) run(btx *bolt.Tx) error {
	v.b = lookupBuckets(btx)
	for _, name := range allBuckets {
		if btx.Bucket(name) == nil {
			v.ps.add(-1, ProblemStructure, "bucket %q missing", name)
		}
	}
	var metaSize int64
	if v.b.meta != nil {
		v.checkMeta()
		if n, err := readSize(v.b.meta); err != nil {
			v.ps.add(-1, ProblemMeta, "%v", err)
		} else {
			metaSize = n
		}
	}
	if err := v.scan(metaSize); err != nil {
		return err
	}
	logSize := v.next
	v.rep.Events = v.n
	if v.b.meta != nil && metaSize != logSize {
		v.ps.add(-1, ProblemMeta, "meta size is %d, log has %d events", metaSize, logSize)
	}
	var th tlog.Hash
	if !v.gap {
		var err error
		if th, err = tlog.TreeHash(v.n, &v.mem); err != nil {
			return fmt.Errorf("tree hash: %w", err)
		}
		v.rep.TreeHash = th.String()
	}
	if err := v.checkCheckpoints(logSize, th); err != nil {
		return err
	}
	v.sortTracks()
	v.checkDatasets()
	v.checkRemote()
	v.checkTimeline()
	v.checkOnce()
	v.checkSequence()
	v.checkDatasetTime()
	for _, t := range v.ds {
		if t.last >= 0 {
			v.rep.Datasets++
		}
	}
	return nil
}

func (v *verifier) checkMeta() {
	meta := v.b.meta
	if f := meta.Get(keyFormat); string(f) != FormatVersion {
		v.ps.add(-1, ProblemMeta, "format %q, want %q", f, FormatVersion)
	}
	stored := meta.Get(keyVerifierKey)
	switch {
	case v.trusted != nil:
		if stored != nil && string(stored) != v.opts.VerifierKey {
			v.ps.add(-1, ProblemMeta, "ledger records verifier key %q, not the trusted key", stored)
		}
	case stored == nil:
		// Reported in checkCheckpoints if there is anything to verify.
	default:
		tv, err := note.NewVerifier(string(stored))
		if err != nil {
			v.ps.add(-1, ProblemMeta, "recorded verifier key %q: %v", stored, err)
			return
		}
		v.trusted = tv
		v.rep.VerifierKey, v.rep.VerifierKeySource = string(stored), "ledger"
	}
}

// scan checks every event and recomputes the tree. Events are decoded
// and hashed in parallel, a chunk at a time, while this goroutine, the
// only one using the transaction, merges the previous chunk in order.
func (v *verifier) scan(metaSize int64) error {
	if v.b.hashes != nil {
		v.hc = v.b.hashes.Cursor()
		v.hk, v.hv = v.hc.First()
	}
	if v.b.events == nil {
		v.finishHashes()
		return nil
	}
	// Preallocate for the recorded size, within reason: the size may be
	// corrupt.
	v.mem.h = make([]tlog.Hash, 0, tlog.StoredHashCount(min(max(metaSize, 0), 4<<20)))
	procs := runtime.GOMAXPROCS(0)
	var bufs [2]*chunk
	for i := range bufs {
		bufs[i] = &chunk{}
		for range procs {
			bufs[i].workers = append(bufs[i].workers, &leafWorker{canon: newCanonChecker()})
		}
	}
	cur := v.b.events.Cursor()
	k, val := cur.First()
	var pos int64
	fill := func(c *chunk) bool {
		c.base = pos
		c.keys, c.vals = c.keys[:0], c.vals[:0]
		for ; k != nil && len(c.keys) < verifyChunk; k, val = cur.Next() {
			c.keys = append(c.keys, k)
			c.vals = append(c.vals, val)
		}
		pos += int64(len(c.keys))
		return len(c.keys) > 0
	}
	var pending *chunk
	for i := 0; ; i++ {
		next := bufs[i%2]
		hasNext := fill(next)
		if hasNext {
			next.start()
		}
		if pending != nil {
			pending.wg.Wait()
			if err := v.merge(pending); err != nil {
				// Let the workers finish before the transaction ends.
				if hasNext {
					next.wg.Wait()
				}
				return err
			}
			if v.opts.Progress != nil {
				v.opts.Progress(v.n, max(metaSize, v.n))
			}
		}
		if !hasNext {
			break
		}
		pending = next
	}
	v.finishHashes()
	return nil
}

func (v *verifier) merge(c *chunk) error {
	for i := range c.res {
		r := &c.res[i]
		p := v.n
		key := r.key
		if !r.keyOK {
			v.ps.add(p, ProblemStructure, "malformed event key %x", c.keys[i])
			key = v.next
		}
		switch {
		case key > v.next:
			what := fmt.Sprintf("event %d is missing", v.next)
			if key-v.next > 1 {
				what = fmt.Sprintf("events %d..%d are missing", v.next, key-1)
			}
			v.ps.add(v.next, ProblemMissing, "%s; stored hashes from here on were not compared", what)
			v.gap = true
		case key < v.next:
			v.ps.add(p, ProblemStructure, "event key %d out of order", key)
		}
		v.next = max(v.next, key+1)
		v.ps.addAll(r.problems)

		// Recompute the stored hashes for this leaf.
		if int64(len(v.mem.h)) != tlog.StoredHashIndex(0, p) {
			return fmt.Errorf("internal error: %d hashes before record %d", len(v.mem.h), p)
		}
		hs, err := tlog.StoredHashesForRecordHash(p, r.hash, &v.mem)
		if err != nil {
			return fmt.Errorf("recompute hashes of event %d: %w", p, err)
		}
		base := int64(len(v.mem.h))
		v.mem.h = append(v.mem.h, hs...)
		for j := range hs {
			v.compareHash(p, base+int64(j))
		}

		if r.datasetID != "" {
			t := v.track(r.datasetID)
			t.events = append(t.events, key)
			if r.hasDataset {
				// Replay the custody rules: every state change must be
				// one the transition table allows.
				if err := CheckTransition(r.typ, t.state, r.state); err != nil {
					v.ps.add(key, ProblemTransition, "dataset %q: %v", r.datasetID, err)
				}
				t.state = r.state
				if t.first < 0 {
					t.first = key
					t.source, t.remotePath, t.supersedes = r.source, r.remotePath, r.supersedes
					v.byFirst = append(v.byFirst, t)
				}
				t.last, t.snap = key, r.snap
			}
		}
		if r.onceKey != "" {
			if prev, dup := v.once[r.onceKey]; dup {
				v.ps.add(key, ProblemInvalid, "%s %q was already recorded by event %d", OnceKey, r.onceKey, prev)
			} else {
				v.once[r.onceKey] = key
			}
		}
		v.n++
	}
	return nil
}

func (v *verifier) track(id string) *dsTrack {
	if t := v.lastTrack; t != nil && t.id == id {
		return t
	}
	t := v.ds[id]
	if t == nil {
		t = &dsTrack{id: id, first: -1, last: -1}
		v.ds[id] = t
	}
	v.lastTrack = t
	return t
}

// compareHash compares recomputed stored hash s, written with event p,
// with the hashes bucket, reading it in order.
func (v *verifier) compareHash(p, s int64) {
	var stored []byte
	found := false
	for v.hk != nil {
		hi, ok := parseIndex(v.hk)
		if ok && hi == s {
			stored, found = v.hv, true
			v.hk, v.hv = v.hc.Next()
			break
		}
		if ok && hi > s {
			break
		}
		if !v.gap {
			v.ps.add(p, ProblemHash, "unexpected stored hash key %x", v.hk)
		}
		v.hk, v.hv = v.hc.Next()
	}
	if v.gap {
		return // positions are off: comparisons would be meaningless
	}
	level, k := tlog.SplitStoredHashIndex(s)
	lo, hi := k<<uint(level), (k+1)<<uint(level)
	switch {
	case !found:
		if level == 0 {
			v.lastBadLeaf = p
		}
		v.ps.add(p, ProblemHash, "stored hash %d (level %d, events %d..%d) is missing", s, level, lo, hi-1)
	case !bytes.Equal(stored, v.mem.h[s][:]):
		if level == 0 {
			v.lastBadLeaf = p
			v.ps.add(p, ProblemHash, "event bytes differ from those hashed when it was appended")
			return
		}
		if v.lastBadLeaf >= lo && v.lastBadLeaf < hi {
			return // follows from a bad leaf already reported
		}
		v.ps.add(p, ProblemHash, "stored tree hash %d (level %d, events %d..%d) differs from the recomputed one", s, level, lo, hi-1)
	}
}

// finishHashes reports stored hashes beyond the recomputed ones.
func (v *verifier) finishHashes() {
	for ; v.hk != nil && !v.gap; v.hk, v.hv = v.hc.Next() {
		idx := int64(-1)
		if s, ok := parseIndex(v.hk); ok {
			level, k := tlog.SplitStoredHashIndex(s)
			idx = (k+1)<<uint(level) - 1 // the event that stored it
		}
		v.ps.add(idx, ProblemHash, "stored hash %x has no event", v.hk)
	}
}

func (v *verifier) checkCheckpoints(logSize int64, th tlog.Hash) error {
	if v.trusted == nil {
		if logSize > 0 {
			v.ps.add(-1, ProblemMeta, "no verifier key: checkpoints cannot be checked")
		}
		return nil
	}
	var cp []byte
	if v.b.meta != nil {
		cp = v.b.meta.Get(keyCheckpoint)
	}
	switch {
	case cp == nil:
		if logSize > 0 {
			v.ps.add(0, ProblemUnsignedTail, "no signed checkpoint covers the %d events", logSize)
		}
	default:
		tree, err := openCheckpoint(cp, v.trusted)
		if err != nil {
			v.ps.add(-1, ProblemCheckpoint, "stored checkpoint: %v", err)
			break
		}
		v.rep.CheckpointSize = tree.N
		if err := v.checkTree("stored checkpoint", tree, logSize, th, false); err != nil {
			return err
		}
	}
	if len(v.opts.Checkpoint) > 0 {
		tree, err := openCheckpoint(v.opts.Checkpoint, v.trusted)
		if err != nil {
			v.ps.add(-1, ProblemCheckpoint, "kept checkpoint: %v", err)
			return nil
		}
		v.rep.KeptCheckpointSize = tree.N
		if err := v.checkTree("kept checkpoint", tree, logSize, th, true); err != nil {
			return err
		}
	}
	return nil
}

// checkTree checks the log against a signed tree. The ledger's own
// checkpoint must cover the log exactly; a kept one may be older.
func (v *verifier) checkTree(what string, tree tlog.Tree, logSize int64, th tlog.Hash, kept bool) error {
	switch {
	case tree.N > logSize:
		v.ps.add(logSize, ProblemTruncated, "log has %d events but the %s covers %d: events %d..%d were removed",
			logSize, what, tree.N, logSize, tree.N-1)
		return nil
	case tree.N < logSize && !kept:
		v.ps.add(tree.N, ProblemUnsignedTail, "events %d..%d are not covered by the %s (size %d)",
			tree.N, logSize-1, what, tree.N)
	}
	if v.gap || tree.N == 0 {
		return nil // already failed; nothing comparable
	}
	if !kept || tree.N == v.n {
		h, err := tlog.TreeHash(tree.N, &v.mem)
		if err != nil {
			return fmt.Errorf("tree hash: %w", err)
		}
		if h != tree.Hash {
			v.ps.add(-1, ProblemCheckpoint, "%s (size %d) signs tree hash %s, recomputed %s",
				what, tree.N, tree.Hash, h)
		}
		return nil
	}
	proof, err := tlog.ProveTree(v.n, tree.N, &v.mem)
	if err != nil {
		return fmt.Errorf("consistency proof: %w", err)
	}
	if err := tlog.CheckTree(proof, v.n, th, tree.N, tree.Hash); err != nil {
		v.ps.add(-1, ProblemCheckpoint, "log is not an extension of the %s (size %d, hash %s): %v",
			what, tree.N, tree.Hash, err)
	}
	return nil
}

// sortTracks orders the datasets by ID, the order of the datasets and
// timeline buckets.
func (v *verifier) sortTracks() {
	v.sorted = make([]*dsTrack, 0, len(v.ds))
	for _, t := range v.ds {
		v.sorted = append(v.sorted, t)
	}
	slices.SortFunc(v.sorted, func(a, b *dsTrack) int { return strings.Compare(a.id, b.id) })
}

func (v *verifier) checkDatasets() {
	if v.b.datasets != nil {
		c := v.b.datasets.Cursor()
		for k, val := c.First(); k != nil; k, val = c.Next() {
			t := v.ds[string(k)]
			if t == nil || t.last < 0 {
				v.ps.add(-1, ProblemDataset, "dataset record %q has no state-change event", k)
				continue
			}
			t.seen = true
			if !bytes.Equal(val, t.snap) {
				v.ps.add(t.last, ProblemDataset, "dataset record %q differs from its last state (event %d)", k, t.last)
			}
		}
	}
	for _, t := range v.sorted {
		if t.last >= 0 && !t.seen {
			v.ps.add(t.last, ProblemDataset, "dataset %q (last state in event %d) is missing from the datasets bucket", t.id, t.last)
		}
	}
}

func (v *verifier) checkRemote() {
	type owner struct {
		id    string
		first int64
	}
	// A remote file belongs to the dataset that recorded it first, until a
	// later dataset supersedes exactly that one (a re-sent file).
	want := make(map[string]owner, len(v.byFirst))
	for _, t := range v.byFirst {
		if t.remotePath == "" {
			continue
		}
		key := string(remoteKey(t.source, t.remotePath))
		o, dup := want[key]
		switch {
		case dup && t.supersedes != o.id:
			v.ps.add(t.first, ProblemRemote, "dataset %q names remote file %q %q, already recorded for dataset %q (event %d)",
				t.id, t.source, t.remotePath, o.id, o.first)
			continue
		case !dup && t.supersedes != "":
			v.ps.add(t.first, ProblemRemote, "dataset %q supersedes %q, which is not the dataset recorded for remote file %q %q",
				t.id, t.supersedes, t.source, t.remotePath)
		}
		want[key] = owner{t.id, t.first}
	}
	if v.b.remote != nil {
		c := v.b.remote.Cursor()
		for k, val := c.First(); k != nil; k, val = c.Next() {
			o, ok := want[string(k)]
			if !ok {
				v.ps.add(-1, ProblemRemote, "remote index entry %q -> %q matches no dataset", k, val)
				continue
			}
			delete(want, string(k))
			if string(val) != o.id {
				v.ps.add(o.first, ProblemRemote, "remote index maps %q to %q, events say %q", k, val, o.id)
			}
		}
	}
	for key, o := range want {
		v.ps.add(o.first, ProblemRemote, "remote index entry %q for dataset %q is missing", key, o.id)
	}
}

// checkSequence compares the sequence index with the last states of the
// datasets.
func (v *verifier) checkSequence() {
	want := sequenceWant{}
	for _, t := range v.sorted {
		if t.last < 0 || !bytes.Contains(t.snap, []byte(`"`+IntegritySequence+`":`)) {
			continue
		}
		var d Dataset
		if json.Unmarshal(t.snap, &d) == nil {
			want.add(&d)
		}
	}
	want.compare(v.b.sequence, func(kind, format string, args ...any) { v.ps.add(-1, kind, format, args...) })
}

// checkDatasetTime compares the dataset time index with the last states
// of the datasets.
func (v *verifier) checkDatasetTime() {
	want := datasetTimeWant{}
	for _, t := range v.sorted {
		if t.last >= 0 {
			want.add(t.snap)
		}
	}
	want.compare(v.b.datasetTime, func(kind, format string, args ...any) { v.ps.add(-1, kind, format, args...) })
}

// checkOnce compares the once index with the once keys of the events.
func (v *verifier) checkOnce() {
	want := v.once
	if v.b.once != nil {
		c := v.b.once.Cursor()
		for k, val := c.First(); k != nil; k, val = c.Next() {
			i, ok := want[string(k)]
			if !ok {
				v.ps.add(-1, ProblemOnce, "once index entry %q matches no event", k)
				continue
			}
			delete(want, string(k))
			if got, ok := parseIndex(val); !ok || got != i {
				v.ps.add(i, ProblemOnce, "once index maps %q to %x, event %d carries it", k, val, i)
			}
		}
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v.ps.add(want[k], ProblemOnce, "once index entry %q for event %d is missing", k, want[k])
	}
}

func (v *verifier) checkTimeline() {
	var c *bolt.Cursor
	var k, val []byte
	if v.b.timeline != nil {
		c = v.b.timeline.Cursor()
		k, val = c.First()
	}
	extra := func(k []byte) {
		if len(k) < 9 || k[len(k)-9] != 0 {
			v.ps.add(-1, ProblemTimeline, "malformed timeline key %q", k)
			return
		}
		id := k[:len(k)-9]
		i, ok := parseIndex(k[len(k)-8:])
		switch {
		case !ok:
			v.ps.add(-1, ProblemTimeline, "malformed timeline key %q", k)
		case i >= v.next:
			v.ps.add(-1, ProblemTimeline, "timeline entry for dataset %q names event %d, beyond the end of the log", id, i)
		default:
			v.ps.add(i, ProblemTimeline, "timeline entry for dataset %q names event %d, which is missing or does not name that dataset", id, i)
		}
	}
	var want []byte
	for _, t := range v.sorted {
		id := t.id
		for _, idx := range t.events {
			want = binary.BigEndian.AppendUint64(append(append(want[:0], id...), 0), uint64(idx))
			for c != nil && k != nil && bytes.Compare(k, want) < 0 {
				extra(k)
				k, val = c.Next()
			}
			if k == nil || !bytes.Equal(k, want) {
				v.ps.add(idx, ProblemTimeline, "timeline entry for dataset %q is missing", id)
				continue
			}
			if len(val) != 0 {
				v.ps.add(idx, ProblemTimeline, "timeline entry for dataset %q has a value", id)
			}
			k, val = c.Next()
		}
	}
	for ; k != nil; k, _ = c.Next() {
		extra(k)
	}
}
