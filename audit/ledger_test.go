package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

func TestAppendReadBack(t *testing.T) {
	key := newTestKey(t, "test.example/ledger")
	l, _ := openTest(t, key)

	if _, err := l.Checkpoint(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Checkpoint on empty ledger: %v, want ErrEmpty", err)
	}
	if _, err := l.VerifierKey(); !errors.Is(err, ErrNoVerifierKey) {
		t.Fatalf("VerifierKey before first update: %v, want ErrNoVerifierKey", err)
	}

	var appended []Event
	err := l.Update(func(tx *Tx) error {
		for i := range 8 {
			ev, err := tx.Append(genEvent(i))
			if err != nil {
				return err
			}
			appended = append(appended, ev)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range appended {
		if ev.Index != int64(i) {
			t.Errorf("event %d: Index %d", i, ev.Index)
		}
	}

	got, err := l.Events(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(appended) {
		t.Fatalf("Events: %d events, want %d", len(got), len(appended))
	}
	for i := range got {
		a, _ := json.Marshal(got[i])
		b, _ := json.Marshal(appended[i])
		if !bytes.Equal(a, b) {
			t.Errorf("event %d read back as\n%s\nappended as\n%s", i, a, b)
		}
	}
	page, err := l.Events(3, 2)
	if err != nil || len(page) != 2 || page[0].Index != 3 || page[1].Index != 4 {
		t.Fatalf("Events(3, 2) = %v, %v", page, err)
	}
	if rest, err := l.Events(100, 10); err != nil || len(rest) != 0 {
		t.Fatalf("Events(100, 10) = %v, %v", rest, err)
	}
	if _, err := l.Events(-1, 10); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Events(-1): %v", err)
	}

	if n, err := l.Size(); err != nil || n != 8 {
		t.Fatalf("Size = %d, %v", n, err)
	}
	d, ok, err := l.Dataset("ds-000001")
	if err != nil || !ok {
		t.Fatalf("Dataset: %v %v", ok, err)
	}
	if d.State != StateVerified {
		t.Errorf("dataset state %q, want %q", d.State, StateVerified)
	}
	all, err := l.Datasets()
	if err != nil || len(all) != 2 || all[0].ID != "ds-000000" || all[1].ID != "ds-000001" {
		t.Fatalf("Datasets = %+v, %v", all, err)
	}

	vkey, err := l.VerifierKey()
	if err != nil || vkey != key.vkey {
		t.Fatalf("VerifierKey = %q, %v; want %q", vkey, err, key.vkey)
	}
	cp, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	tree, err := ParseCheckpoint(cp, key.vkey)
	if err != nil {
		t.Fatal(err)
	}
	if tree.N != 8 {
		t.Errorf("checkpoint size %d, want 8", tree.N)
	}
}

func TestAppendDefaults(t *testing.T) {
	l, _ := openTest(t, newTestKey(t, "test"))
	paris := time.FixedZone("CET", 3600)
	details := map[string]string{"k": "v"}
	in := Event{
		Index:   42, // ignored
		Actor:   "alice",
		Type:    "dataset.received",
		Details: details,
		Dataset: &Dataset{ID: "d1", State: StateHeld, RemoteMtime: time.Date(2025, 1, 2, 3, 4, 5, 6, paris)},
	}
	var out Event
	before := time.Now()
	err := l.Update(func(tx *Tx) (err error) {
		out, err = tx.Append(in)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	details["k"] = "changed" // must not affect the stored event
	if out.Index != 0 || out.DatasetID != "d1" {
		t.Errorf("Index %d DatasetID %q", out.Index, out.DatasetID)
	}
	if out.Time.Location() != time.UTC || out.Time.Before(before.Add(-time.Second)) {
		t.Errorf("Time %v not defaulted to now UTC", out.Time)
	}
	if !out.Dataset.ReceivedAt.Equal(out.Time) || !out.Dataset.UpdatedAt.Equal(out.Time) {
		t.Errorf("ReceivedAt %v UpdatedAt %v, want %v", out.Dataset.ReceivedAt, out.Dataset.UpdatedAt, out.Time)
	}
	if out.Dataset.RemoteMtime.Location() != time.UTC || !out.Dataset.RemoteMtime.Equal(in.Dataset.RemoteMtime) {
		t.Errorf("RemoteMtime %v", out.Dataset.RemoteMtime)
	}
	evs, err := l.Events(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if evs[0].Details["k"] != "v" {
		t.Errorf("stored details %v", evs[0].Details)
	}
	// A later state keeps ReceivedAt.
	err = l.Update(func(tx *Tx) error {
		_, err := tx.Append(Event{Actor: "bob", Type: EvDatasetReleased, Time: out.Time.Add(time.Hour),
			Dataset: &Dataset{ID: "d1", State: StateVerified}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := l.Dataset("d1")
	if err != nil {
		t.Fatal(err)
	}
	if !d.ReceivedAt.Equal(out.Time) || !d.UpdatedAt.Equal(out.Time.Add(time.Hour)) {
		t.Errorf("ReceivedAt %v UpdatedAt %v", d.ReceivedAt, d.UpdatedAt)
	}
}

func TestAppendValidation(t *testing.T) {
	l, _ := openTest(t, newTestKey(t, "test"))
	ok := Event{Actor: "alice", Type: EvJobStarted}
	tests := []struct {
		name string
		ev   Event
		want error
	}{
		{"no actor", Event{Type: EvJobStarted}, ErrInvalidEvent},
		{"blank actor", Event{Actor: "  ", Type: EvJobStarted}, ErrInvalidEvent},
		{"no type", Event{Actor: "alice"}, ErrInvalidEvent},
		{"invalid utf8", Event{Actor: "al\xffice", Type: EvJobStarted}, ErrInvalidEvent},
		{"invalid utf8 in details", Event{Actor: "a", Type: EvJobStarted, Details: map[string]string{"k": "\xff"}}, ErrInvalidEvent},
		{"NUL in dataset id", Event{Actor: "a", Type: EvJobStarted, DatasetID: "a\x00b"}, ErrInvalidEvent},
		{"long dataset id", Event{Actor: "a", Type: EvJobStarted, DatasetID: strings.Repeat("x", MaxIDSize+1)}, ErrInvalidEvent},
		{"dataset id mismatch", Event{Actor: "a", Type: EvJobStarted, DatasetID: "a", Dataset: &Dataset{ID: "b", State: "s"}}, ErrInvalidEvent},
		{"dataset without id", Event{Actor: "a", Type: EvJobStarted, Dataset: &Dataset{State: "s"}}, ErrInvalidEvent},
		{"dataset without state", Event{Actor: "a", Type: EvJobStarted, Dataset: &Dataset{ID: "d"}}, ErrInvalidEvent},
		{"NUL in source", Event{Actor: "a", Type: EvJobStarted, Dataset: &Dataset{ID: "d", State: "s", Source: "a\x00"}}, ErrInvalidEvent},
		{"time out of range", Event{Actor: "a", Type: EvJobStarted, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, ErrInvalidEvent},
		{"too large", Event{Actor: "a", Type: EvJobStarted, Details: map[string]string{"blob": strings.Repeat("x", MaxEventSize)}}, ErrInvalidEvent},
	}
	err := l.Update(func(tx *Tx) error {
		for _, tt := range tests {
			if _, err := tx.Append(tt.ev); !errors.Is(err, tt.want) {
				t.Errorf("%s: Append error %v, want %v", tt.name, err, tt.want)
			}
			// A rejected event leaves the transaction usable.
			ev, err := tx.Append(ok)
			if err != nil {
				t.Fatalf("%s: valid append after rejection: %v", tt.name, err)
			}
			if ev.Index != tx.Size()-1 {
				t.Fatalf("%s: index %d, size %d", tt.name, ev.Index, tx.Size())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(l, VerifyOptions{})
	if err != nil || !rep.OK || rep.Events != int64(len(tests)) {
		t.Fatalf("Verify after rejections: %v\n%v", err, rep)
	}
}

func TestUpdateAtomic(t *testing.T) {
	l, _ := openTest(t, newTestKey(t, "test"))
	fill(t, l, 0, 1) // ds-000000 received, held
	cp0, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}

	// A state change and its event commit together ...
	err = l.Update(func(tx *Tx) error {
		d, ok, err := tx.Dataset("ds-000000")
		if err != nil || !ok {
			return errors.Join(err, errors.New("dataset missing"))
		}
		d.State, d.Reason = StateVerified, "released: sequence gap explained"
		if _, err := tx.Append(Event{Actor: "bob", Type: EvDatasetReleased, Dataset: &d}); err != nil {
			return err
		}
		// ... and are visible inside the transaction.
		if d2, _, _ := tx.Dataset("ds-000000"); d2.State != StateVerified {
			t.Errorf("state in tx %q", d2.State)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if d, _, _ := l.Dataset("ds-000000"); d.State != StateVerified {
		t.Fatalf("state %q after commit", d.State)
	}
	cp1, _ := l.Checkpoint()

	// If fn fails, nothing is written: no event, no state, no index, no checkpoint.
	boom := errors.New("boom")
	err = l.Update(func(tx *Tx) error {
		if _, err := tx.Append(Event{Actor: "bob", Type: EvDatasetSuperseded, DatasetID: "ds-000000"}); err != nil {
			return err
		}
		nd := testDataset(99, StateUnverified)
		if _, err := tx.Append(Event{Actor: "bob", Type: "dataset.received", Dataset: nd}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update error %v, want boom", err)
	}
	if n, _ := l.Size(); n != 2 {
		t.Errorf("size %d after failed update, want 2", n)
	}
	if d, _, _ := l.Dataset("ds-000000"); d.State != StateVerified {
		t.Errorf("state %q after failed update", d.State)
	}
	if _, ok, _ := l.Dataset("ds-000099"); ok {
		t.Error("dataset of failed update exists")
	}
	if _, ok, _ := l.RemoteDataset("registry-a", "/out/extract-000099.csv.gpg"); ok {
		t.Error("remote entry of failed update exists")
	}
	if tl, _ := l.Timeline("ds-000099"); len(tl) != 0 {
		t.Error("timeline of failed update exists")
	}
	if cp, _ := l.Checkpoint(); !bytes.Equal(cp, cp1) || bytes.Equal(cp, cp0) {
		t.Error("checkpoint changed by failed update")
	}
	if rep, err := Verify(l, VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("Verify: %v\n%v", err, rep)
	}
}

func TestTxClosed(t *testing.T) {
	l, _ := openTest(t, newTestKey(t, "test"))
	var saved *Tx
	if err := l.Update(func(tx *Tx) error { saved = tx; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := saved.Append(Event{Actor: "a", Type: EvJobStarted}); !errors.Is(err, ErrTxClosed) {
		t.Errorf("Append after Update: %v", err)
	}
	if _, _, err := saved.Dataset("x"); !errors.Is(err, ErrTxClosed) {
		t.Errorf("Dataset after Update: %v", err)
	}
}

func TestTimeline(t *testing.T) {
	l, _ := openTest(t, newTestKey(t, "test"))
	// "a" is a prefix of "ab": the index must not mix them up.
	ids := []string{"a", "ab", "a", "b", "ab", "a", ""}
	err := l.Update(func(tx *Tx) error {
		for _, id := range ids {
			if _, err := tx.Append(Event{Actor: "x", Type: EvJobStarted, DatasetID: id}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id   string
		want []int64
	}{
		{"a", []int64{0, 2, 5}},
		{"ab", []int64{1, 4}},
		{"b", []int64{3}},
		{"c", nil},
	}
	for _, tt := range tests {
		evs, err := l.Timeline(tt.id)
		if err != nil {
			t.Fatalf("Timeline(%q): %v", tt.id, err)
		}
		var got []int64
		for _, ev := range evs {
			got = append(got, ev.Index)
			if ev.DatasetID != tt.id {
				t.Errorf("Timeline(%q) returned event of %q", tt.id, ev.DatasetID)
			}
		}
		if !equalInts(got, tt.want) {
			t.Errorf("Timeline(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
	for _, bad := range []string{"", "a\x00"} {
		if _, err := l.Timeline(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Timeline(%q): %v", bad, err)
		}
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRemoteDataset(t *testing.T) {
	l, _ := openTest(t, newTestKey(t, "test"))
	d := testDataset(1, StateHeld)
	err := l.Update(func(tx *Tx) error {
		if _, ok, _ := tx.RemoteDataset(d.Source, d.RemotePath); ok {
			t.Error("remote known before append")
		}
		if _, err := tx.Append(Event{Actor: "x", Type: "dataset.received", Dataset: d}); err != nil {
			return err
		}
		if id, ok, err := tx.RemoteDataset(d.Source, d.RemotePath); err != nil || !ok || id != d.ID {
			t.Errorf("in tx: RemoteDataset = %q %v %v", id, ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if id, ok, err := l.RemoteDataset(d.Source, d.RemotePath); err != nil || !ok || id != d.ID {
		t.Errorf("RemoteDataset = %q %v %v", id, ok, err)
	}
	// Keys are unambiguous: ("registry-a", path) is not ("registry", "-a"+...).
	if _, ok, _ := l.RemoteDataset("registry", "-a\x00"+d.RemotePath); ok {
		t.Error("ambiguous remote key")
	}
	if _, ok, _ := l.RemoteDataset(d.Source, d.RemotePath+"x"); ok {
		t.Error("unknown path found")
	}

	tests := []struct {
		name string
		ds   *Dataset
		want error
	}{
		{"same remote, other dataset", func() *Dataset { o := testDataset(2, StateUnverified); o.RemotePath = d.RemotePath; return o }(), ErrDuplicateRemote},
		{"remote path changed", func() *Dataset { o := *d; o.RemotePath = "/elsewhere"; return &o }(), ErrInvalidEvent},
		{"source changed", func() *Dataset { o := *d; o.Source = "registry-b"; return &o }(), ErrInvalidEvent},
		{"same remote, same dataset", func() *Dataset { o := *d; o.State = StateVerified; return &o }(), nil},
		{"same path, other source", func() *Dataset {
			o := testDataset(3, StateUnverified)
			o.Source = "registry-b"
			o.RemotePath = d.RemotePath
			return o
		}(), nil},
	}
	for _, tt := range tests {
		err := l.Update(func(tx *Tx) error {
			typ := EvDatasetReceived
			if tt.ds.ID == d.ID {
				typ = EvDatasetReleased
			}
			_, err := tx.Append(Event{Actor: "x", Type: typ, Dataset: tt.ds})
			return err
		})
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if id, _, _ := l.RemoteDataset(d.Source, d.RemotePath); id != d.ID {
		t.Errorf("remote now maps to %q", id)
	}
	if id, _, _ := l.RemoteDataset("registry-b", d.RemotePath); id != "ds-000003" {
		t.Errorf("registry-b maps to %q", id)
	}
	if rep, err := Verify(l, VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("Verify: %v\n%v", err, rep)
	}
}

func TestOpenModes(t *testing.T) {
	key := newTestKey(t, "test")
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.db")

	if _, err := Open(path, Options{ReadOnly: true}); err == nil {
		t.Fatal("read-only open of a missing file succeeded")
	}
	l, err := Open(path, Options{Signer: key.signer})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %v, want 0600", perm)
	}
	fill(t, l, 0, 10)

	// A second handle cannot get the lock while the writer holds it.
	if _, err := Open(path, Options{ReadOnly: true, Timeout: 50 * time.Millisecond}); err == nil {
		t.Error("second open while locked succeeded")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Without a signer, and read-only, updates fail.
	for _, opts := range []Options{{}, {ReadOnly: true}, {ReadOnly: true, Signer: key.signer}} {
		r, err := Open(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Update(func(*Tx) error { return nil }); !errors.Is(err, ErrReadOnly) {
			t.Errorf("%+v: Update: %v, want ErrReadOnly", opts, err)
		}
		if n, err := r.Size(); err != nil || n != 10 {
			t.Errorf("Size = %d, %v", n, err)
		}
		r.Close()
	}

	// Another key may not extend this ledger.
	other := newTestKey(t, "test")
	if _, err := Open(path, Options{Signer: other.signer}); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("open with other key: %v, want ErrKeyMismatch", err)
	}
	// A signer's key must match Options.VerifierKey.
	if _, err := Open(path, Options{Signer: key.signer, VerifierKey: other.vkey}); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("open with mismatched verifier key: %v, want ErrKeyMismatch", err)
	}
}

func TestOpenForeignFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("something"))
		return err
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); !errors.Is(err, ErrFormat) {
		t.Errorf("Open foreign bbolt file: %v, want ErrFormat", err)
	}
	if err := os.WriteFile(path, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{Timeout: 50 * time.Millisecond}); err == nil {
		t.Error("Open of garbage succeeded")
	}
}

func TestSigner(t *testing.T) {
	skey, vkey, err := GenerateSigningKey("custodian.example/ledger")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	ks, ok := s.(KeyedSigner)
	if !ok || ks.VerifierKey() != vkey {
		t.Fatalf("derived verifier key %q, want %q", ks.VerifierKey(), vkey)
	}
	if _, err := NewSigner(vkey); err == nil {
		t.Error("NewSigner accepted a verifier key")
	} else if strings.Contains(err.Error(), vkey) {
		t.Error("error message contains key material")
	}
	msg, err := signCheckpoint(s, tlog.Tree{N: 3})
	if err != nil {
		t.Fatal(err)
	}
	if tree, err := ParseCheckpoint(msg, vkey); err != nil || tree.N != 3 {
		t.Errorf("ParseCheckpoint = %v, %v", tree, err)
	}
	_, otherV, _ := GenerateSigningKey("custodian.example/ledger")
	if _, err := ParseCheckpoint(msg, otherV); err == nil {
		t.Error("checkpoint accepted with another key")
	}
}

func TestCanonicalEncoding(t *testing.T) {
	evs := []Event{
		{Index: 0, Time: baseTime, Actor: "a", Type: EvJobStarted},
		{Index: 1, Time: baseTime, Actor: "<script>&\u2028", Type: EvJobStarted, Details: map[string]string{"z": "1", "a": "\"quoted\""}},
		{Index: 2, Time: baseTime, Actor: "a", Type: EvJobStarted, DatasetID: "d", Dataset: &Dataset{ID: "d", State: "s",
			Integrity: map[string]string{"dataset": "x", "a": "b"}}},
		genEvent(0), genEvent(1), genEvent(2), genEvent(3),
	}
	for i := range evs {
		ev := &evs[i]
		if ev.Dataset != nil && ev.DatasetID == "" {
			ev.DatasetID = ev.Dataset.ID
		}
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		leaf, ds, err := encodeEvent(ev)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if !bytes.Equal(leaf, want) {
			t.Errorf("event %d: encodeEvent differs from json.Marshal", i)
		}
		if ev.Dataset != nil {
			wantDS, _ := json.Marshal(ev.Dataset)
			if !bytes.Equal(ds, wantDS) {
				t.Errorf("event %d: dataset encoding %s, want %s", i, ds, wantDS)
			}
		}
		var back Event
		if err := json.Unmarshal(leaf, &back); err != nil {
			t.Fatal(err)
		}
		c := newCanonChecker()
		ok, ds2, fast := c.fast(leaf, &back)
		if !ok || !fast || !bytes.Equal(ds2, ds) {
			t.Errorf("event %d: fast check ok=%v fast=%v", i, ok, fast)
		}
		if ok, _ := c.check(append(leaf[:len(leaf)-1:len(leaf)-1], ' ', '}'), &back); ok {
			t.Errorf("event %d: non-canonical bytes accepted", i)
		}
	}
}

func TestProofs(t *testing.T) {
	l, _ := openTest(t, newTestKey(t, "test"))
	fill(t, l, 0, 37)
	cp, _ := l.Checkpoint()
	vkey, _ := l.VerifierKey()
	cur, err := ParseCheckpoint(cp, vkey)
	if err != nil {
		t.Fatal(err)
	}
	for _, old := range []int64{1, 10, 36, 37} {
		proof, th, err := l.ProveConsistency(old)
		if err != nil {
			t.Fatal(err)
		}
		if th != cur.Hash {
			t.Fatal("ProveConsistency hash differs from checkpoint")
		}
		oldHash, err := tlog.TreeHash(old, hashesOf(t, l))
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckTree(proof, cur.N, cur.Hash, old, oldHash); err != nil {
			t.Errorf("consistency %d -> %d: %v", old, cur.N, err)
		}
	}
	for _, bad := range []int64{0, -1, 38} {
		if _, _, err := l.ProveConsistency(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ProveConsistency(%d): %v", bad, err)
		}
	}
	evs, _ := l.Events(0, 0)
	for _, ev := range evs {
		proof, tree, err := l.ProveEvent(ev.Index)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := json.Marshal(ev)
		if err := tlog.CheckRecord(proof, tree.N, tree.Hash, ev.Index, tlog.RecordHash(leaf)); err != nil {
			t.Errorf("event %d: %v", ev.Index, err)
		}
	}
}

// hashesOf reads the stored hashes of l.
func hashesOf(t *testing.T, l *Ledger) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) (hs []tlog.Hash, err error) {
		err = l.view(func(b buckets) error {
			hs, err = bucketHashReader{b.hashes}.ReadHashes(idx)
			return err
		})
		return hs, err
	})
}

func TestBatchGroupCommit(t *testing.T) {
	l, _ := openTest(t, newTestKey(t, "batch"))
	const n = 64
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			errs <- l.Batch(func(tx *Tx) error {
				_, err := tx.Append(Event{Actor: "officer.a", Type: "dataset.received", Dataset: testDataset(i, StateVerified)})
				return err
			})
		}(i)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// A failing call in a batch does not take the others down.
	err := l.Batch(func(tx *Tx) error { return errors.New("refused") })
	if err == nil {
		t.Fatal("the failing call must see its error")
	}
	if size, _ := l.Size(); size != n {
		t.Fatalf("size %d, want %d", size, n)
	}
	ds, _ := l.Datasets()
	if len(ds) != n {
		t.Fatalf("%d datasets, want %d", len(ds), n)
	}
	rep, err := Verify(l, VerifyOptions{})
	if err != nil || !rep.OK {
		t.Fatalf("verify after batches: %v %v", rep, err)
	}
}
