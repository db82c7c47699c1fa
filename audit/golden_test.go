package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"custodian/audit"

	"golang.org/x/mod/sumdb/note"
)

// The golden version 1 ledger (docs/ledger-format.md, "Compatibility"): a
// real ledger file written by this package with a fixed test key and fixed
// times, holding events of every type of the catalogue and datasets that go
// through every transition of the custody table. Every later version of the
// code must still verify it.
const goldenDir = "testdata/golden-v1"

// addedAfterV1 lists the event types added to the catalogue after the
// golden v1 ledger was written. They cannot be in it: the v1 golden is
// never regenerated once released, because it stands for every ledger v1
// wrote.
var addedAfterV1 = []audit.EventType{
	audit.EvAccountBootstrapped, audit.EvAccountCreated, audit.EvAccountChanged, audit.EvAccountDisabled, audit.EvAccountLocked,
	audit.EvAccountUnlocked, audit.EvAccountRecovered, audit.EvAccountPasswordChanged, audit.EvAccountTOTPEnrolled,
	audit.EvLoginSucceeded, audit.EvLoginFailed, audit.EvSessionRevoked,
	audit.EvRequestFiled, audit.EvRequestApproved, audit.EvRequestRejected, audit.EvRequestCancelled, audit.EvRequestExpired, audit.EvRequestExecuted,
	audit.EvBackupCreated, audit.EvBackupRestored,
	audit.EvNotifyDelivered, audit.EvNotifyFailed,
	audit.EvDatasetRead, audit.EvDatasetExported,
	audit.EvReviewStarted, audit.EvReviewFinding, audit.EvReviewInvestigationClosed, audit.EvReviewClosed,
	audit.EvAccessCosigned, audit.EvTrainingRecorded, audit.EvLedgerArchived,
	audit.EvVaultUnsealed, audit.EvVaultSealed, audit.EvVaultScrubbed,
	audit.EvDatasetCustodyTransferred, audit.EvHandoverCompleted,
	audit.EvDatasetDestroyed, audit.EvDestructionCertified, audit.EvVaultRotated,
	audit.EvJobPaused, audit.EvJobResumed,
	audit.EvJobConfigured,
}

// transitionsAddedAfterV1 does the same for the custody transition table.
var transitionsAddedAfterV1 = func() []goldenTransition {
	t := []goldenTransition{
		{audit.EvDatasetDestroyed, audit.StateVerified, audit.StateDestroyed},
		{audit.EvDatasetDestroyed, audit.StateQuarantined, audit.StateDestroyed},
		{audit.EvDatasetDestroyed, audit.StateUnverified, audit.StateDestroyed},
		{audit.EvDatasetDestroyed, audit.StateHeld, audit.StateDestroyed},
		{audit.EvDatasetDestroyed, audit.StateReleased, audit.StateDestroyed},
	}
	// A hand-over changes the custodian, never the state.
	for _, s := range audit.States {
		t = append(t, goldenTransition{audit.EvDatasetCustodyTransferred, s, s})
	}
	return t
}()

type goldenTransition struct {
	Event    audit.EventType
	From, To audit.State
}

const regenerate = "CUSTODIAN_WRITE_GOLDEN=1 go test ./audit -run TestWriteGoldenV1"

// goldenUnit is the unit of the golden installation: the signing key's name
// is derived from it by the rule of docs/ledger-format.md.
const goldenUnit = "連江縣衛生局"

// goldenKeyName is LedgerKeyName(goldenUnit) (package daemon; audit cannot
// import it). The spec test derives it again from the document's rule.
const goldenKeyName = "custodian-ledger/" + goldenUnit

// goldenSeed is the Ed25519 seed of the golden ledger's signing key. It is
// a TEST KEY, published on purpose: it signs nothing but the golden file.
var goldenSeed = sha256.Sum256([]byte("custodian golden-v1 ledger TEST KEY: public, signs nothing real"))

// goldenSignerKey returns the note signer key and verifier key of
// goldenSeed.
func goldenSignerKey(t testing.TB) (skey, vkey string) {
	t.Helper()
	pub := ed25519.NewKeyFromSeed(goldenSeed[:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(goldenKeyName, pub)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(vkey, "+")
	skey = "PRIVATE+KEY+" + goldenKeyName + "+" + parts[len(parts)-2] + "+" +
		base64.StdEncoding.EncodeToString(append([]byte{1}, goldenSeed[:]...))
	return skey, vkey
}

// readKeyFile returns the one line of a key file that is not a comment.
func readKeyFile(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	if len(keys) != 1 {
		t.Fatalf("%s: want one key line, found %d", name, len(keys))
	}
	return keys[0]
}

// TestWriteGoldenV1 writes testdata/golden-v1. It runs only when asked:
// the golden ledger stands for what version 1 wrote and must not change.
func TestWriteGoldenV1(t *testing.T) {
	if os.Getenv("CUSTODIAN_WRITE_GOLDEN") != "1" {
		t.Skip("writes testdata/golden-v1; run with CUSTODIAN_WRITE_GOLDEN=1 (only when creating the v1 golden, never to change it)")
	}
	skey, vkey := goldenSignerKey(t)
	signer, err := audit.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(goldenDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "ledger.db")
	l, err := audit.Open(tmp, audit.Options{Signer: signer, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	writeGoldenEvents(t, l, vkey)
	rep, err := audit.Verify(l, audit.VerifyOptions{VerifierKey: vkey})
	if err != nil || !rep.OK {
		t.Fatalf("generated ledger does not verify: %v\n%s", err, rep)
	}
	cp, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(db)
	files := map[string]string{
		"ledger.db":        string(db),
		"ledger.db.sha256": hex.EncodeToString(sum[:]) + "  ledger.db\n",
		"checkpoint":       string(cp),
		"verifier.key":     vkey + "\n",
		"signer.key": "# TEST KEY. Public on purpose: it signs the golden v1 test ledger and nothing else.\n" +
			"# Its seed is SHA-256(\"custodian golden-v1 ledger TEST KEY: public, signs nothing real\").\n" +
			"# Never use it, or a key derived like it, for a real ledger.\n" + skey + "\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(goldenDir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %s: %d events, %d bytes, sha256 %x", goldenDir, rep.Events, len(db), sum)
}

// TestGoldenV1 verifies the committed golden v1 ledger with the committed
// verifier key and checkpoint, as an auditor would.
func TestGoldenV1(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(goldenDir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(readFile(t, "ledger.db.sha256"))
	if sum := sha256.Sum256(data); len(want) == 0 || hex.EncodeToString(sum[:]) != want[0] {
		t.Fatalf("%s/ledger.db has SHA-256 %x, ledger.db.sha256 records %v: the golden v1 ledger must never change "+
			"(it stands for every ledger version 1 wrote); restore it with git checkout. "+
			"(%s rewrites it, and is only for creating the v1 golden, never for changing v1 events.)",
			goldenDir, sum, want, regenerate)
	}
	vkey := readKeyFile(t, "verifier.key")
	cp := []byte(readFile(t, "checkpoint"))

	// A private copy: nothing may touch the committed file.
	path := filepath.Join(t.TempDir(), "ledger.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(path, audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rep, err := audit.Verify(l, audit.VerifyOptions{VerifierKey: vkey, Checkpoint: cp})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.KeptCheckpointSize != rep.Events || rep.CheckpointSize != rep.Events {
		t.Fatalf("the golden v1 ledger no longer verifies: this version cannot read ledgers version 1 wrote.\n%s", rep)
	}
	stored, err := l.Checkpoint()
	if err != nil || !bytes.Equal(stored, cp) {
		t.Fatalf("the ledger's own checkpoint differs from testdata's: %v\n%s\n%s", err, stored, cp)
	}
	if got, err := l.VerifierKey(); err != nil || got != vkey {
		t.Fatalf("the ledger records verifier key %q (%v), testdata has %q", got, err, vkey)
	}

	events, err := l.Events(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(events)) != rep.Events {
		t.Fatalf("Events returned %d events, Verify counted %d", len(events), rep.Events)
	}
	seen := map[audit.EventType]bool{}
	for _, ev := range events {
		if !ev.Type.Known() {
			t.Errorf("event %d: type %q of the golden v1 ledger is no longer in the catalogue: event types are never removed", ev.Index, ev.Type)
		}
		seen[ev.Type] = true
	}
	for _, typ := range audit.EventTypes() {
		if !seen[typ] && !slices.Contains(addedAfterV1, typ) {
			t.Errorf("event type %q is in the catalogue but not in the golden v1 ledger: a type added after v1 belongs in addedAfterV1 "+
				"(golden_test.go); the v1 golden is not regenerated for it (%s only creates v1, adding events, never changing them)",
				typ, regenerate)
		}
	}
	for _, typ := range addedAfterV1 {
		if seen[typ] {
			t.Errorf("addedAfterV1 lists %q, but the golden v1 ledger has it", typ)
		}
	}

	// Every transition of the custody table happens in the golden ledger.
	done := map[goldenTransition]bool{}
	state := map[string]audit.State{}
	for _, ev := range events {
		if d := ev.Dataset; d != nil {
			done[goldenTransition{ev.Type, state[d.ID], d.State}] = true
			state[d.ID] = d.State
		}
	}
	for _, typ := range audit.EventTypes() {
		for _, from := range append([]audit.State{""}, audit.States...) {
			for _, to := range audit.Next(typ, from) {
				tr := goldenTransition{typ, from, to}
				if !done[tr] && !slices.Contains(transitionsAddedAfterV1, tr) {
					t.Errorf("transition %s %q -> %q is in the custody table but not in the golden v1 ledger: one added after v1 belongs in transitionsAddedAfterV1",
						typ, from, to)
				}
			}
		}
	}
}

// TestGoldenV1Rewrite writes the golden history again with today's code:
// the same events must give the same leaves, so the same signed
// checkpoint (Ed25519 signatures are deterministic). The bbolt file itself
// is not byte-reproducible (page padding), the checkpoint is.
func TestGoldenV1Rewrite(t *testing.T) {
	skey, vkey := goldenSignerKey(t)
	if got := readKeyFile(t, "signer.key"); got != skey {
		t.Fatalf("signer.key is not the key of goldenSeed")
	}
	if got := readKeyFile(t, "verifier.key"); got != vkey {
		t.Fatalf("verifier.key is not the key of goldenSeed")
	}
	signer, err := audit.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(filepath.Join(t.TempDir(), "ledger.db"), audit.Options{Signer: signer, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	writeGoldenEvents(t, l, vkey)
	cp, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if want := readFile(t, "checkpoint"); string(cp) != want {
		t.Fatalf("the golden history written today gives checkpoint\n%s\nnot the v1 one\n%s\n"+
			"either writeGoldenEvents was changed (it is frozen: it is the v1 history) or the code no longer writes v1 leaves", cp, want)
	}
}

func readFile(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// gt returns a fixed time of the golden installation (Taipei, UTC+8, shown
// in UTC on the ledger).
func gt(day, hour, min, sec, nsec int) time.Time {
	return time.Date(2026, 11, day, hour, min, sec, nsec, time.FixedZone("Asia/Taipei", 8*3600))
}

// writeGoldenEvents writes the golden v1 history: an installation, two
// daemon runs with an extract job and a change job, officers' decisions,
// a re-sent file, a vault scrub and audits. Details are those the code
// writes (docs/ledger-format.md, "Event types").
func writeGoldenEvents(t *testing.T, l *audit.Ledger, vkey string) {
	t.Helper()
	const (
		sys       = "system:custodian"
		scheduler = "system:scheduler"
		officer   = "transfer.officer"
		extract   = "registry-extract"
		changes   = "registry-changes"
		unchecked = "registry-legacy"
		source    = "moi"
	)
	update := func(fn func(tx *audit.Tx) error) {
		t.Helper()
		if err := l.Update(fn); err != nil {
			t.Fatal(err)
		}
	}
	add := func(tx *audit.Tx, ev audit.Event) audit.Event {
		t.Helper()
		got, err := tx.Append(ev)
		if err != nil {
			t.Fatalf("append %s: %v", ev.Type, err)
		}
		return got
	}
	ds := func(id, job, kind, remote string, size, records, declared int64, state audit.State, obj string, mtime, at time.Time) *audit.Dataset {
		sum := sha256.Sum256([]byte(id + remote))
		d := &audit.Dataset{
			ID: id, Job: job, Source: source, Kind: kind, RemotePath: remote,
			RemoteSize: size, RemoteMtime: mtime, Size: size, SHA256: hex.EncodeToString(sum[:]),
			Records: records, DeclaredRecords: declared, State: state, Purpose: "vaccination",
			ObjectID: obj, Custodian: officer, ReceivedAt: at, UpdatedAt: at,
			Integrity: map[string]string{"checksum": "sidecar", "digest_algo": "sha256", "declared_digest": hex.EncodeToString(sum[:]),
				"sidecar": filepath.Base(remote) + ".sha256", "sidecar_size": "82", "sidecar_mtime": mtime.UTC().Format(time.RFC3339Nano)},
		}
		return d
	}
	received := func(tx *audit.Tx, actor string, d *audit.Dataset, extra map[string]string) {
		t.Helper()
		details := map[string]string{"state": string(d.State), "remote_path": d.RemotePath, "sha256": d.SHA256,
			"bytes": fmt.Sprint(d.Size), "records": fmt.Sprint(d.Records)}
		if d.Reason != "" {
			details["reason"] = d.Reason
		}
		for k, v := range extra {
			details[k] = v
		}
		add(tx, audit.Event{Time: d.ReceivedAt, Actor: actor, Type: audit.EvDatasetReceived, Job: d.Job, Dataset: d, Details: details})
	}

	// The installation. custodian init writes the first event alone.
	update(func(tx *audit.Tx) error {
		add(tx, audit.Event{Time: gt(30, 9, 12, 3, 0), Actor: "ops.lin", Type: audit.EvInstallationInitialized, Details: map[string]string{
			"vault_recipient": "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
			"verifier_key":    vkey,
			"unit":            goldenUnit,
		}})
		return nil
	})

	// The daemon's first night: the extract job.
	var dsA, dsB, dsE *audit.Dataset
	update(func(tx *audit.Tx) error {
		add(tx, audit.Event{Time: gt(30, 9, 15, 0, 250_000_000), Actor: sys, Type: audit.EvDaemonStarted, Details: map[string]string{"pid": "4242"}})
		add(tx, audit.Event{Time: gt(30, 17, 40, 1, 0), Actor: sys, Type: audit.EvConfigReloadRefused, Details: map[string]string{
			"error": "configuration has 2 problems:\n\tjobs[0].schedule: \"every night\": use five cron fields with an optional CRON_TZ= prefix\n\tjobs[1].purpose: \"research\": use one of cancer-prevention, vaccination, …"}})
		add(tx, audit.Event{Time: gt(30, 17, 45, 9, 0), Actor: sys, Type: audit.EvConfigReloaded, Details: map[string]string{
			"jobs": extract + "," + changes + "," + unchecked}})
		add(tx, audit.Event{Time: gt(1, 2, 0, 0, 1), Actor: scheduler, Type: audit.EvJobStarted, Job: extract, Details: map[string]string{"trigger": "schedule"}})
		add(tx, audit.Event{Time: gt(1, 2, 0, 30, 0), Actor: scheduler, Type: audit.EvSourceConnectFailed, Job: extract, Details: map[string]string{
			"source": source, "error": "dial tcp 10.20.0.5:22: connect: connection refused", "attempt": "1"}})
		add(tx, audit.Event{Time: gt(1, 2, 1, 0, 0), Actor: scheduler, Type: audit.EvSourceSessionLimit, Job: extract, Details: map[string]string{
			"source": source, "note": "the server refused a 3rd session on a connection (MaxSessions 2?): 8 sessions over 4 connections",
			"sessions": "8", "connections": "4"}})
		return nil
	})
	update(func(tx *audit.Tx) error {
		// Two refusals: a link, and a name with <&> (JSON escapes them).
		refused := func(name, reason string, size int64, mtime time.Time) (int64, bool) {
			t.Helper()
			quoted := fmt.Sprintf("%q", name)
			key := strings.Join([]string{"file.refused", extract, source, "/outbox", name, reason, fmt.Sprint(size), mtime.UTC().Format(time.RFC3339Nano)}, "\x00")
			sum := sha256.Sum256([]byte(key))
			i, recorded, err := tx.AppendOnce("file.refused/"+hex.EncodeToString(sum[:]), audit.Event{
				Time: gt(1, 2, 1, 0, 0), Actor: scheduler, Type: audit.EvFileRefused, Job: extract, Details: map[string]string{
					"name": quoted, "reason": reason, "remote_dir": "/outbox", "size": fmt.Sprint(size), "mtime": mtime.UTC().Format(time.RFC3339Nano)}})
			if err != nil {
				t.Fatal(err)
			}
			return i, recorded
		}
		link := "a symbolic link: not followed (set follow_symlinks: true to pull the regular file it points to inside remote_dir)"
		first, recorded := refused("HR_FULL_latest.txt", link, 31, gt(30, 23, 58, 0, 0))
		if !recorded {
			t.Fatal("first refusal not recorded")
		}
		refused("HR_FULL_<&>\"1\".txt", "not a regular file (type p---------): only regular files are pulled", 0, gt(30, 23, 59, 59, 999_999_999))
		// The same refusal on the next run: recorded once only.
		if again, recorded := refused("HR_FULL_latest.txt", link, 31, gt(30, 23, 58, 0, 0)); recorded || again != first {
			t.Fatalf("a once key was recorded twice (%d, %d)", first, again)
		}
		return nil
	})
	update(func(tx *audit.Tx) error {
		dsA = ds("ds-3f9a0c1e7b42", extract, "extract", "/outbox/HR_FULL_20261130.txt", 184210, 1200, 1200, audit.StateVerified,
			"8c1d2e3f405162738495a6b7c8d9eaf0", gt(1, 1, 58, 0, 0), gt(1, 2, 3, 11, 123_456_789))
		dsA.Integrity["count_rule"] = "trailer"
		received(tx, scheduler, dsA, nil)
		add(tx, audit.Event{Time: gt(1, 2, 3, 12, 0), Actor: scheduler, Type: audit.EvRemoteMove, Job: extract, DatasetID: dsA.ID,
			Details: map[string]string{"remote_path": dsA.RemotePath, "moved_to": "/archive/HR_FULL_20261130.txt"}})

		dsB = ds("ds-a17be2c09d33", extract, "extract", "/outbox/HR_FULL_20261129.txt", 183990, 1198, 1199, audit.StateQuarantined,
			"0f1e2d3c4b5a69788796a5b4c3d2e1f0", gt(1, 1, 20, 0, 0), gt(1, 2, 4, 0, 0))
		dsB.Reason = "records: the trailer declares 1199 records, 1198 counted"
		dsB.Integrity["count_problems"] = "line 1200: trailer TRL1199"
		received(tx, scheduler, dsB, nil)

		dsE = ds("ds-5c6d7e8f9012", extract, "extract", "/outbox/HR_FULL_20261128.txt", 180001, 1190, 1190, audit.StateQuarantined,
			"1a2b3c4d5e6f708192a3b4c5d6e7f809", gt(1, 1, 10, 0, 0), gt(1, 2, 5, 0, 0))
		dsE.Reason = "checksum: sidecar declares 5e88…, received 9b71…"
		dsE.Integrity["received_digest"] = strings.Repeat("9b71", 16)
		received(tx, scheduler, dsE, nil)

		add(tx, audit.Event{Time: gt(1, 2, 6, 0, 0), Actor: scheduler, Type: audit.EvFileTransferFailed, Job: extract, Details: map[string]string{
			"remote_path": "/outbox/HR_FULL_20261127.txt", "error": "sftp: \"quota\u2028exceeded\u2029\b\f\x7f\x1b[0m\" (SSH_FX_FAILURE)", "will_retry": "true"}})
		add(tx, audit.Event{Time: gt(1, 2, 7, 0, 0), Actor: scheduler, Type: audit.EvFileFailed, Job: extract, Details: map[string]string{
			"remote_path": "/outbox/HR_FULL_20261127.txt", "error": "the file changed while it was read: size 190000, then 190112"}})
		add(tx, audit.Event{Time: gt(1, 2, 7, 1, 0), Actor: scheduler, Type: audit.EvJobFailed, Job: extract, Details: map[string]string{
			"files": "4", "skipped": "0", "error": "one or more files failed verification or transfer"}})
		return nil
	})

	// The change job, run by hand.
	var dsC, dsD, dsF *audit.Dataset
	update(func(tx *audit.Tx) error {
		add(tx, audit.Event{Time: gt(1, 3, 0, 0, 0), Actor: officer, Type: audit.EvJobStarted, Job: changes, Details: map[string]string{"trigger": "manual"}})
		add(tx, audit.Event{Time: gt(1, 3, 0, 1, 0), Actor: officer, Type: audit.EvBatchFailed, Job: changes, Details: map[string]string{
			"error": "manifest MANIFEST_0040.csv lists HR_CHG_0040.txt, which is not on the server: the whole batch is refused"}})
		add(tx, audit.Event{Time: gt(1, 3, 0, 2, 0), Actor: officer, Type: audit.EvSequenceBaseline, Job: changes, Details: map[string]string{"first_sequence": "41"}})

		dsC = ds("ds-c0ffee000041", changes, "change", "/outbox/chg/HR_CHG_0041.txt", 2048, 12, 12, audit.StateVerified,
			"c041c041c041c041c041c041c041c041", gt(1, 2, 50, 0, 0), gt(1, 3, 1, 0, 0))
		dsC.Integrity["sequence"] = "41"
		dsC.Integrity["digest_algo"] = "md5"
		dsC.Integrity["sidecar"] = "HR_CHG_0041.txt.md5"
		dsC.Integrity["declared_digest"] = "9e107d9d372bb6826bd81d3542a419d6"
		dsC.Integrity["warning"] = "weak digest md5 accepted by allow_weak"
		received(tx, officer, dsC, map[string]string{"warning": dsC.Integrity["warning"]})
		add(tx, audit.Event{Time: gt(1, 3, 1, 1, 0), Actor: officer, Type: audit.EvRemoteDelete, Job: changes, DatasetID: dsC.ID,
			Details: map[string]string{"remote_path": dsC.RemotePath}})

		dsD = ds("ds-d0d0d0000043", changes, "change", "/outbox/chg/HR_CHG_0043.txt", 4096, 25, 25, audit.StateHeld,
			"d043d043d043d043d043d043d043d043", gt(1, 2, 52, 0, 0), gt(1, 3, 2, 0, 0))
		dsD.Integrity["sequence"] = "43"
		dsD.Reason = "sequence: 43 follows 41; 42 is missing"
		received(tx, officer, dsD, nil)

		dsF = ds("ds-f00d00000044", changes, "change", "/outbox/chg/HR_CHG_0044.txt", 3000, 19, 20, audit.StateQuarantined,
			"f044f044f044f044f044f044f044f044", gt(1, 2, 53, 0, 0), gt(1, 3, 3, 0, 0))
		dsF.Integrity["sequence"] = "44"
		dsF.Reason = "records: the trailer declares 20 records, 19 counted"
		received(tx, officer, dsF, nil)
		add(tx, audit.Event{Time: gt(1, 3, 3, 5, 0), Actor: officer, Type: audit.EvRemoteDeleteFailed, Job: changes, DatasetID: dsD.ID,
			Details: map[string]string{"remote_path": dsD.RemotePath, "error": "sftp: permission denied"}})
		add(tx, audit.Event{Time: gt(1, 3, 4, 0, 0), Actor: officer, Type: audit.EvJobFinished, Job: changes, Details: map[string]string{"files": "3", "skipped": "0"}})
		return nil
	})

	// An extract job without checksums (checksum: none, allow_unverified).
	var dsG, dsH *audit.Dataset
	update(func(tx *audit.Tx) error {
		add(tx, audit.Event{Time: gt(1, 4, 0, 0, 0), Actor: scheduler, Type: audit.EvJobStarted, Job: unchecked, Details: map[string]string{"trigger": "schedule"}})
		dsG = ds("ds-9999aaaa0001", unchecked, "extract", "/legacy/舊檔 2026-11.txt", 5000, 40, -1, audit.StateUnverified,
			"a0a0a0a0b1b1b1b1c2c2c2c2d3d3d3d3", gt(1, 3, 50, 0, 0), gt(1, 4, 1, 0, 0))
		dsG.Integrity = map[string]string{"checksum": "none"}
		dsG.Purpose = "emergency"
		received(tx, scheduler, dsG, nil)
		dsH = ds("ds-9999aaaa0002", unchecked, "extract", "/legacy/HR_OLD_10.txt", 7000, 55, 56, audit.StateQuarantined,
			"a1a1a1a1b2b2b2b2c3c3c3c3d4d4d4d4", gt(1, 3, 51, 0, 0), gt(1, 4, 2, 0, 0))
		dsH.Integrity = map[string]string{"checksum": "none"}
		dsH.Reason = "records: the header declares 56 records, 55 counted"
		received(tx, scheduler, dsH, nil)
		add(tx, audit.Event{Time: gt(1, 4, 3, 0, 0), Actor: scheduler, Type: audit.EvRemoteMoveFailed, Job: unchecked, DatasetID: dsG.ID,
			Details: map[string]string{"remote_path": dsG.RemotePath, "moved_to": "/archive/舊檔 2026-11.txt",
				"error": "the archive /archive already holds 舊檔 2026-11.txt and 舊檔 2026-11.txt.ds-9999aaaa0001; not moved, so that nothing in the archive is replaced"}})
		add(tx, audit.Event{Time: gt(1, 4, 3, 30, 0), Actor: sys, Type: audit.EvJobSkipped, Job: unchecked, Details: map[string]string{"reason": "previous run still in progress"}})
		add(tx, audit.Event{Time: gt(1, 4, 4, 0, 0), Actor: scheduler, Type: audit.EvJobFinished, Job: unchecked, Details: map[string]string{"files": "2", "skipped": "0"}})
		return nil
	})

	// The officer's decisions.
	release := func(tx *audit.Tx, d *audit.Dataset, to audit.State, reason string, at time.Time) {
		t.Helper()
		from, prev := d.State, d.Reason
		nd := *d
		nd.State, nd.UpdatedAt = to, at
		nd.Reason = fmt.Sprintf("released by %s: %s (was %s: %s)", officer, reason, from, prev)
		add(tx, audit.Event{Time: at, Actor: officer, Type: audit.EvDatasetReleased, Job: d.Job, Dataset: &nd,
			Details: map[string]string{"reason": reason, "from_state": string(from), "to_state": string(to)}})
		*d = nd
	}
	repull := func(tx *audit.Tx, d *audit.Dataset, state audit.State, stateReason, why, obj string, records int64, at time.Time) {
		t.Helper()
		nd := *d
		prevObj, prevSum := d.ObjectID, d.SHA256
		sum := sha256.Sum256([]byte(obj))
		nd.SHA256, nd.ObjectID, nd.State, nd.Records = hex.EncodeToString(sum[:]), obj, state, records
		nd.Reason = stateReason
		nd.ReceivedAt, nd.UpdatedAt = at, at
		nd.PriorObjects = append(slices.Clone(d.PriorObjects), prevObj)
		add(tx, audit.Event{Time: at, Actor: officer, Type: audit.EvDatasetRepulled, Job: d.Job, Dataset: &nd,
			Details: map[string]string{"reason": why, "previous_object": prevObj, "previous_sha256": prevSum, "state": string(state), "sha256": nd.SHA256}})
		*d = nd
	}
	update(func(tx *audit.Tx) error {
		release(tx, dsD, audit.StateVerified, "42 was withdrawn by the registry (letter 1150001234)", gt(1, 9, 30, 0, 0))
		release(tx, dsE, audit.StateReleased, "the registry confirmed by phone that the sidecar was wrong; ticket <INC-77> & letter 1150001299", gt(1, 9, 31, 0, 0))
		repull(tx, dsB, audit.StateQuarantined, "records: the trailer declares 1199 records, 1197 counted", "the provider says the file was cut short", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", 1197, gt(1, 10, 0, 0, 0))
		repull(tx, dsB, audit.StateVerified, "", "re-sent complete", "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", 1199, gt(1, 11, 0, 0, 0))
		repull(tx, dsF, audit.StateHeld, "sequence: 44 follows 41; 42 is missing", "re-sent complete", "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f", 20, gt(1, 11, 5, 0, 0))
		release(tx, dsF, audit.StateVerified, "42 was withdrawn by the registry (letter 1150001234)", gt(1, 11, 6, 0, 0))
		repull(tx, dsH, audit.StateUnverified, "", "the old system wrote a wrong header", "0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d", 55, gt(1, 11, 10, 0, 0))
		return nil
	})

	// The provider re-sends the extract with other bytes: a new dataset
	// supersedes the first delivery.
	update(func(tx *audit.Tx) error {
		add(tx, audit.Event{Time: gt(2, 2, 0, 0, 0), Actor: scheduler, Type: audit.EvJobStarted, Job: extract, Details: map[string]string{"trigger": "schedule"}})
		dsI := ds("ds-1e5e1e5e1e5e", extract, "extract", dsA.RemotePath, 184321, 1201, 1201, audit.StateVerified,
			"e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1", gt(2, 1, 58, 2, 0), gt(2, 2, 3, 0, 500_000_000))
		dsI.Supersedes = dsA.ID
		resent := "the listing says 184321 bytes modified 2026-12-01T17:58:02Z, the stored dataset 184210 bytes modified 2026-11-30T17:58:00Z"
		received(tx, scheduler, dsI, map[string]string{"supersedes": dsA.ID, "resent": resent})
		add(tx, audit.Event{Time: dsI.ReceivedAt, Actor: scheduler, Type: audit.EvDatasetSuperseded, Job: extract, DatasetID: dsA.ID,
			Details: map[string]string{"superseded_by": dsI.ID, "remote_path": dsI.RemotePath, "resent": resent}})
		add(tx, audit.Event{Time: gt(2, 2, 4, 0, 0), Actor: scheduler, Type: audit.EvJobFinished, Job: extract, Details: map[string]string{"files": "1", "skipped": "0"}})
		add(tx, audit.Event{Time: gt(2, 8, 0, 0, 0), Actor: sys, Type: audit.EvDaemonStopped})
		return nil
	})

	// A restart after a crash, a vault scrub and audits.
	update(func(tx *audit.Tx) error {
		add(tx, audit.Event{Time: gt(2, 8, 5, 0, 0), Actor: sys, Type: audit.EvVaultRecovered, Details: map[string]string{
			"partial_objects_removed": "1", "orphan_objects_removed": "0"}})
		add(tx, audit.Event{Time: gt(2, 8, 5, 1, 0), Actor: sys, Type: audit.EvDaemonStarted, Details: map[string]string{"pid": "5120"}})
		add(tx, audit.Event{Time: gt(2, 9, 0, 0, 0), Actor: "auditor.chen", Type: audit.EvVaultVerified, Details: map[string]string{"checked": "9", "failed": "0"}})
		add(tx, audit.Event{Time: gt(2, 9, 10, 0, 0), Actor: "auditor.chen", Type: audit.EvVaultScrubReportRefused, Details: map[string]string{
			"reported_by": "auditor.chen", "objects_checked": "3", "failed": "0", "ledger_size": "44",
			"reason": "the report says 3 object(s) were checked, but the ledger's first 44 entries refer to 13 vault object(s): a scrub checks every one of them"}})
		size := tx.Size()
		add(tx, audit.Event{Time: gt(2, 9, 20, 0, 0), Actor: "auditor.chen", Type: audit.EvVaultScrubReported, Details: map[string]string{
			"reported_by": "auditor.chen", "objects_checked": "13", "failed": "1", "failed_objects": dsE.ObjectID,
			"checked_digest": "5f2b0e8c1d7a4b3e9f60718293a4b5c6d7e8f90112233445566778899aabbccd", "ledger_size": fmt.Sprint(size),
			"note": "a report by reported_by: the daemon does not hold the vault's private key and did not decrypt the objects; the counts, object IDs and digest match the ledger"}})
		add(tx, audit.Event{Time: gt(2, 9, 20, 0, 0), Actor: "auditor.chen", Type: audit.EvVaultObjectFailed, DatasetID: dsE.ID, Details: map[string]string{
			"object_id": dsE.ObjectID, "reason": "age: decryption failed: chunk 3: message authentication failed", "reported_by": "auditor.chen"}})
		// Refusals as the service layer records them.
		add(tx, audit.Event{Time: gt(2, 9, 30, 0, 0), Actor: "clerk.wu", Type: audit.EvAccessRefused, DatasetID: dsB.ID, Details: map[string]string{
			"action": "dataset.release", "resource": "dataset " + dsB.ID, "code": "forbidden",
			"rule": "forbidden: only the job's officer (transfer.officer) may release its datasets"}})
		add(tx, audit.Event{Time: gt(2, 9, 31, 0, 0), Actor: "clerk.wu", Type: audit.EvAccessRefused, Job: extract, Details: map[string]string{
			"action": "job.run", "resource": "job " + extract, "code": "conflict",
			"rule": "not allowed in this state: job registry-extract is running (started 2026-12-02T09:30:58Z)"}})
		add(tx, audit.Event{Time: gt(2, 9, 40, 0, 0), Actor: "auditor.chen", Type: audit.EvAuditVerified, Details: map[string]string{
			"ok": "true", "events": fmt.Sprint(tx.Size()), "problems": "0"}})
		add(tx, audit.Event{Time: gt(2, 9, 41, 0, 0), Actor: "auditor.chen", Type: audit.EvAuditExported})
		// A full disk: a job's events kept in memory, recorded late with
		// their own time, then the resumption.
		add(tx, audit.Event{Time: gt(2, 9, 50, 0, 0), Actor: officer, Type: audit.EvJobStarted, Job: extract, Details: map[string]string{
			"trigger":       "schedule",
			"recorded_late": "the ledger could not be written when this happened (audit: ledger write failed: write ledger.db: no space left on device)"}})
		add(tx, audit.Event{Time: gt(2, 9, 55, 0, 0), Actor: "system:custodian", Type: audit.EvLedgerWriteResumed, Details: map[string]string{
			"since": "2026-12-02T09:50:00Z", "error": "audit: ledger write failed: write ledger.db: no space left on device",
			"events_recorded_late": "1", "events_lost": "0"}})
		return nil
	})

	// The generator itself checks the rules it was meant to exercise.
	err := l.Update(func(tx *audit.Tx) error {
		_, err := tx.Append(audit.Event{Time: gt(2, 10, 0, 0, 0), Actor: officer, Type: audit.EvDatasetReleased, Job: extract, Dataset: dsA})
		return err
	})
	if !errors.Is(err, audit.ErrTransition) {
		t.Fatalf("releasing a verified dataset: %v", err)
	}
}
