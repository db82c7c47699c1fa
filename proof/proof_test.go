package proof

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"custodian/audit"
)

// exampleKeyName and exampleSeed make the worked example of
// docs/auditing.md. The seed is a TEST KEY, public on purpose: it signs
// nothing but the example.
const exampleKeyName = "custodian-ledger/Example-Health-Bureau"

var exampleSeed = sha256.Sum256([]byte("custodian auditing example TEST KEY: public, signs nothing real"))

func seedKeys(t testing.TB, name string, seed [32]byte) (skey, vkey string) {
	t.Helper()
	pub := ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(vkey, "+", 3) // the base64 key may hold '+'
	skey = "PRIVATE+KEY+" + name + "+" + parts[1] + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, seed[:]...))
	return skey, vkey
}

var exampleTime = time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)

// exampleLedger builds the example ledger: 3 events, then 4 more. It
// returns the ledger, the checkpoint after the first 3 and the verifier key.
func exampleLedger(t testing.TB) (*audit.Ledger, []byte, string) {
	t.Helper()
	skey, vkey := seedKeys(t, exampleKeyName, exampleSeed)
	signer, err := audit.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(filepath.Join(t.TempDir(), "ledger.db"), audit.Options{Signer: signer, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	at := func(s int) time.Time { return exampleTime.Add(time.Duration(s) * time.Second) }
	ds := &audit.Dataset{ID: "ds-20261201-0001", Job: "registry-extract", Source: "moi", Kind: "extract",
		RemotePath: "/outbox/HR_FULL_20261130.txt", RemoteSize: 123456, RemoteMtime: at(-3600), Size: 123456,
		SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Records: 1000, DeclaredRecords: 1000,
		State: audit.StateVerified, Purpose: "vaccination", ObjectID: "obj-0001", Custodian: "transfer.officer",
		ReceivedAt: at(7), UpdatedAt: at(7), Integrity: map[string]string{"algorithm": "sha256", "checksum": "sidecar"}}
	batches := [][]audit.Event{
		{
			{Time: at(0), Actor: "system:custodian", Type: audit.EvInstallationInitialized, Details: map[string]string{"unit": "Example Health Bureau", "verifier_key": vkey}},
			{Time: at(1), Actor: "system:custodian", Type: audit.EvDaemonStarted, Details: map[string]string{"pid": "4242"}},
			{Time: at(2), Actor: "transfer.officer", Type: audit.EvJobStarted, Job: "registry-extract", Details: map[string]string{"trigger": "schedule"}},
		},
		{
			{Time: at(7), Actor: "transfer.officer", Type: audit.EvDatasetReceived, Job: "registry-extract", DatasetID: ds.ID, Dataset: ds,
				Details: map[string]string{"state": "verified", "remote_path": ds.RemotePath, "sha256": ds.SHA256, "bytes": "123456", "records": "1000"}},
			{Time: at(8), Actor: "transfer.officer", Type: audit.EvJobFinished, Job: "registry-extract", Details: map[string]string{"files": "1", "skipped": "0"}},
			{Time: at(60), Actor: "auditor.lin", Type: audit.EvAuditExported},
			{Time: at(61), Actor: "system:custodian", Type: audit.EvDaemonStopped},
		},
	}
	var first []byte
	for i, b := range batches {
		if err := l.Update(func(tx *audit.Tx) error {
			for _, ev := range b {
				if _, err := tx.Append(ev); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first, _ = l.Checkpoint()
		}
	}
	return l, first, vkey
}

// exampleFiles returns the example's inclusion proof (event 3) and
// consistency proof (size 3 to 7).
func exampleFiles(t testing.TB) (inclusion, consistency []byte, vkey string) {
	l, first, vkey := exampleLedger(t)
	lp, err := l.ProveLeaf(3)
	if err != nil {
		t.Fatal(err)
	}
	inclusion, err = Encode(NewInclusion(lp, vkey))
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := l.Checkpoint()
	p, _, _, err := l.ProveTree(3, 7)
	if err != nil {
		t.Fatal(err)
	}
	consistency, err = Encode(NewConsistency(first, cur, vkey, p))
	if err != nil {
		t.Fatal(err)
	}
	return inclusion, consistency, vkey
}

const (
	exampleInclusion   = "testdata/example-inclusion.json"
	exampleConsistency = "testdata/example-consistency.json"
	exampleVerifierKey = "testdata/example.vkey"
	auditingDoc        = "../docs/auditing.md"
)

// TestExampleIsCurrent: the committed worked example is what this code
// writes today (set CUSTODIAN_WRITE_EXAMPLE=1 to write it).
func TestExampleIsCurrent(t *testing.T) {
	inc, con, vkey := exampleFiles(t)
	files := map[string][]byte{exampleInclusion: inc, exampleConsistency: con, exampleVerifierKey: []byte(vkey + "\n")}
	if os.Getenv("CUSTODIAN_WRITE_EXAMPLE") == "1" {
		for name, b := range files {
			if err := os.WriteFile(name, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what custodian writes now (CUSTODIAN_WRITE_EXAMPLE=1 go test ./proof -run TestExampleIsCurrent rewrites it, and docs/auditing.md must then quote it)", name)
		}
	}
}

// TestDocumentedExampleVerifiesIndependently: the worked example of
// docs/auditing.md is quoted there byte for byte and verifies with an
// RFC 6962 / RFC 9162 verifier and a note signature check written here
// from the RFC and the document, sharing no code with x/mod/sumdb.
func TestDocumentedExampleVerifiesIndependently(t *testing.T) {
	doc, err := os.ReadFile(auditingDoc)
	if err != nil {
		t.Fatal(err)
	}
	vkey := strings.TrimSpace(string(mustRead(t, exampleVerifierKey)))
	for _, name := range []string{exampleInclusion, exampleConsistency} {
		b := mustRead(t, name)
		if !bytes.Contains(doc, b) {
			t.Errorf("docs/auditing.md does not quote %s byte for byte", name)
		}
		if err := independentCheck(b, vkey); err != nil {
			t.Errorf("%s: the independent verifier refuses it: %v", name, err)
		}
		if _, err := Check(b, Options{VerifierKey: vkey}); err != nil {
			t.Errorf("%s: Check: %v", name, err)
		}
	}
	if !bytes.Contains(doc, []byte(vkey)) {
		t.Errorf("docs/auditing.md does not name the example's verifier key")
	}
}

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEveryByteChangeFails: changing any byte of a proof file (five
// different changes at every position) makes Check fail, and neither the
// independent verifier nor Check accepts a proof whose hash was changed.
func TestEveryByteChangeFails(t *testing.T) {
	vkey := strings.TrimSpace(string(mustRead(t, exampleVerifierKey)))
	for _, name := range []string{exampleInclusion, exampleConsistency} {
		orig := mustRead(t, name)
		for _, opts := range []Options{{VerifierKey: vkey}, {}} {
			if _, err := Check(orig, opts); err != nil {
				t.Fatalf("%s: the untouched file fails: %v", name, err)
			}
			for i := range orig {
				for _, mask := range []byte{0x01, 0x02, 0x03, 0x20, 0x80} {
					b := bytes.Clone(orig)
					b[i] ^= mask
					if r, err := Check(b, opts); err == nil {
						t.Errorf("%s: byte %d (%q) ^ %#x still checks: %+v", name, i, orig[i], mask, r)
					} else if !errors.Is(err, ErrInvalid) {
						t.Errorf("%s: byte %d: error does not wrap ErrInvalid: %v", name, i, err)
					}
				}
			}
		}
	}
}

// TestInclusionProofsOfEveryEvent: a proof of every event of a ledger
// checks with Check and with the independent verifier; the event is read
// back from the leaf.
func TestInclusionProofsOfEveryEvent(t *testing.T) {
	l, _, vkey := exampleLedger(t)
	n, _ := l.Size()
	for i := int64(0); i < n; i++ {
		lp, err := l.ProveLeaf(i)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Encode(NewInclusion(lp, vkey))
		if err != nil {
			t.Fatal(err)
		}
		r, err := Check(b, Options{VerifierKey: vkey})
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if r.Event.Index != i || !r.KeyTrusted || r.Tree.N != n {
			t.Errorf("event %d: %+v", i, r)
		}
		if err := independentCheck(b, vkey); err != nil {
			t.Errorf("event %d: independent: %v", i, err)
		}
	}
	if _, err := l.ProveLeaf(n); !errors.Is(err, audit.ErrInvalidArgument) {
		t.Errorf("ProveLeaf past the end: %v", err)
	}
}

// TestCheckpointsAndKeys: a consistency proof between two checkpoints
// checks in every direction it should, and fails for another key, a
// reversed pair and checkpoints of another ledger signed by the same key.
func TestConsistencyBetweenCheckpoints(t *testing.T) {
	l, first, vkey := exampleLedger(t)
	cur, _ := l.Checkpoint()
	for _, c := range []struct{ old, new int64 }{{3, 7}, {1, 7}, {7, 7}, {3, 3}} {
		p, _, _, err := l.ProveTree(c.old, c.new)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) == 0 && c.old != c.new {
			t.Fatalf("empty proof %v", c)
		}
	}
	p, _, _, _ := l.ProveTree(3, 7)
	good, _ := Encode(NewConsistency(first, cur, vkey, p))
	r, err := Check(good, Options{VerifierKey: vkey})
	if err != nil || r.Old.N != 3 || r.New.N != 7 || !strings.Contains(r.String(), "only grew") {
		t.Fatalf("consistency 3→7: %v %+v", err, r)
	}
	reversed, _ := Encode(NewConsistency(cur, first, vkey, p))
	if _, err := Check(reversed, Options{VerifierKey: vkey}); err == nil {
		t.Error("a reversed pair checks")
	}
	_, otherKey := seedKeys(t, exampleKeyName, sha256.Sum256([]byte("another key")))
	if _, err := Check(good, Options{VerifierKey: otherKey}); err == nil || !strings.Contains(err.Error(), "is not the key given") {
		t.Errorf("another key: %v", err)
	}
	r, err = Check(good, Options{})
	if err != nil || r.KeyTrusted || !strings.Contains(r.String(), "consistent with itself") {
		t.Errorf("without a key the result must say it proves self-consistency only: %v %v", err, r)
	}

	// A second ledger with the same key but another history: its
	// checkpoint of size 7 is not an extension of the first's size 3.
	skey, _ := seedKeys(t, exampleKeyName, exampleSeed)
	signer, _ := audit.NewSigner(skey)
	l2, err := audit.Open(filepath.Join(t.TempDir(), "other.db"), audit.Options{Signer: signer, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	for i := 0; i < 7; i++ {
		if err := l2.Update(func(tx *audit.Tx) error {
			_, err := tx.Append(audit.Event{Time: exampleTime, Actor: "someone.else", Type: audit.EvDaemonStarted})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	cur2, _ := l2.Checkpoint()
	p2, _, _, _ := l2.ProveTree(3, 7)
	forged, _ := Encode(NewConsistency(first, cur2, vkey, p2))
	if _, err := Check(forged, Options{VerifierKey: vkey}); err == nil || !strings.Contains(err.Error(), "not a prefix") {
		t.Errorf("another history must fail: %v", err)
	}
}

// TestCosign: an auditor's cosignature is a second valid signature line;
// a checkpoint with a signature whose key is not given does not check, a
// changed cosignature fails, and cosigning needs the ledger's signature.
func TestCosign(t *testing.T) {
	l, _, vkey := exampleLedger(t)
	cp, _ := l.Checkpoint()
	skey, avkey, err := GenerateKey("auditor.lin")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := GenerateKey("has space"); err == nil {
		t.Error("a name with a space makes a key")
	}
	cs, err := Cosign(cp, skey, vkey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(cs, cp) || bytes.Count(cs, []byte("\n— ")) != 2 {
		t.Fatalf("cosigned:\n%s", cs)
	}
	got, err := OpenCheckpoint(cs, vkey, avkey)
	if err != nil || len(got.Cosigners) != 1 || got.Cosigners[0] != "auditor.lin" || got.Tree.N != 7 {
		t.Fatalf("OpenCheckpoint: %v %+v", err, got)
	}
	if _, err := OpenCheckpoint(cs, vkey); err == nil || !strings.Contains(err.Error(), "whose key was not given") {
		t.Errorf("an unknown cosignature must be named: %v", err)
	}
	bad := bytes.Clone(cs)
	bad[len(bad)-10] ^= 0x01
	if _, err := OpenCheckpoint(bad, vkey, avkey); err == nil {
		t.Error("a changed cosignature checks")
	}
	if _, err := Cosign(cs, skey, vkey); err == nil {
		t.Error("cosigning twice")
	}
	_, otherKey := seedKeys(t, exampleKeyName, sha256.Sum256([]byte("another key")))
	if _, err := Cosign(cp, skey, otherKey); err == nil {
		t.Error("cosigned a checkpoint the given ledger key did not sign")
	}
	if _, err := Cosign(cp, "PRIVATE+KEY+nonsense", ""); err == nil || strings.Contains(err.Error(), "nonsense") {
		t.Errorf("a bad key must fail without being quoted: %v", err)
	}
}

func TestKeepAndList(t *testing.T) {
	l, first, _ := exampleLedger(t)
	cur, _ := l.Checkpoint()
	dir := filepath.Join(t.TempDir(), "checkpoints")
	if ks, err := ListKept(dir); err != nil || len(ks) != 0 {
		t.Fatalf("missing dir: %v %v", ks, err)
	}
	for _, cp := range [][]byte{cur, first, cur} {
		if _, _, err := KeepCheckpoint(dir, cp); err != nil {
			t.Fatal(err)
		}
	}
	ks, err := ListKept(dir)
	if err != nil || len(ks) != 2 || ks[0].Size != 3 || ks[1].Size != 7 || filepath.Base(ks[1].File) != "checkpoint-7.txt" {
		t.Fatalf("%+v %v", ks, err)
	}
	if b := mustRead(t, ks[0].File); !bytes.Equal(b, first) {
		t.Error("kept file differs from the checkpoint")
	}
	if fi, _ := os.Stat(ks[0].File); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
}

// --- An independent verifier, from RFC 9162 and docs/auditing.md only. ---

func h(b ...[]byte) []byte {
	s := sha256.New()
	for _, x := range b {
		s.Write(x)
	}
	return s.Sum(nil)
}

// independentCheck verifies a proof file with its own JSON reading, note
// signature check and RFC 9162 §2.1.3.2 / §2.1.4.2 algorithms.
func independentCheck(file []byte, vkey string) error {
	var f struct {
		Format, Checkpoint, Old, New string
		VerifierKey                  string `json:"verifier_key"`
		Index                        uint64
		Leaf                         []byte
		Proof                        [][]byte
	}
	if err := json.Unmarshal(file, &f); err != nil {
		return err
	}
	if f.VerifierKey != vkey {
		return errors.New("another verifier key")
	}
	switch f.Format {
	case "custodian-inclusion-proof/v1":
		size, root, err := noteTree(f.Checkpoint, vkey)
		if err != nil {
			return err
		}
		if !inclusionOK(f.Index, size, h([]byte{0}, f.Leaf), f.Proof, root) {
			return errors.New("inclusion path does not lead to the root")
		}
		return nil
	case "custodian-consistency-proof/v1":
		n1, r1, err := noteTree(f.Old, vkey)
		if err != nil {
			return err
		}
		n2, r2, err := noteTree(f.New, vkey)
		if err != nil {
			return err
		}
		if !consistencyOK(n1, n2, r1, r2, f.Proof) {
			return errors.New("consistency proof fails")
		}
		return nil
	}
	return fmt.Errorf("format %q", f.Format)
}

// noteTree checks the Ed25519 signature of the key on a checkpoint note
// and returns the tree size and root hash.
func noteTree(msg, vkey string) (uint64, []byte, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return 0, nil, errors.New("verifier key: want NAME+HASH+KEY")
	}
	key, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(key) != 33 || key[0] != 1 {
		return 0, nil, errors.New("verifier key: not an Ed25519 key")
	}
	keyHash := h([]byte(parts[0]), []byte("\n"), key)[:4]
	if fmt.Sprintf("%x", keyHash) != parts[1] {
		return 0, nil, errors.New("verifier key: key hash mismatch")
	}
	text, sigs, ok := strings.Cut(msg, "\n\n")
	if !ok {
		return 0, nil, errors.New("no signatures")
	}
	text += "\n"
	signed := false
	for _, line := range strings.Split(strings.TrimSuffix(sigs, "\n"), "\n") {
		prefix := "— " + parts[0] + " "
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(line[len(prefix):])
		if err != nil || len(sig) != 68 || !bytes.Equal(sig[:4], keyHash) {
			continue
		}
		signed = ed25519.Verify(key[1:], []byte(text), sig[4:])
	}
	if !signed {
		return 0, nil, errors.New("no valid signature by the key")
	}
	lines := strings.Split(text, "\n")
	if len(lines) != 4 || lines[0] != parts[0] {
		return 0, nil, errors.New("not a checkpoint of this log")
	}
	var size uint64
	if _, err := fmt.Sscanf(lines[1], "%d", &size); err != nil {
		return 0, nil, err
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	return size, root, err
}

// inclusionOK is RFC 9162 §2.1.3.2.
func inclusionOK(index, size uint64, leafHash []byte, path [][]byte, root []byte) bool {
	if index >= size {
		return false
	}
	fn, sn, r := index, size-1, leafHash
	for _, p := range path {
		if sn == 0 {
			return false
		}
		if fn&1 == 1 || fn == sn {
			r = h([]byte{1}, p, r)
			for fn&1 == 0 && fn != 0 {
				fn, sn = fn>>1, sn>>1
			}
		} else {
			r = h([]byte{1}, r, p)
		}
		fn, sn = fn>>1, sn>>1
	}
	return sn == 0 && bytes.Equal(r, root)
}

// consistencyOK is RFC 9162 §2.1.4.2 (with equal sizes: an empty proof
// and equal roots).
func consistencyOK(first, second uint64, firstHash, secondHash []byte, path [][]byte) bool {
	if first == second {
		return len(path) == 0 && bytes.Equal(firstHash, secondHash)
	}
	if first == 0 || first > second || len(path) == 0 {
		return false
	}
	if first&(first-1) == 0 {
		path = append([][]byte{firstHash}, path...)
	}
	fn, sn := first-1, second-1
	for fn&1 == 1 {
		fn, sn = fn>>1, sn>>1
	}
	fr, sr := path[0], path[0]
	for _, c := range path[1:] {
		if sn == 0 {
			return false
		}
		if fn&1 == 1 || fn == sn {
			fr = h([]byte{1}, c, fr)
			sr = h([]byte{1}, c, sr)
			for fn&1 == 0 && fn != 0 {
				fn, sn = fn>>1, sn>>1
			}
		} else {
			sr = h([]byte{1}, sr, c)
		}
		fn, sn = fn>>1, sn>>1
	}
	return bytes.Equal(fr, firstHash) && bytes.Equal(sr, secondHash) && sn == 0
}
