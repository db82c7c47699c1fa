package proof

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"custodian/audit"
)

// File formats.
const (
	FormatInclusion   = "custodian-inclusion-proof/v1"
	FormatConsistency = "custodian-consistency-proof/v1"
)

// ErrInvalid wraps every reason a proof file does not check: a file that
// cannot be read as a proof, a signature that does not verify, a path that
// does not lead to the signed root.
var ErrInvalid = errors.New("proof does not check")

// Inclusion is one event with its inclusion proof. Leaf is the event's
// exact leaf bytes; its leaf hash is SHA-256(0x00 || Leaf) and Proof is the
// RFC 6962 audit path from that hash to the root hash signed in Checkpoint.
type Inclusion struct {
	Format      string   `json:"format"`
	Checkpoint  string   `json:"checkpoint"`
	VerifierKey string   `json:"verifier_key"`
	Index       int64    `json:"index"`
	Leaf        []byte   `json:"leaf"`
	Proof       [][]byte `json:"proof"`
}

// Consistency proves that the tree signed in Old is a prefix of the tree
// signed in New (RFC 6962 consistency proof): the log only grew.
type Consistency struct {
	Format      string   `json:"format"`
	Old         string   `json:"old"`
	New         string   `json:"new"`
	VerifierKey string   `json:"verifier_key"`
	Proof       [][]byte `json:"proof"`
}

func hashes[T ~[]tlog.Hash](p T) [][]byte {
	out := make([][]byte, len(p))
	for i, h := range p {
		out[i] = slices.Clone(h[:])
	}
	return out
}

func toHashes(p [][]byte) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(p))
	for i, b := range p {
		if len(b) != tlog.HashSize {
			return nil, fmt.Errorf("proof[%d] is %d bytes, not a %d-byte hash", i, len(b), tlog.HashSize)
		}
		copy(out[i][:], b)
	}
	return out, nil
}

// NewInclusion makes the proof file of a ledger's leaf proof.
func NewInclusion(p audit.LeafProof, verifierKey string) Inclusion {
	return Inclusion{Format: FormatInclusion, Checkpoint: string(p.Checkpoint), VerifierKey: verifierKey,
		Index: p.Index, Leaf: slices.Clone(p.Leaf), Proof: hashes(p.Proof)}
}

// NewConsistency makes a consistency proof file.
func NewConsistency(oldCheckpoint, newCheckpoint []byte, verifierKey string, p tlog.TreeProof) Consistency {
	return Consistency{Format: FormatConsistency, Old: string(oldCheckpoint), New: string(newCheckpoint),
		VerifierKey: verifierKey, Proof: hashes(p)}
}

// Encode returns the canonical form of a proof file: JSON indented by two
// spaces, fields in the order of the struct, no HTML escaping, ending in a
// newline. [Decode] accepts nothing else.
func Encode(v any) ([]byte, error) {
	switch v.(type) {
	case Inclusion, *Inclusion, Consistency, *Consistency:
	default:
		return nil, fmt.Errorf("proof: cannot encode %T", v)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Decode reads a proof file: an *Inclusion or a *Consistency. The file
// must be in the canonical form [Encode] writes.
func Decode(data []byte) (any, error) {
	var head map[string]json.RawMessage
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%w: not a proof file: %v", ErrInvalid, err)
	}
	var format string
	if raw, ok := head["format"]; !ok || json.Unmarshal(raw, &format) != nil {
		return nil, fmt.Errorf("%w: no \"format\" string: not a custodian proof file", ErrInvalid)
	}
	var v any
	switch format {
	case FormatInclusion:
		v = &Inclusion{}
	case FormatConsistency:
		v = &Consistency{}
	default:
		return nil, fmt.Errorf("%w: format %q; want %q or %q", ErrInvalid, format, FormatInclusion, FormatConsistency)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	canon, err := Encode(v)
	if err != nil {
		return nil, err
	}
	if err := sameBytes(canon, data); err != nil {
		return nil, err
	}
	return v, nil
}

// sameBytes refuses a file that is not byte for byte the canonical form
// of what it decodes to: a proof or an archive changed after it was
// written, even where the change would not alter its meaning.
func sameBytes(canon, data []byte) error {
	if bytes.Equal(canon, data) {
		return nil
	}
	at := 0
	for at < len(canon) && at < len(data) && canon[at] == data[at] {
		at++
	}
	return fmt.Errorf("%w: the file is not in the form custodian writes (it differs at byte %d): it was changed after it was written", ErrInvalid, at)
}

// ParseVerifierKey parses a note verifier key and requires its canonical
// spelling (lower-case hex key hash), so that a key that parses is the key
// that was written.
func ParseVerifierKey(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("verifier key %q: %w", vkey, err)
	}
	if canon := fmt.Sprintf("%s+%08x+", v.Name(), v.KeyHash()); !strings.HasPrefix(vkey, canon) {
		return nil, fmt.Errorf("verifier key %q: not in canonical form (want %s…)", vkey, canon)
	}
	return v, nil
}

// Checkpoint is a signed checkpoint that verified.
type Checkpoint struct {
	Origin string
	Tree   tlog.Tree
	// Cosigners are the names of the verified signers other than the
	// ledger's key, in the order of the note.
	Cosigners []string
}

// sigSplit separates a note's text from its signatures.
var sigSplit = []byte("\n\n")

// signatureLines returns the signature lines of a note and checks that
// each one's base64 is canonical (note.Open tolerates unused bits).
func signatureLines(msg []byte) ([]string, error) {
	i := bytes.LastIndex(msg, sigSplit)
	if i < 0 {
		return nil, errors.New("malformed note: no blank line before the signatures")
	}
	block := strings.TrimSuffix(string(msg[i+2:]), "\n")
	lines := strings.Split(block, "\n")
	for _, line := range lines {
		fields := strings.Split(line, " ")
		if len(fields) != 3 || fields[0] != "—" {
			return nil, fmt.Errorf("malformed signature line %q", line)
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(fields[2])
		if err != nil || base64.StdEncoding.EncodeToString(raw) != fields[2] {
			return nil, fmt.Errorf("signature of %s is not canonical base64", fields[1])
		}
	}
	return lines, nil
}

// OpenCheckpoint checks a checkpoint note: it must carry a valid signature
// by ledgerKey, and every other signature line must be by one of the
// cosigner keys given and valid. The text must be a checkpoint of the
// ledger key's log: origin (the key's name), tree size, base64 root hash.
func OpenCheckpoint(msg []byte, ledgerKey string, cosignerKeys ...string) (Checkpoint, error) {
	lv, err := ParseVerifierKey(ledgerKey)
	if err != nil {
		return Checkpoint{}, err
	}
	vs := []note.Verifier{lv}
	for _, k := range cosignerKeys {
		v, err := ParseVerifierKey(k)
		if err != nil {
			return Checkpoint{}, fmt.Errorf("cosigner key: %w", err)
		}
		if !slices.ContainsFunc(vs, func(w note.Verifier) bool { return w.Name() == v.Name() && w.KeyHash() == v.KeyHash() }) {
			vs = append(vs, v)
		}
	}
	if _, err := signatureLines(msg); err != nil {
		return Checkpoint{}, err
	}
	n, err := note.Open(msg, note.VerifierList(vs...))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			return Checkpoint{}, fmt.Errorf("not signed by %s+%08x (the ledger key given)", lv.Name(), lv.KeyHash())
		case errors.As(err, &invalid):
			return Checkpoint{}, fmt.Errorf("the signature by %s+%08x does not verify: the checkpoint was changed", invalid.Name, invalid.Hash)
		}
		return Checkpoint{}, err
	}
	if len(n.UnverifiedSigs) > 0 {
		s := n.UnverifiedSigs[0]
		return Checkpoint{}, fmt.Errorf("also signed by %s+%08x, whose key was not given: pass it as a cosigner key to check that signature too", s.Name, s.Hash)
	}
	cp := Checkpoint{}
	ledgerSigned := false
	for _, s := range n.Sigs {
		if s.Name == lv.Name() && s.Hash == lv.KeyHash() {
			ledgerSigned = true
		} else {
			cp.Cosigners = append(cp.Cosigners, s.Name)
		}
	}
	if !ledgerSigned {
		return Checkpoint{}, fmt.Errorf("not signed by %s+%08x (the ledger key given)", lv.Name(), lv.KeyHash())
	}
	cp.Origin, cp.Tree, err = parseText(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if cp.Origin != lv.Name() {
		return Checkpoint{}, fmt.Errorf("checkpoint of log %q, but the ledger key is %q", cp.Origin, lv.Name())
	}
	return cp, nil
}

// parseText parses the C2SP tlog-checkpoint body custodian writes: exactly
// origin, size and base64 root hash lines.
func parseText(text string) (origin string, tree tlog.Tree, err error) {
	lines := strings.Split(text, "\n")
	if len(lines) != 4 || lines[3] != "" || lines[0] == "" {
		return "", tree, errors.New("malformed checkpoint: want exactly the origin, size and root hash lines")
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return "", tree, fmt.Errorf("malformed checkpoint size %q", lines[1])
	}
	h, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return "", tree, fmt.Errorf("malformed checkpoint root hash %q", lines[2])
	}
	tree.N = n
	copy(tree.Hash[:], h)
	return lines[0], tree, nil
}

// CheckpointSize reads the tree size of a checkpoint note without checking
// any signature (for naming kept files and listing them).
func CheckpointSize(msg []byte) (int64, error) {
	text, _, ok := bytes.Cut(msg, sigSplit)
	if !ok {
		return 0, errors.New("malformed checkpoint: no signatures")
	}
	_, tree, err := parseText(string(text) + "\n")
	return tree.N, err
}

// Options configure [Check].
type Options struct {
	// VerifierKey is the ledger's verifier key as the auditor holds it.
	// The file's key must equal it. If empty, the file's own key is used,
	// which proves only that the file is consistent with itself.
	VerifierKey string
	// Cosigners are the verifier keys of cosigners (auditors) whose
	// signatures a checkpoint in the file may carry.
	Cosigners []string
}

// Result is what a proof file proves.
type Result struct {
	Kind        string // "inclusion" or "consistency"
	KeyTrusted  bool   // the file's key equals the one given in Options
	VerifierKey string
	// Inclusion: the event, its leaf and the tree it is in.
	Index int64
	Leaf  []byte
	Event *audit.Event
	Tree  tlog.Tree
	// Consistency: the two trees.
	Old, New tlog.Tree
	// Cosigners maps "old", "new" or "checkpoint" to the cosigners that
	// signed that checkpoint.
	Cosigners map[string][]string
}

// Check verifies a proof file offline and returns what it proves.
func Check(data []byte, opts Options) (*Result, error) {
	v, err := Decode(data)
	if err != nil {
		return nil, err
	}
	switch f := v.(type) {
	case *Inclusion:
		return checkInclusion(f, opts)
	case *Consistency:
		return checkConsistency(f, opts)
	}
	return nil, fmt.Errorf("%w: unknown proof", ErrInvalid)
}

func trustedKey(fileKey string, opts Options) (string, bool, error) {
	if opts.VerifierKey == "" {
		return fileKey, false, nil
	}
	if strings.TrimSpace(opts.VerifierKey) != fileKey {
		return "", false, fmt.Errorf("%w: the file's verifier key %s is not the key given (%s)", ErrInvalid, fileKey, strings.TrimSpace(opts.VerifierKey))
	}
	return fileKey, true, nil
}

func checkInclusion(f *Inclusion, opts Options) (*Result, error) {
	key, trusted, err := trustedKey(f.VerifierKey, opts)
	if err != nil {
		return nil, err
	}
	cp, err := OpenCheckpoint([]byte(f.Checkpoint), key, opts.Cosigners...)
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint: %v", ErrInvalid, err)
	}
	if f.Index < 0 || f.Index >= cp.Tree.N {
		return nil, fmt.Errorf("%w: index %d is not in the tree of size %d", ErrInvalid, f.Index, cp.Tree.N)
	}
	p, err := toHashes(f.Proof)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := tlog.CheckRecord(p, cp.Tree.N, cp.Tree.Hash, f.Index, tlog.RecordHash(f.Leaf)); err != nil {
		return nil, fmt.Errorf("%w: the audit path from leaf %d does not lead to the signed root hash of tree size %d: %v", ErrInvalid, f.Index, cp.Tree.N, err)
	}
	var ev audit.Event
	if err := json.Unmarshal(f.Leaf, &ev); err != nil {
		return nil, fmt.Errorf("%w: the leaf is in the tree but is not a custodian event: %v", ErrInvalid, err)
	}
	if ev.Index != f.Index {
		return nil, fmt.Errorf("%w: the leaf is event %d, not %d", ErrInvalid, ev.Index, f.Index)
	}
	return &Result{Kind: "inclusion", KeyTrusted: trusted, VerifierKey: key, Index: f.Index, Leaf: f.Leaf, Event: &ev, Tree: cp.Tree,
		Cosigners: map[string][]string{"checkpoint": cp.Cosigners}}, nil
}

func checkConsistency(f *Consistency, opts Options) (*Result, error) {
	key, trusted, err := trustedKey(f.VerifierKey, opts)
	if err != nil {
		return nil, err
	}
	oldCP, err := OpenCheckpoint([]byte(f.Old), key, opts.Cosigners...)
	if err != nil {
		return nil, fmt.Errorf("%w: old checkpoint: %v", ErrInvalid, err)
	}
	newCP, err := OpenCheckpoint([]byte(f.New), key, opts.Cosigners...)
	if err != nil {
		return nil, fmt.Errorf("%w: new checkpoint: %v", ErrInvalid, err)
	}
	if oldCP.Tree.N < 1 || oldCP.Tree.N > newCP.Tree.N {
		return nil, fmt.Errorf("%w: the old checkpoint (size %d) must be of size 1 to %d, the new one's", ErrInvalid, oldCP.Tree.N, newCP.Tree.N)
	}
	p, err := toHashes(f.Proof)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := tlog.CheckTree(p, newCP.Tree.N, newCP.Tree.Hash, oldCP.Tree.N, oldCP.Tree.Hash); err != nil {
		return nil, fmt.Errorf("%w: the tree of size %d is not a prefix of the tree of size %d: %v", ErrInvalid, oldCP.Tree.N, newCP.Tree.N, err)
	}
	return &Result{Kind: "consistency", KeyTrusted: trusted, VerifierKey: key, Old: oldCP.Tree, New: newCP.Tree,
		Cosigners: map[string][]string{"old": oldCP.Cosigners, "new": newCP.Cosigners}}, nil
}

// String describes the result for people.
func (r *Result) String() string {
	var b strings.Builder
	switch r.Kind {
	case "inclusion":
		fmt.Fprintf(&b, "inclusion proof OK: event %d is in the ledger's tree of size %d (root hash %s)\n", r.Index, r.Tree.N, r.Tree.Hash)
		writeEvent(&b, r.Event)
		cosigned(&b, "the checkpoint", r.Cosigners["checkpoint"])
	case "consistency":
		fmt.Fprintf(&b, "consistency proof OK: the tree of size %d (root %s) is a prefix of the tree of size %d (root %s): the ledger only grew in between\n",
			r.Old.N, r.Old.Hash, r.New.N, r.New.Hash)
		cosigned(&b, "the old checkpoint", r.Cosigners["old"])
		cosigned(&b, "the new checkpoint", r.Cosigners["new"])
	}
	if r.KeyTrusted {
		fmt.Fprintf(&b, "signed by the verifier key you gave: %s\n", r.VerifierKey)
	} else {
		fmt.Fprintf(&b, "signed by the verifier key in the file itself (%s): this proves only that the file is consistent with itself; give --verifier-key with the key you hold to prove it comes from the ledger\n", r.VerifierKey)
	}
	return b.String()
}

func cosigned(b *strings.Builder, what string, names []string) {
	if len(names) > 0 {
		fmt.Fprintf(b, "%s is cosigned by: %s\n", what, strings.Join(names, ", "))
	}
}

func writeEvent(b *strings.Builder, ev *audit.Event) {
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(b, "  %-10s %s\n", k, v)
		}
	}
	row("index", strconv.FormatInt(ev.Index, 10))
	row("time", ev.Time.UTC().Format(time.RFC3339Nano))
	row("actor", ev.Actor)
	row("type", string(ev.Type))
	row("job", ev.Job)
	row("dataset", ev.DatasetID)
	for _, k := range sortedKeys(ev.Details) {
		row("details", k+" = "+ev.Details[k])
	}
	if d := ev.Dataset; d != nil {
		row("state", string(d.State))
		row("reason", d.Reason)
		row("remote", d.Source+":"+d.RemotePath)
		row("sha256", d.SHA256)
		row("size", strconv.FormatInt(d.Size, 10)+" bytes")
		row("records", fmt.Sprintf("%d counted, %d declared", d.Records, d.DeclaredRecords))
		row("purpose", d.Purpose)
		row("custodian", d.Custodian)
		row("object", d.ObjectID)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// GenerateKey returns a new Ed25519 note signer key (secret) and its
// verifier key for an auditor named name.
func GenerateKey(name string) (skey, vkey string, err error) {
	if name == "" || !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsSpace) >= 0 || strings.Contains(name, "+") {
		return "", "", fmt.Errorf("auditor key name %q: a name is not empty and holds no white space and no '+'", name)
	}
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("auditor key %q: %w (a name may not contain spaces or '+')", name, err)
	}
	return skey, vkey, nil
}

// Cosign adds a signature by the note signer key skey to a checkpoint
// note, keeping the signatures it has. If ledgerKey is given, the
// checkpoint's ledger signature is checked first (a cosigner should sign
// only what it verified). The new signature is an ordinary Ed25519 note
// signature over the same checkpoint text.
func Cosign(msg []byte, skey, ledgerKey string) ([]byte, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, fmt.Errorf("auditor key: %w", err) // never the key itself
	}
	if _, err := signatureLines(msg); err != nil {
		return nil, err
	}
	var vs note.Verifiers = note.VerifierList()
	if ledgerKey != "" {
		v, err := ParseVerifierKey(ledgerKey)
		if err != nil {
			return nil, err
		}
		vs = note.VerifierList(v)
	}
	n, err := note.Open(msg, vs)
	var unverified *note.UnverifiedNoteError
	switch {
	case err == nil:
	case ledgerKey == "" && errors.As(err, &unverified):
		n = unverified.Note
	case errors.As(err, &unverified):
		return nil, fmt.Errorf("the checkpoint is not signed by the ledger key given (%s)", ledgerKey)
	default:
		return nil, fmt.Errorf("the checkpoint does not verify: %w", err)
	}
	if _, _, err := parseText(n.Text); err != nil {
		return nil, err
	}
	for _, sig := range append(slices.Clone(n.Sigs), n.UnverifiedSigs...) {
		if sig.Name == s.Name() && sig.Hash == s.KeyHash() {
			return nil, fmt.Errorf("the checkpoint is already signed by %s+%08x", s.Name(), s.KeyHash())
		}
	}
	return note.Sign(n, s)
}
