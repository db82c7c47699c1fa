// Package spec checks that docs/ledger-format.md is enough to read a
// custody ledger: the test reads the golden v1 ledger
// (audit/testdata/golden-v1) with the document's rules only, written out
// here again. It does not import custodian's code (nor tlog): bbolt reads
// the buckets, crypto/sha256 and crypto/ed25519 check the tree and the
// signature, and golang.org/x/mod/sumdb/note, the reference the document
// names, checks the checkpoint a second time.
//
// If this test fails while the audit package's TestGoldenV1 passes, the
// document is wrong or incomplete: fix docs/ledger-format.md.
package spec

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
)

const (
	golden  = "../testdata/golden-v1"
	docPath = "../../docs/ledger-format.md"
)

// event and dataset are the field tables of "Leaves: the event encoding",
// in the document's order.
type event struct {
	Index     int64             `json:"index"`
	Time      string            `json:"time"`
	Actor     string            `json:"actor"`
	Type      string            `json:"type"`
	Job       string            `json:"job"`
	DatasetID string            `json:"dataset_id"`
	Details   map[string]string `json:"details"`
	Dataset   *dataset          `json:"dataset"`
}

type dataset struct {
	ID              string            `json:"id"`
	Job             string            `json:"job"`
	Source          string            `json:"source"`
	Kind            string            `json:"kind"`
	RemotePath      string            `json:"remote_path"`
	RemoteSize      int64             `json:"remote_size"`
	RemoteMtime     string            `json:"remote_mtime"`
	Size            int64             `json:"size"`
	SHA256          string            `json:"sha256"`
	Records         int64             `json:"records"`
	DeclaredRecords int64             `json:"declared_records"`
	State           string            `json:"state"`
	Reason          string            `json:"reason"`
	Purpose         string            `json:"purpose"`
	ObjectID        string            `json:"object_id"`
	Custodian       string            `json:"custodian"`
	ReceivedAt      string            `json:"received_at"`
	UpdatedAt       string            `json:"updated_at"`
	Integrity       map[string]string `json:"integrity"`
	PriorObjects    []string          `json:"prior_objects"`
	Supersedes      string            `json:"supersedes"`
}

// The encoding rules of "Leaves: the event encoding".

type enc struct{ b []byte }

func (e *enc) str(s string) {
	const hexDigits = "0123456789abcdef"
	e.b = append(e.b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			e.b = append(e.b, '\\', byte(r))
		case r == '\n':
			e.b = append(e.b, `\n`...)
		case r == '\r':
			e.b = append(e.b, `\r`...)
		case r == '\t':
			e.b = append(e.b, `\t`...)
		case r == '\b':
			e.b = append(e.b, `\b`...)
		case r == '\f':
			e.b = append(e.b, `\f`...)
		case r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029':
			e.b = append(e.b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
		default:
			e.b = utf8.AppendRune(e.b, r)
		}
	}
	e.b = append(e.b, '"')
}

// field writes a key; first is the object's first field.
func (e *enc) field(first bool, name string) {
	if !first {
		e.b = append(e.b, ',')
	}
	e.b = append(e.b, '"')
	e.b = append(e.b, name...)
	e.b = append(e.b, '"', ':')
}

func (e *enc) strField(first bool, name, v string) {
	e.field(first, name)
	e.str(v)
}

func (e *enc) optStr(name, v string) {
	if v != "" {
		e.strField(false, name, v)
	}
}

func (e *enc) intField(name string, v int64) {
	e.field(false, name)
	e.b = strconv.AppendInt(e.b, v, 10)
}

// optMap writes an object of strings with keys in byte order, left out
// when empty.
func (e *enc) optMap(name string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	e.field(false, name)
	e.b = append(e.b, '{')
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // Go compares strings bytewise
	for i, k := range keys {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.str(k)
		e.b = append(e.b, ':')
		e.str(m[k])
	}
	e.b = append(e.b, '}')
}

func (e *enc) dataset(d *dataset) {
	e.b = append(e.b, '{')
	e.strField(true, "id", d.ID)
	e.strField(false, "job", d.Job)
	e.strField(false, "source", d.Source)
	e.strField(false, "kind", d.Kind)
	e.strField(false, "remote_path", d.RemotePath)
	e.intField("remote_size", d.RemoteSize)
	e.strField(false, "remote_mtime", d.RemoteMtime)
	e.intField("size", d.Size)
	e.strField(false, "sha256", d.SHA256)
	e.intField("records", d.Records)
	e.intField("declared_records", d.DeclaredRecords)
	e.strField(false, "state", d.State)
	e.optStr("reason", d.Reason)
	e.strField(false, "purpose", d.Purpose)
	e.strField(false, "object_id", d.ObjectID)
	e.strField(false, "custodian", d.Custodian)
	e.strField(false, "received_at", d.ReceivedAt)
	e.strField(false, "updated_at", d.UpdatedAt)
	e.optMap("integrity", d.Integrity)
	if len(d.PriorObjects) > 0 {
		e.field(false, "prior_objects")
		e.b = append(e.b, '[')
		for i, o := range d.PriorObjects {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.str(o)
		}
		e.b = append(e.b, ']')
	}
	e.optStr("supersedes", d.Supersedes)
	e.b = append(e.b, '}')
}

func encodeEvent(ev *event) []byte {
	e := &enc{}
	e.b = append(e.b, '{')
	e.field(true, "index")
	e.b = strconv.AppendInt(e.b, ev.Index, 10)
	e.strField(false, "time", ev.Time)
	e.strField(false, "actor", ev.Actor)
	e.strField(false, "type", ev.Type)
	e.optStr("job", ev.Job)
	e.optStr("dataset_id", ev.DatasetID)
	e.optMap("details", ev.Details)
	if ev.Dataset != nil {
		e.field(false, "dataset")
		e.dataset(ev.Dataset)
	}
	e.b = append(e.b, '}')
	return e.b
}

func encodeDataset(d *dataset) []byte {
	e := &enc{}
	e.dataset(d)
	return e.b
}

// decodeStrict decodes a leaf into the document's fields: unknown fields
// and trailing data are errors.
func decodeStrict(leaf []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(leaf))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the object")
	}
	return nil
}

// timeRE is the time format: UTC, RFC 3339, up to 9 fractional digits
// without trailing zeros, ending in Z.
var timeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z$`)

// RFC 6962 section 2.1.

func leafHash(leaf []byte) [32]byte {
	return sha256.Sum256(append([]byte{0}, leaf...))
}

func nodeHash(l, r [32]byte) [32]byte {
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

func treeHash(leaves [][32]byte) [32]byte {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return nodeHash(treeHash(leaves[:k]), treeHash(leaves[k:]))
}

// storedHashIndex is the key of the hash of the complete subtree of 2^level
// leaves number k, by the rule of "File layout".
func storedHashIndex(level int, k int64) int64 {
	m := (k+1)<<level - 1
	i := int64(level)
	for ; m > 0; m >>= 1 {
		i += m
	}
	return i
}

func u64(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

// keyName is the rule of "Checkpoints" for the signing key's name.
func keyName(unit string) string {
	const base = "custodian-ledger"
	if unit == "" {
		return base
	}
	var b strings.Builder
	n, sep, cut := 0, false, false
	for _, r := range unit {
		kept := unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S)
		if !kept || r == '+' || r == utf8.RuneError {
			sep = true
			continue
		}
		if n == 64 {
			cut = true
			break
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		b.WriteRune(r)
		n++
	}
	if b.Len() == 0 || cut {
		sum := sha256.Sum256([]byte(unit))
		if b.Len() > 0 {
			b.WriteByte('-')
		}
		b.WriteString(hex.EncodeToString(sum[:4]))
	}
	return base + "/" + b.String()
}

func TestKeyNameRule(t *testing.T) {
	long := strings.Repeat("衛", 65)
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:4]) }
	for unit, want := range map[string]string{
		"":                   "custodian-ledger",
		"連江縣衛生局":             "custodian-ledger/連江縣衛生局",
		"Health Bureau":      "custodian-ledger/Health-Bureau",
		"  a \t+\u3000b\x00": "custodian-ledger/a-b",
		"\t\n":               "custodian-ledger/" + sum("\t\n"),
		long:                 "custodian-ledger/" + strings.Repeat("衛", 64) + "-" + sum(long),
	} {
		if got := keyName(unit); got != want {
			t.Errorf("keyName(%q) = %q, want %q", unit, got, want)
		}
	}
}

// verifierKey parses a verifier key per "Verifier keys" and checks its key
// hash.
func verifierKey(t *testing.T, vkey string) (name string, hash uint32, pub ed25519.PublicKey) {
	t.Helper()
	i := strings.LastIndexByte(vkey, '+')
	j := strings.LastIndexByte(vkey[:max(i, 0)], '+')
	if i < 0 || j < 0 {
		t.Fatalf("verifier key %q: want name+hash+key", vkey)
	}
	name, hexHash, b64 := vkey[:j], vkey[j+1:i], vkey[i+1:]
	if !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(hexHash) {
		t.Fatalf("verifier key hash %q: want 8 lower-case hex digits", hexHash)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 1 {
		t.Fatalf("verifier key %q: want base64 of 0x01 and a 32-byte Ed25519 key (%v)", b64, err)
	}
	pub = raw[1:]
	h := sha256.Sum256(append(append([]byte(name+"\n"), 1), pub...))
	hash = binary.BigEndian.Uint32(h[:4])
	if fmt.Sprintf("%08x", hash) != hexHash {
		t.Fatalf("verifier key hash %s, the rule gives %08x", hexHash, hash)
	}
	return name, hash, pub
}

// checkpoint checks a signed checkpoint per "Checkpoints" and returns its
// tree.
func checkpoint(t *testing.T, msg []byte, name string, hash uint32, pub ed25519.PublicKey) (int64, [32]byte) {
	t.Helper()
	text, sigs, ok := strings.Cut(string(msg), "\n\n")
	if !ok {
		t.Fatalf("checkpoint has no blank line:\n%s", msg)
	}
	text += "\n"
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("checkpoint text has %d lines, want origin, size, hash:\n%s", len(lines), text)
	}
	if lines[0] != name {
		t.Fatalf("checkpoint origin %q, key name %q", lines[0], name)
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != lines[1] {
		t.Fatalf("checkpoint size %q", lines[1])
	}
	rh, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(rh) != 32 || base64.StdEncoding.EncodeToString(rh) != lines[2] {
		t.Fatalf("checkpoint hash %q: want padded standard base64 of 32 bytes", lines[2])
	}
	sigLines := strings.Split(strings.TrimSuffix(sigs, "\n"), "\n")
	if !strings.HasSuffix(sigs, "\n") || len(sigLines) != 1 {
		t.Fatalf("want one signature line ending in a newline, got %q", sigs)
	}
	f := strings.Fields(sigLines[0])
	if len(f) != 3 || f[0] != "—" || f[1] != name {
		t.Fatalf("signature line %q: want \"— %s SIG\"", sigLines[0], name)
	}
	sig, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil || len(sig) != 4+ed25519.SignatureSize {
		t.Fatalf("signature %q: want base64 of a 4-byte key hash and a 64-byte signature", f[2])
	}
	if binary.BigEndian.Uint32(sig[:4]) != hash {
		t.Fatalf("signature key hash %x, key's %08x", sig[:4], hash)
	}
	if !ed25519.Verify(pub, []byte(text), sig[4:]) {
		t.Fatal("the Ed25519 signature over the checkpoint text does not verify")
	}
	var h [32]byte
	copy(h[:], rh)
	return n, h
}

// docEventTypes reads the "Event types" table: each type with the details
// keys and the dataset state column of its row.
func docEventTypes(t *testing.T) map[string]struct {
	keys  []string
	state string
} {
	t.Helper()
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	_, sect, ok := strings.Cut(string(doc), "\n## Event types\n")
	if !ok {
		t.Fatal("no Event types section")
	}
	sect, _, _ = strings.Cut(sect, "\n## ")
	code := regexp.MustCompile("`([^`]+)`")
	out := map[string]struct {
		keys  []string
		state string
	}{}
	for _, line := range strings.Split(sect, "\n") {
		cols := strings.Split(line, "|")
		if len(cols) != 5 || !strings.Contains(cols[1], "`") {
			continue
		}
		var keys []string
		for _, m := range code.FindAllStringSubmatch(cols[3], -1) {
			keys = append(keys, m[1])
		}
		for _, m := range code.FindAllStringSubmatch(cols[1], -1) {
			out[m[1]] = struct {
				keys  []string
				state string
			}{keys, strings.TrimSpace(cols[2])}
		}
	}
	if len(out) == 0 {
		t.Fatal("no event types in the document")
	}
	return out
}

// transitions is the "dataset state" column of "Event types":
// event type -> from state ("" new) -> allowed new states.
var transitions = map[string]map[string][]string{
	"dataset.received": {"": {"verified", "quarantined", "held", "unverified"}},
	"dataset.released": {"held": {"verified"}, "quarantined": {"released"}},
	"dataset.repulled": {"quarantined": {"verified", "quarantined", "held", "unverified"}},
}

func TestGoldenFromDocument(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(golden, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ledger.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	vkeyFile, err := os.ReadFile(filepath.Join(golden, "verifier.key"))
	if err != nil {
		t.Fatal(err)
	}
	keptCP, err := os.ReadFile(filepath.Join(golden, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	vkey := strings.TrimSpace(string(vkeyFile))
	name, khash, pub := verifierKey(t, vkey)

	// The reference implementation agrees.
	nv, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if nv.Name() != name || nv.KeyHash() != khash {
		t.Fatalf("note reads the verifier key as %s+%08x, the document as %s+%08x", nv.Name(), nv.KeyHash(), name, khash)
	}
	if _, err := note.Open(keptCP, note.VerifierList(nv)); err != nil {
		t.Fatalf("note does not accept the checkpoint: %v", err)
	}

	err = db.View(func(tx *bolt.Tx) error {
		for _, b := range []string{"events", "hashes", "datasets", "remote", "timeline", "once", "sequence", "meta"} {
			if tx.Bucket([]byte(b)) == nil {
				t.Fatalf("bucket %q missing", b)
			}
		}
		if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			// state: the application's records, not evidence (see the document).
			if !slices.Contains([]string{"events", "hashes", "datasets", "remote", "timeline", "once", "sequence", "dataset_time", "meta", "state"}, string(name)) {
				t.Errorf("bucket %q is not in the document", name)
			}
			return nil
		}); err != nil {
			return err
		}
		meta := tx.Bucket([]byte("meta"))
		if f := string(meta.Get([]byte("format"))); f != "custodian-ledger/1" {
			t.Errorf("meta format %q", f)
		}
		if got := string(meta.Get([]byte("verifier_key"))); got != vkey {
			t.Errorf("meta verifier_key %q, testdata has %q", got, vkey)
		}
		sizeB := meta.Get([]byte("size"))
		if len(sizeB) != 8 {
			t.Fatalf("meta size %x", sizeB)
		}
		size := int64(binary.BigEndian.Uint64(sizeB))
		storedCP := meta.Get([]byte("checkpoint"))
		if !bytes.Equal(storedCP, keptCP) {
			t.Errorf("meta checkpoint differs from testdata's")
		}
		cpSize, cpHash := checkpoint(t, storedCP, name, khash, pub)
		if cpSize != size {
			t.Errorf("checkpoint size %d, meta size %d", cpSize, size)
		}

		// Leaves, leaf hashes, the tree.
		var leaves [][32]byte
		var events []event
		c := tx.Bucket([]byte("events")).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			i := int64(len(events))
			if !bytes.Equal(k, u64(i)) {
				t.Fatalf("event key %x, want %d", k, i)
			}
			leaves = append(leaves, leafHash(v))
			var ev event
			if err := decodeStrict(v, &ev); err != nil {
				t.Fatalf("event %d does not decode by the document's field tables: %v\n%s", i, err, v)
			}
			if again := encodeEvent(&ev); !bytes.Equal(again, v) {
				t.Fatalf("event %d: the document's encoding gives\n%s\nthe leaf is\n%s", i, again, v)
			}
			checkEvent(t, i, &ev)
			events = append(events, ev)
		}
		if int64(len(events)) != size {
			t.Fatalf("%d events, meta size %d", len(events), size)
		}
		if th := treeHash(leaves); th != cpHash {
			t.Fatalf("recomputed tree hash %x, checkpoint signs %x", th, cpHash)
		}
		checkStoredHashes(t, tx.Bucket([]byte("hashes")), leaves)
		checkIndexes(t, tx, events)
		checkFirstEvent(t, &events[0], name, vkey)
		checkEventTypes(t, events, docEventTypes(t))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkEvent checks "Rules every event obeys" that concern one event.
func checkEvent(t *testing.T, i int64, ev *event) {
	t.Helper()
	if ev.Index != i {
		t.Errorf("event %d says index %d", i, ev.Index)
	}
	if ev.Actor == "" || ev.Type == "" || ev.Time == "" {
		t.Errorf("event %d: actor, type and time are required", i)
	}
	times := []string{ev.Time}
	if d := ev.Dataset; d != nil {
		times = append(times, d.RemoteMtime, d.ReceivedAt, d.UpdatedAt)
		if d.ID != ev.DatasetID {
			t.Errorf("event %d: dataset id %q, dataset_id %q", i, d.ID, ev.DatasetID)
		}
		if !slices.Contains([]string{"extract", "change"}, d.Kind) {
			t.Errorf("event %d: kind %q", i, d.Kind)
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(d.SHA256) {
			t.Errorf("event %d: sha256 %q", i, d.SHA256)
		}
		if d.DeclaredRecords < -1 {
			t.Errorf("event %d: declared_records %d", i, d.DeclaredRecords)
		}
	}
	for _, s := range times {
		if !timeRE.MatchString(s) {
			t.Errorf("event %d: time %q is not in the document's format", i, s)
		}
	}
}

// checkStoredHashes checks the hashes bucket: the hash of every complete
// subtree, under the key of "File layout".
func checkStoredHashes(t *testing.T, b *bolt.Bucket, leaves [][32]byte) {
	t.Helper()
	want := map[int64][32]byte{}
	for level := 0; 1<<level <= len(leaves); level++ {
		for k := int64(0); (k+1)<<level <= int64(len(leaves)); k++ {
			want[storedHashIndex(level, k)] = treeHash(leaves[k<<level : (k+1)<<level])
		}
	}
	n := 0
	err := b.ForEach(func(k, v []byte) error {
		n++
		if len(k) != 8 {
			t.Fatalf("hashes key %x", k)
		}
		h, ok := want[int64(binary.BigEndian.Uint64(k))]
		if !ok || !bytes.Equal(v, h[:]) {
			t.Errorf("stored hash %d does not match the document's rule", binary.BigEndian.Uint64(k))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Errorf("%d stored hashes, the document's rule gives %d", n, len(want))
	}
}

// checkIndexes recomputes the derived buckets and replays the custody
// rules.
func checkIndexes(t *testing.T, tx *bolt.Tx, events []event) {
	t.Helper()
	last := map[string]*dataset{}
	remote := map[string]string{}
	timeline := map[string]bool{}
	once := map[string]int64{}
	for i := range events {
		ev := &events[i]
		if ev.DatasetID != "" {
			timeline[ev.DatasetID+"\x00"+string(u64(ev.Index))] = true
		}
		if k, ok := ev.Details["once_key"]; ok {
			if j, dup := once[k]; dup {
				t.Errorf("event %d: once_key %q already in event %d", i, k, j)
			}
			once[k] = ev.Index
		}
		d := ev.Dataset
		if d == nil {
			if _, ok := transitions[ev.Type]; ok {
				t.Errorf("event %d: %s without a dataset state", i, ev.Type)
			}
			continue
		}
		prev := last[d.ID]
		from := ""
		if prev != nil {
			from = prev.State
			if prev.Source != d.Source || prev.RemotePath != d.RemotePath {
				t.Errorf("event %d: dataset %s changes its remote file", i, d.ID)
			}
			if d.Supersedes != prev.Supersedes {
				t.Errorf("event %d: dataset %s changes supersedes", i, d.ID)
			}
		} else {
			rk := d.Source + "\x00" + d.RemotePath
			if holder, ok := remote[rk]; ok != (d.Supersedes != "") || holder != d.Supersedes {
				t.Errorf("event %d: dataset %s names remote file %q held by %q, supersedes %q", i, d.ID, rk, holder, d.Supersedes)
			}
			remote[rk] = d.ID
		}
		if !slices.Contains(transitions[ev.Type][from], d.State) {
			t.Errorf("event %d: %s moves dataset %s from %q to %q, which the document does not allow", i, ev.Type, d.ID, from, d.State)
		}
		last[d.ID] = d
	}

	check := func(bucket string, want map[string][]byte) {
		t.Helper()
		got := map[string][]byte{}
		tx.Bucket([]byte(bucket)).ForEach(func(k, v []byte) error {
			got[string(k)] = bytes.Clone(v)
			return nil
		})
		for k, v := range want {
			if g, ok := got[k]; !ok || !bytes.Equal(g, v) {
				t.Errorf("bucket %s: key %q has %q, the document says %q", bucket, k, g, v)
			}
			delete(got, k)
		}
		for k := range got {
			t.Errorf("bucket %s: key %q is not derived from the events", bucket, k)
		}
	}
	ds := map[string][]byte{}
	for id, d := range last {
		ds[id] = encodeDataset(d)
	}
	check("datasets", ds)
	rm := map[string][]byte{}
	for k, id := range remote {
		rm[k] = []byte(id)
	}
	check("remote", rm)
	tl := map[string][]byte{}
	for k := range timeline {
		tl[k] = []byte{}
	}
	check("timeline", tl)
	on := map[string][]byte{}
	for k, i := range once {
		on[k] = u64(i)
	}
	check("once", on)
	// sequence: per job, the highest integrity.sequence among datasets
	// whose last state is verified, unverified or released.
	seq := map[string]int64{}
	for _, d := range last {
		if d.State != "verified" && d.State != "unverified" && d.State != "released" {
			continue
		}
		v, ok := d.Integrity["sequence"]
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			continue
		}
		if cur, have := seq[d.Job]; !have || n > cur {
			seq[d.Job] = n
		}
	}
	sq := map[string][]byte{}
	for job, n := range seq {
		sq[job] = u64(n)
	}
	check("sequence", sq)
	// dataset_time: received time (Unix seconds + 2^63, nanoseconds) and
	// ID -> job, state, purpose, each length-prefixed. Absent in files
	// written before it existed (the golden file among them).
	if tx.Bucket([]byte("dataset_time")) != nil {
		dt := map[string][]byte{}
		for id, d := range last {
			at, err := time.Parse(time.RFC3339Nano, d.ReceivedAt)
			if err != nil {
				t.Fatalf("dataset %s: received_at %q: %v", id, d.ReceivedAt, err)
			}
			k := binary.BigEndian.AppendUint64(nil, uint64(at.Unix())^(1<<63))
			k = binary.BigEndian.AppendUint64(k, uint64(at.Nanosecond()))
			var v []byte
			for _, f := range []string{d.Job, d.State, d.Purpose} {
				v = binary.BigEndian.AppendUint64(v, uint64(len(f)))
				v = append(v, f...)
			}
			dt[string(append(k, id...))] = v
		}
		check("dataset_time", dt)
	}
}

// checkFirstEvent: the first event names the unit the key name is derived
// from and repeats the verifier key.
func checkFirstEvent(t *testing.T, ev *event, name, vkey string) {
	t.Helper()
	if ev.Type != "installation.initialized" {
		t.Errorf("first event is %s", ev.Type)
	}
	if got := keyName(ev.Details["unit"]); got != name {
		t.Errorf("unit %q gives key name %q by the document's rule, the key is named %q", ev.Details["unit"], got, name)
	}
	if ev.Details["verifier_key"] != vkey {
		t.Errorf("first event's verifier_key %q, want %q", ev.Details["verifier_key"], vkey)
	}
}

// checkEventTypes: every type in the golden ledger is in the document's
// table, with every details key it uses, and state changes where the table
// says so.
func checkEventTypes(t *testing.T, events []event, doc map[string]struct {
	keys  []string
	state string
}) {
	t.Helper()
	for i := range events {
		ev := &events[i]
		row, ok := doc[ev.Type]
		if !ok {
			t.Errorf("event %d: type %q is not in the document's Event types table", i, ev.Type)
			continue
		}
		for k := range ev.Details {
			if !slices.Contains(row.keys, k) && (ev.Dataset != nil || !slices.Contains(doc["*"].keys, k)) {
				t.Errorf("event %d: %s details key %q is not named in the document (it names %q)", i, ev.Type, k, row.keys)
			}
		}
		if (ev.Dataset != nil) != !strings.HasPrefix(row.state, "—") {
			t.Errorf("event %d: %s: dataset state %v, the document says %q", i, ev.Type, ev.Dataset != nil, row.state)
		}
	}
}
