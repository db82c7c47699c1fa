package proof

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"custodian/audit"
)

// FormatArchive is the format of a ledger archive file.
const FormatArchive = "custodian-ledger-archive/v1"

// Archive is the oldest segment of a ledger, events 0 to Count-1 (every
// event before Before), as a self-contained file: their exact leaf bytes
// and an RFC 6962 consistency proof from the tree of those leaves to the
// tree signed in Checkpoint. Together they prove that every archived
// event is in the signed tree at its index: the checker computes the
// segment's own tree hash from the leaves and checks that this tree is a
// prefix of the signed one. This is the collective form of one inclusion
// proof per event, and much smaller.
type Archive struct {
	Format      string   `json:"format"`
	Checkpoint  string   `json:"checkpoint"`
	VerifierKey string   `json:"verifier_key"`
	Before      string   `json:"before"` // RFC 3339: every archived event is earlier
	Count       int64    `json:"count"`
	Leaves      [][]byte `json:"leaves"`
	Proof       [][]byte `json:"proof"`
}

// NewArchive builds an archive from a prefix proof.
func NewArchive(p audit.PrefixProof, verifierKey string, before time.Time) Archive {
	return Archive{Format: FormatArchive, Checkpoint: string(p.Checkpoint), VerifierKey: verifierKey,
		Before: before.UTC().Format(time.RFC3339), Count: p.Count, Leaves: p.Leaves, Proof: hashes(p.Proof)}
}

// EncodeArchive returns the canonical form of an archive, as [Encode]
// writes proofs.
func EncodeArchive(a Archive) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(a); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// memHashes is an in-memory tlog hash store.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = m[x]
	}
	return out, nil
}

// TreeHash is the RFC 6962 tree hash of leaves.
func TreeHash(leaves [][]byte) (tlog.Hash, error) {
	var store memHashes
	for i, leaf := range leaves {
		hs, err := tlog.StoredHashes(int64(i), leaf, store)
		if err != nil {
			return tlog.Hash{}, err
		}
		store = append(store, hs...)
	}
	return tlog.TreeHash(int64(len(leaves)), store)
}

// ArchiveResult is what an archive proves.
type ArchiveResult struct {
	KeyTrusted  bool
	VerifierKey string
	Before      time.Time
	Count       int64
	Segment     tlog.Tree // the archived events' own tree
	Tree        tlog.Tree // the signed tree they begin
	Events      []audit.Event
	Cosigners   []string
}

// CheckArchive verifies an archive file offline: its canonical form, the
// checkpoint's signature, the consistency proof from the archived leaves'
// tree to the signed tree, and that each leaf is the event of its index,
// dated before the archive's date.
func CheckArchive(data []byte, opts Options) (*ArchiveResult, error) {
	var a Archive
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("%w: not an archive file: %v", ErrInvalid, err)
	}
	if a.Format != FormatArchive {
		return nil, fmt.Errorf("%w: format %q; want %q", ErrInvalid, a.Format, FormatArchive)
	}
	canon, err := EncodeArchive(a)
	if err != nil {
		return nil, err
	}
	if err := sameBytes(canon, data); err != nil {
		return nil, err
	}
	key, trusted, err := trustedKey(a.VerifierKey, opts)
	if err != nil {
		return nil, err
	}
	cp, err := OpenCheckpoint([]byte(a.Checkpoint), key, opts.Cosigners...)
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint: %v", ErrInvalid, err)
	}
	before, err := time.Parse(time.RFC3339, a.Before)
	if err != nil {
		return nil, fmt.Errorf("%w: before: %v", ErrInvalid, err)
	}
	if a.Count < 1 || a.Count != int64(len(a.Leaves)) || a.Count > cp.Tree.N {
		return nil, fmt.Errorf("%w: count %d with %d leaves against a tree of size %d", ErrInvalid, a.Count, len(a.Leaves), cp.Tree.N)
	}
	seg, err := TreeHash(a.Leaves)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	p, err := toHashes(a.Proof)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := tlog.CheckTree(p, cp.Tree.N, cp.Tree.Hash, a.Count, seg); err != nil {
		return nil, fmt.Errorf("%w: the archived events (tree of size %d, root %s) are not the start of the signed tree of size %d: %v", ErrInvalid, a.Count, seg, cp.Tree.N, err)
	}
	r := &ArchiveResult{KeyTrusted: trusted, VerifierKey: key, Before: before, Count: a.Count,
		Segment: tlog.Tree{N: a.Count, Hash: seg}, Tree: cp.Tree, Cosigners: cp.Cosigners, Events: make([]audit.Event, len(a.Leaves))}
	for i, leaf := range a.Leaves {
		ev := &r.Events[i]
		if err := json.Unmarshal(leaf, ev); err != nil {
			return nil, fmt.Errorf("%w: leaf %d is in the tree but is not a custodian event: %v", ErrInvalid, i, err)
		}
		if ev.Index != int64(i) {
			return nil, fmt.Errorf("%w: leaf %d is event %d", ErrInvalid, i, ev.Index)
		}
		if !ev.Time.Before(before) {
			return nil, fmt.Errorf("%w: event %d (%s) is not before %s", ErrInvalid, i, ev.Time.UTC().Format(time.RFC3339), a.Before)
		}
	}
	return r, nil
}

// String describes the result for people.
func (r *ArchiveResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "archive OK: events 0 to %d (every event before %s) are the start of the ledger's signed tree of size %d (root hash %s)\n",
		r.Count-1, r.Before.UTC().Format(time.RFC3339), r.Tree.N, r.Tree.Hash)
	if len(r.Events) > 0 {
		first, last := r.Events[0], r.Events[len(r.Events)-1]
		fmt.Fprintf(&b, "first event %s (%s), last event %s (%s)\n", first.Time.UTC().Format(time.RFC3339), first.Type, last.Time.UTC().Format(time.RFC3339), last.Type)
	}
	cosigned(&b, "the checkpoint", r.Cosigners)
	if r.KeyTrusted {
		fmt.Fprintf(&b, "signed by the verifier key you gave: %s\n", r.VerifierKey)
	} else {
		fmt.Fprintf(&b, "signed by the verifier key in the file itself (%s): this proves only that the file is consistent with itself; give --verifier-key with the key you hold to prove it comes from the ledger\n", r.VerifierKey)
	}
	return b.String()
}
