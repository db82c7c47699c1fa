package audit

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

const fixtureSize = 1000

// fixture is a closed ledger file of fixtureSize genEvent events, plus
// the checkpoints signed along the way, built once and copied per test.
type fixture struct {
	path        string
	key         testKey
	checkpoints map[int64][]byte
	snapshots   map[int64][]byte // exported copies of the file
}

var (
	fixtureOnce sync.Once
	fixtureData fixture
	fixtureErr  error
)

func getFixture(t *testing.T) fixture {
	t.Helper()
	fixtureOnce.Do(func() {
		dir, err := os.MkdirTemp("", "audit-fixture")
		if err != nil {
			fixtureErr = err
			return
		}
		// Removed by TestMain.
		fixtureDir = dir
		f := fixture{path: filepath.Join(dir, "ledger.db"), checkpoints: map[int64][]byte{}, snapshots: map[int64][]byte{}}
		skey, vkey, err := GenerateSigningKey("custodian.test/ledger")
		if err != nil {
			fixtureErr = err
			return
		}
		s, err := NewSigner(skey)
		if err != nil {
			fixtureErr = err
			return
		}
		f.key = testKey{skey, vkey, s}
		l, err := Open(f.path, Options{Signer: s, NoSync: true})
		if err != nil {
			fixtureErr = err
			return
		}
		defer l.Close()
		for i := 0; i < fixtureSize; i += 100 {
			fill(t, l, i, i+100)
			cp, err := l.Checkpoint()
			if err != nil {
				fixtureErr = err
				return
			}
			f.checkpoints[int64(i+100)] = cp
			if i+100 == 900 {
				var buf bytes.Buffer
				if _, err := l.Export(&buf); err != nil {
					fixtureErr = err
					return
				}
				f.snapshots[900] = buf.Bytes()
			}
		}
		fixtureData = f
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureData
}

var fixtureDir string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{fixtureDir, benchDir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

// copyFixture returns the path of a private copy of the fixture file.
func copyFixture(t *testing.T) (fixture, string) {
	t.Helper()
	f := getFixture(t)
	data, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ledger.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return f, path
}

// rawUpdate edits the closed ledger file directly, as an attacker with
// write access to the file would.
func rawUpdate(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func verifyFile(t *testing.T, path string, opts VerifyOptions) *Report {
	t.Helper()
	l, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rep, err := Verify(l, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func hasKind(rep *Report, kind string) bool {
	return slices.ContainsFunc(rep.Problems, func(p Problem) bool { return p.Kind == kind })
}

func TestVerifyFresh(t *testing.T) {
	for _, chunk := range []int{4096, 7} {
		old := verifyChunk
		verifyChunk = chunk
		f := getFixture(t)
		var calls, last int64
		rep := verifyFile(t, f.path, VerifyOptions{Progress: func(done, total int64) {
			calls++
			if done < last || total != fixtureSize {
				t.Errorf("progress %d/%d after %d", done, total, last)
			}
			last = done
		}})
		verifyChunk = old
		if !rep.OK || len(rep.Problems) != 0 || rep.FirstBad != -1 {
			t.Fatalf("chunk %d: fresh ledger failed verification:\n%v", chunk, rep)
		}
		if rep.Events != fixtureSize || rep.CheckpointSize != fixtureSize || rep.Datasets != fixtureSize/4 {
			t.Errorf("report %+v", rep)
		}
		if rep.VerifierKey != f.key.vkey || rep.VerifierKeySource != "ledger" {
			t.Errorf("verifier key %q from %q", rep.VerifierKey, rep.VerifierKeySource)
		}
		if calls == 0 || last != fixtureSize {
			t.Errorf("progress: %d calls, last %d", calls, last)
		}
		cp, _ := ParseCheckpoint(f.checkpoints[fixtureSize], f.key.vkey)
		if rep.TreeHash != cp.Hash.String() {
			t.Errorf("tree hash %s, checkpoint %s", rep.TreeHash, cp.Hash)
		}
		if !strings.HasPrefix(rep.String(), "ledger OK") {
			t.Errorf("String: %s", rep)
		}
	}
	// With the trusted key given explicitly.
	f := getFixture(t)
	rep := verifyFile(t, f.path, VerifyOptions{VerifierKey: f.key.vkey})
	if !rep.OK || rep.VerifierKeySource != "options" {
		t.Fatalf("with trusted key:\n%v", rep)
	}
}

func TestVerifyEmpty(t *testing.T) {
	l, _ := openTest(t, newTestKey(t, "test"))
	rep, err := Verify(l, VerifyOptions{})
	if err != nil || !rep.OK || rep.Events != 0 {
		t.Fatalf("empty ledger: %v\n%v", err, rep)
	}
}

func eventKey(i int64) []byte { return u64(i) }

func getEvent(t *testing.T, tx *bolt.Tx, i int64) []byte {
	t.Helper()
	v := tx.Bucket(bucketEvents).Get(eventKey(i))
	if v == nil {
		t.Fatalf("event %d missing", i)
	}
	return bytes.Clone(v)
}

// recomputeHashes rewrites the hashes bucket from the (tampered) events,
// as an attacker who knows the format but not the key would.
func recomputeHashes(tx *bolt.Tx) error {
	if err := tx.DeleteBucket(bucketHashes); err != nil {
		return err
	}
	hb, err := tx.CreateBucket(bucketHashes)
	if err != nil {
		return err
	}
	c := tx.Bucket(bucketEvents).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		n, _ := parseIndex(k)
		hs, err := tlog.StoredHashes(n, v, bucketHashReader{hb})
		if err != nil {
			return err
		}
		for i := range hs {
			if err := hb.Put(u64(tlog.StoredHashIndex(0, n)+int64(i)), bytes.Clone(hs[i][:])); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestVerifyTamper(t *testing.T) {
	f := getFixture(t)
	other := newTestKey(t, "custodian.test/ledger")
	// Dataset ds-000100: events 400 (received), 401 (verified), 402 (accessed).
	tests := []struct {
		name      string
		tamper    func(t *testing.T, tx *bolt.Tx) error
		opts      VerifyOptions
		firstBad  int64
		kind      string
		trustedOK bool // true if only a trusted key or kept checkpoint detects it
	}{
		{
			name: "flip byte in middle of event",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				v := getEvent(t, tx, 500)
				v[len(v)/2] ^= 0x01
				return tx.Bucket(bucketEvents).Put(eventKey(500), v)
			},
			firstBad: 500, kind: ProblemHash,
		},
		{
			name: "flip first byte of first event",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				v := getEvent(t, tx, 0)
				v[0] ^= 0x20
				return tx.Bucket(bucketEvents).Put(eventKey(0), v)
			},
			firstBad: 0, kind: ProblemDecode,
		},
		{
			name: "flip last byte of last event",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				v := getEvent(t, tx, fixtureSize-1)
				v[len(v)-1] ^= 0x40
				return tx.Bucket(bucketEvents).Put(eventKey(fixtureSize-1), v)
			},
			firstBad: fixtureSize - 1, kind: ProblemDecode,
		},
		{
			name: "rewrite actor keeping valid JSON",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				v := getEvent(t, tx, 402)
				v = bytes.Replace(v, []byte("a.analyst@"), []byte("b.analyst@"), 1)
				return tx.Bucket(bucketEvents).Put(eventKey(402), v)
			},
			firstBad: 402, kind: ProblemHash,
		},
		{
			name: "non-canonical whitespace",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				v := getEvent(t, tx, 7)
				v = append(bytes.Clone(v[:len(v)-1]), ' ', '}')
				return tx.Bucket(bucketEvents).Put(eventKey(7), v)
			},
			firstBad: 7, kind: ProblemNonCanonical,
		},
		{
			name: "modify event and recompute stored hashes",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				v := getEvent(t, tx, 402)
				v = bytes.Replace(v, []byte("a.analyst@"), []byte("b.analyst@"), 1)
				if err := tx.Bucket(bucketEvents).Put(eventKey(402), v); err != nil {
					return err
				}
				return recomputeHashes(tx)
			},
			firstBad: -1, kind: ProblemCheckpoint,
		},
		{
			name: "delete event",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				return tx.Bucket(bucketEvents).Delete(eventKey(300))
			},
			firstBad: 300, kind: ProblemMissing,
		},
		{
			name: "delete first event",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				return tx.Bucket(bucketEvents).Delete(eventKey(0))
			},
			firstBad: 0, kind: ProblemMissing,
		},
		{
			name: "modify dataset record",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				b := tx.Bucket(bucketDatasets)
				v := bytes.Replace(b.Get([]byte("ds-000100")), []byte(`"state":"verified"`), []byte(`"state":"held"`), 1)
				return b.Put([]byte("ds-000100"), v)
			},
			firstBad: 401, kind: ProblemDataset,
		},
		{
			name: "delete dataset record",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				return tx.Bucket(bucketDatasets).Delete([]byte("ds-000100"))
			},
			firstBad: 401, kind: ProblemDataset,
		},
		{
			name: "dataset record without events",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				return tx.Bucket(bucketDatasets).Put([]byte("ghost"), []byte(`{"id":"ghost"}`))
			},
			firstBad: -1, kind: ProblemDataset,
		},
		{
			name: "delete timeline entry",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				return tx.Bucket(bucketTimeline).Delete(timelineKey("ds-000100", 402))
			},
			firstBad: 402, kind: ProblemTimeline,
		},
		{
			name: "timeline entry pointing elsewhere",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				return tx.Bucket(bucketTimeline).Put(timelineKey("ds-000100", 403), []byte{})
			},
			firstBad: 403, kind: ProblemTimeline,
		},
		{
			name: "remote index points elsewhere",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				return tx.Bucket(bucketRemote).Put(remoteKey("registry-a", "/out/extract-000100.csv.gpg"), []byte("ds-000101"))
			},
			firstBad: 400, kind: ProblemRemote,
		},
		{
			name: "remote index entry deleted",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				return tx.Bucket(bucketRemote).Delete(remoteKey("registry-a", "/out/extract-000100.csv.gpg"))
			},
			firstBad: 400, kind: ProblemRemote,
		},
		{
			name: "stored tree hash modified",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				s := tlog.StoredHashIndex(3, 5) // covers events 40..47, stored with event 47
				return tx.Bucket(bucketHashes).Put(u64(s), make([]byte, 32))
			},
			firstBad: 47, kind: ProblemHash,
		},
		{
			name: "event appended without signature",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				ev := Event{Index: fixtureSize, Time: baseTime, Actor: "mallory", Type: EvRemoteDelete}
				leaf, _, err := encodeEvent(&ev)
				if err != nil {
					return err
				}
				if err := tx.Bucket(bucketEvents).Put(eventKey(fixtureSize), leaf); err != nil {
					return err
				}
				return tx.Bucket(bucketMeta).Put(keySize, u64(fixtureSize+1))
			},
			firstBad: fixtureSize, kind: ProblemUnsignedTail,
		},
		{
			name: "older genuine checkpoint restored",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(keyCheckpoint, f.checkpoints[900])
			},
			firstBad: 900, kind: ProblemUnsignedTail,
		},
		{
			name: "truncated: last events and hashes deleted, size rewritten",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				return truncate(tx, 900, nil)
			},
			firstBad: 900, kind: ProblemTruncated,
		},
		{
			name: "truncated with genuine old checkpoint, kept later checkpoint",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				return truncate(tx, 900, f.checkpoints[900])
			},
			opts:     VerifyOptions{Checkpoint: f.checkpoints[fixtureSize]},
			firstBad: 900, kind: ProblemTruncated, trustedOK: true,
		},
		{
			name: "checkpoint signed by another key",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				cp, _ := ParseCheckpoint(f.checkpoints[fixtureSize], f.key.vkey)
				forged, err := signCheckpoint(other.signer, cp)
				if err != nil {
					return err
				}
				return tx.Bucket(bucketMeta).Put(keyCheckpoint, forged)
			},
			firstBad: -1, kind: ProblemCheckpoint,
		},
		{
			name: "checkpoint and verifier key replaced",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				cp, _ := ParseCheckpoint(f.checkpoints[fixtureSize], f.key.vkey)
				forged, err := signCheckpoint(other.signer, cp)
				if err != nil {
					return err
				}
				if err := tx.Bucket(bucketMeta).Put(keyVerifierKey, []byte(other.vkey)); err != nil {
					return err
				}
				return tx.Bucket(bucketMeta).Put(keyCheckpoint, forged)
			},
			opts:     VerifyOptions{VerifierKey: f.key.vkey},
			firstBad: -1, kind: ProblemCheckpoint, trustedOK: true,
		},
		{
			name: "bucket nested in events",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				b := tx.Bucket(bucketEvents)
				if err := b.Delete(eventKey(600)); err != nil {
					return err
				}
				_, err := b.CreateBucket(eventKey(600))
				return err
			},
			firstBad: 600, kind: ProblemDecode,
		},
		{
			name: "malformed event key",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				return tx.Bucket(bucketEvents).Put([]byte{0, 0, 0, 0, 0, 0, 0, 0, 1}, getEvent(t, tx, 1))
			},
			firstBad: 1, kind: ProblemStructure,
		},
		{
			name: "garbage meta size",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(keySize, []byte("lots"))
			},
			firstBad: -1, kind: ProblemMeta,
		},
		{
			name: "garbage checkpoint",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(keyCheckpoint, []byte("go.sum database tree\n1000\nAAAA\n\n— x\n"))
			},
			firstBad: -1, kind: ProblemCheckpoint,
		},
		{
			name: "timeline bucket deleted",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				return tx.DeleteBucket(bucketTimeline)
			},
			firstBad: 0, kind: ProblemStructure,
		},
		{
			name: "checkpoint signature bytes altered",
			tamper: func(t *testing.T, tx *bolt.Tx) error {
				cp := bytes.Clone(f.checkpoints[fixtureSize])
				i := bytes.LastIndexByte(cp[:len(cp)-1], ' ') + 8
				cp[i] ^= 0x01
				return tx.Bucket(bucketMeta).Put(keyCheckpoint, cp)
			},
			firstBad: -1, kind: ProblemCheckpoint,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, path := copyFixture(t)
			rawUpdate(t, path, func(tx *bolt.Tx) error { return tt.tamper(t, tx) })
			if tt.trustedOK || testing.Verbose() {
				// Without the independent evidence the tampering is invisible.
				if rep := verifyFile(t, path, VerifyOptions{}); !rep.OK {
					t.Logf("note: detected without trusted input too:\n%v", rep)
				}
			}
			rep := verifyFile(t, path, tt.opts)
			if rep.OK {
				t.Fatalf("tampering not detected:\n%v", rep)
			}
			if rep.FirstBad != tt.firstBad {
				t.Errorf("FirstBad %d, want %d\n%v", rep.FirstBad, tt.firstBad, rep)
			}
			if !hasKind(rep, tt.kind) {
				t.Errorf("no %q problem\n%v", tt.kind, rep)
			}
			s := rep.String()
			if !strings.Contains(s, "FAILED") {
				t.Errorf("String: %s", s)
			}
			if tt.firstBad >= 0 && !strings.Contains(s, "first entry that does not match: event "+itoa(tt.firstBad)) {
				t.Errorf("String does not name event %d:\n%s", tt.firstBad, s)
			}
		})
	}
}

// TestVerifyRandomFlips flips random bits in random events: each must be
// caught and named as the first bad entry.
func TestVerifyRandomFlips(t *testing.T) {
	f := getFixture(t)
	data, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	n := 40
	if testing.Short() {
		n = 5
	}
	for range n {
		idx := rng.Int64N(fixtureSize)
		path := filepath.Join(t.TempDir(), "ledger.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var pos int
		var bit byte
		rawUpdate(t, path, func(tx *bolt.Tx) error {
			v := getEvent(t, tx, idx)
			pos, bit = rng.IntN(len(v)), byte(1)<<rng.IntN(8)
			v[pos] ^= bit
			return tx.Bucket(bucketEvents).Put(eventKey(idx), v)
		})
		rep := verifyFile(t, path, VerifyOptions{VerifierKey: f.key.vkey})
		if rep.OK || rep.FirstBad != idx {
			t.Errorf("bit %#x at byte %d of event %d: FirstBad %d\n%v", bit, pos, idx, rep.FirstBad, rep)
		}
	}
}

// TestVerifyManyProblems checks that long problem lists are capped but
// keep the first bad entry.
func TestVerifyManyProblems(t *testing.T) {
	_, path := copyFixture(t)
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		for i := int64(fixtureSize - 1); i >= 300; i-- {
			v := bytes.Replace(getEvent(t, tx, i), []byte(`"actor":"`), []byte(`"actor":"x`), 1)
			if err := tx.Bucket(bucketEvents).Put(eventKey(i), v); err != nil {
				return err
			}
		}
		return nil
	})
	rep := verifyFile(t, path, VerifyOptions{})
	if rep.OK || rep.FirstBad != 300 || rep.Omitted == 0 || len(rep.Problems) > 2*maxProblemsPerKind {
		t.Fatalf("FirstBad %d, %d problems listed, %d omitted", rep.FirstBad, len(rep.Problems), rep.Omitted)
	}
	if rep.Problems[0].Index != 300 {
		t.Errorf("first listed problem %v", rep.Problems[0])
	}
	if !strings.Contains(rep.String(), "more") {
		t.Errorf("String does not mention omitted problems:\n%s", rep)
	}
}

func itoa(i int64) string { b, _ := json.Marshal(i); return string(b) }

// truncate deletes events from n on and their stored hashes, rewrites the
// size and, if cp is set, installs it as the checkpoint.
func truncate(tx *bolt.Tx, n int64, cp []byte) error {
	for _, b := range []struct {
		name []byte
		from int64
	}{{bucketEvents, n}, {bucketHashes, tlog.StoredHashIndex(0, n)}} {
		bk := tx.Bucket(b.name)
		c := bk.Cursor()
		for k, _ := c.Seek(u64(b.from)); k != nil; k, _ = c.Seek(u64(b.from)) {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
	}
	meta := tx.Bucket(bucketMeta)
	if err := meta.Put(keySize, u64(n)); err != nil {
		return err
	}
	if cp != nil {
		return meta.Put(keyCheckpoint, cp)
	}
	return nil
}

// TestVerifyRollback replaces the ledger by a genuine older copy: only a
// checkpoint kept outside the file reveals it.
func TestVerifyRollback(t *testing.T) {
	f := getFixture(t)
	path := filepath.Join(t.TempDir(), "ledger.db")
	if err := os.WriteFile(path, f.snapshots[900], 0o600); err != nil {
		t.Fatal(err)
	}
	if rep := verifyFile(t, path, VerifyOptions{VerifierKey: f.key.vkey}); !rep.OK || rep.Events != 900 {
		t.Fatalf("older copy on its own:\n%v", rep)
	}
	rep := verifyFile(t, path, VerifyOptions{VerifierKey: f.key.vkey, Checkpoint: f.checkpoints[fixtureSize]})
	if rep.OK || rep.FirstBad != 900 || !hasKind(rep, ProblemTruncated) {
		t.Fatalf("rollback not reported as truncation at 900:\n%v", rep)
	}
	if !strings.Contains(rep.String(), "first entry that does not match: event 900") {
		t.Errorf("String:\n%s", rep)
	}
}

func TestVerifyKeptCheckpoint(t *testing.T) {
	key := newTestKey(t, "custodian.test/ledger")
	l, _ := openTest(t, key)
	fill(t, l, 0, 10)
	kept, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	fill(t, l, 10, 110)
	rep, err := Verify(l, VerifyOptions{VerifierKey: key.vkey, Checkpoint: kept})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.KeptCheckpointSize != 10 || rep.CheckpointSize != 110 {
		t.Fatalf("kept checkpoint at 10, log at 110:\n%v", rep)
	}
	if !strings.Contains(rep.String(), "consistent with kept checkpoint of size 10") {
		t.Errorf("String: %s", rep)
	}
	current, _ := l.Checkpoint()
	if rep, _ := Verify(l, VerifyOptions{Checkpoint: current}); !rep.OK {
		t.Fatalf("kept checkpoint = current:\n%v", rep)
	}

	// A ledger with the same key whose history diverges at event 5.
	fork, _ := openTest(t, key)
	fill(t, fork, 0, 5)
	if err := fork.Update(func(tx *Tx) error {
		_, err := tx.Append(Event{Time: baseTime, Actor: "mallory", Type: EvJobFinished})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	fill(t, fork, 6, 10)
	forked, _ := fork.Checkpoint()
	rep, _ = Verify(l, VerifyOptions{VerifierKey: key.vkey, Checkpoint: forked})
	if rep.OK || !hasKind(rep, ProblemCheckpoint) {
		t.Fatalf("forked history accepted:\n%v", rep)
	}

	// A kept checkpoint signed by another key proves nothing.
	other := newTestKey(t, "custodian.test/ledger")
	tree, _ := ParseCheckpoint(kept, key.vkey)
	foreign, _ := signCheckpoint(other.signer, tree)
	rep, _ = Verify(l, VerifyOptions{Checkpoint: foreign})
	if rep.OK || !hasKind(rep, ProblemCheckpoint) {
		t.Fatalf("foreign kept checkpoint accepted:\n%v", rep)
	}
	rep, _ = Verify(l, VerifyOptions{Checkpoint: []byte("garbage")})
	if rep.OK {
		t.Fatal("garbage kept checkpoint accepted")
	}
}

func TestVerifyBadOptions(t *testing.T) {
	l, _ := openTest(t, newTestKey(t, "test"))
	if _, err := Verify(l, VerifyOptions{VerifierKey: "not a key"}); err == nil {
		t.Error("malformed verifier key accepted")
	}
	if _, err := Verify(nil, VerifyOptions{}); err == nil {
		t.Error("nil ledger accepted")
	}
}

func TestExportVerify(t *testing.T) {
	key := newTestKey(t, "custodian.test/ledger")
	l, _ := openTest(t, key)
	fill(t, l, 0, 300)
	var buf bytes.Buffer
	n, err := l.Export(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("Export = %d, %v (buffer %d)", n, err, buf.Len())
	}
	path := filepath.Join(t.TempDir(), "export.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := verifyFile(t, path, VerifyOptions{VerifierKey: key.vkey})
	if !rep.OK || rep.Events != 300 {
		t.Fatalf("exported copy:\n%v", rep)
	}
	orig, _ := Verify(l, VerifyOptions{})
	if orig.TreeHash != rep.TreeHash {
		t.Error("export has a different tree hash")
	}
	cp, _ := l.Checkpoint()
	c, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ccp, _ := c.Checkpoint(); !bytes.Equal(ccp, cp) {
		t.Error("export has a different checkpoint")
	}
	if vk, _ := c.VerifierKey(); vk != key.vkey {
		t.Errorf("export verifier key %q", vk)
	}
}

// TestUpdateRefusesCorruptLog checks that a writer does not extend a log
// whose size record disagrees with its events.
func TestUpdateRefusesCorruptLog(t *testing.T) {
	f, path := copyFixture(t)
	rawUpdate(t, path, func(tx *bolt.Tx) error { return truncate(tx, 900, f.checkpoints[900]) })
	rawUpdate(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySize, u64(950)) })
	l, err := Open(path, Options{Signer: f.key.signer})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = l.Update(func(tx *Tx) error {
		_, err := tx.Append(Event{Actor: "a", Type: EvJobStarted})
		return err
	})
	if err == nil {
		t.Fatal("append to corrupt log succeeded")
	}
}
