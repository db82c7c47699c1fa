package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"custodian/accounts"
	"custodian/audit"
	"custodian/vault"
)

const testPassphrase = "a long test passphrase"

// lifecycle is a service with people (olga and bert officers, cora a
// contractor, aud an auditor, dora the director, sue a supervisor, all of
// unit north), a real vault, and datasets stored in it.
type lifecycle struct {
	*people
	data map[string][]byte // dataset ID → the bytes received
}

func newLifecycle(t *testing.T) *lifecycle {
	t.Helper()
	p := newPeople(t)
	dir := filepath.Join(t.TempDir(), "vault")
	if err := vault.Init(dir, []byte(testPassphrase), vault.InitOptions{ScryptWorkFactor: 10}); err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	p.s.Vault = v
	p.add("olga", accounts.RoleOfficer)
	p.add("bert", accounts.RoleOfficer)
	p.add("cora", accounts.RoleContractor)
	p.add("aud", accounts.RoleAuditor)
	p.add("dora", accounts.RoleDirector)
	return &lifecycle{people: p, data: map[string][]byte{}}
}

// store puts data in the vault and records its receipt in state st, in
// olga's custody, for vaccination.
func (l *lifecycle) store(id string, st audit.State, data []byte) audit.Dataset {
	l.t.Helper()
	w, err := l.s.Vault.Create(context.Background())
	if err != nil {
		l.t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		l.t.Fatal(err)
	}
	info, err := w.Commit()
	if err != nil {
		l.t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	d := audit.Dataset{ID: id, Job: "extract", Source: "moi", Kind: "extract", RemotePath: "/outbox/" + id + ".txt",
		Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Records: 3, State: st, Purpose: "vaccination",
		ObjectID: info.ID, Custodian: "olga"}
	if err := l.s.Ledger.Update(func(tx *audit.Tx) error {
		_, err := tx.Append(audit.Event{Actor: "olga", Type: audit.EvDatasetReceived, Dataset: &d})
		return err
	}); err != nil {
		l.t.Fatal(err)
	}
	l.data[id] = data
	return d
}

func (l *lifecycle) unseal() {
	l.t.Helper()
	if _, err := l.s.Unseal(context.Background(), l.actor["olga"], []byte(testPassphrase)); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lifecycle) read(user, id, purpose, caseRef string) ([]byte, ReadResult, error) {
	var buf bytes.Buffer
	res, err := l.s.ReadDataset(context.Background(), l.actor[user], id, ReadRequest{Purpose: purpose, Case: caseRef}, &buf)
	return buf.Bytes(), res, err
}

// lastEvent returns the last event of type typ.
func lastEvent(t *testing.T, s *Service, typ audit.EventType) audit.Event {
	t.Helper()
	evs := events(t, s, typ)
	if len(evs) == 0 {
		t.Fatalf("no %s event", typ)
	}
	return evs[len(evs)-1]
}

func hexSum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestSealedVaultRefusesReads: the sealed vault refuses reads with the rule
// (unseal first), recorded; unsealing is an officer's, needs the right
// passphrase, and each unseal and seal is on the ledger with who and why.
func TestSealedVaultRefusesReads(t *testing.T) {
	l := newLifecycle(t)
	l.store("ds-1", audit.StateVerified, []byte("HDR|1\nA\nB\nC\nTRL3\n"))
	_, _, err := l.read("olga", "ds-1", "vaccination", "C-2026-1")
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "custodian vault unseal") {
		t.Fatalf("a read of the sealed vault: %v", err)
	}
	if ev := lastEvent(t, l.s, audit.EvAccessRefused); ev.DatasetID != "ds-1" || !strings.Contains(ev.Details["rule"], "sealed") {
		t.Fatalf("the refusal must be recorded: %+v", ev)
	}
	if n := len(events(t, l.s, audit.EvDatasetRead)); n != 0 {
		t.Fatalf("%d reads recorded while sealed", n)
	}
	for _, who := range []string{"sue", "cora", "aud", "adam"} {
		if _, err := l.s.Unseal(context.Background(), l.actor[who], []byte(testPassphrase)); !errors.Is(err, ErrForbidden) {
			t.Errorf("%s unsealed: %v", who, err)
		}
	}
	if _, err := l.s.Unseal(context.Background(), l.actor["olga"], []byte("not the passphrase")); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a wrong passphrase: %v", err)
	}
	if ev := lastEvent(t, l.s, audit.EvAccessRefused); ev.Details["action"] != string(ActUnseal) || !strings.Contains(ev.Details["rule"], "passphrase") {
		t.Fatalf("the wrong passphrase must be recorded: %+v", ev)
	}
	l.unseal()
	if ev := lastEvent(t, l.s, audit.EvVaultUnsealed); ev.Actor != "olga" || ev.Details["idle"] != "30m0s" {
		t.Fatalf("unsealed: %+v", ev)
	}
	st, _ := l.s.Status(context.Background(), l.actor["sue"])
	if st.Vault == nil || st.Vault.Sealed || st.Vault.UnsealedBy != "olga" || st.Vault.Until == nil {
		t.Fatalf("status while unsealed: %+v", st.Vault)
	}
	if _, _, err := l.read("olga", "ds-1", "vaccination", "C-2026-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.s.Seal(context.Background(), l.actor["aud"]); !errors.Is(err, ErrForbidden) {
		t.Fatalf("the auditor sealed: %v", err)
	}
	if _, err := l.s.Seal(context.Background(), l.actor["sue"]); err != nil {
		t.Fatal(err)
	}
	if ev := lastEvent(t, l.s, audit.EvVaultSealed); ev.Actor != "sue" || ev.Details["reason"] != "request" || ev.Details["unsealed_by"] != "olga" {
		t.Fatalf("sealed: %+v", ev)
	}
	if _, _, err := l.read("olga", "ds-1", "vaccination", "C-2026-1"); !errors.Is(err, ErrConflict) {
		t.Fatalf("a read after sealing: %v", err)
	}
	l.unseal()
	l.s.SealForShutdown()
	if ev := lastEvent(t, l.s, audit.EvVaultSealed); ev.Actor != SystemActor || ev.Details["reason"] != "shutdown" {
		t.Fatalf("sealed at shutdown: %+v", ev)
	}
}

// TestIdleTimeoutSeals: the key is dropped after vault.unseal_idle without
// use (the service's clock, no sleeps); a use restarts the count.
func TestIdleTimeoutSeals(t *testing.T) {
	l := newLifecycle(t)
	l.store("ds-1", audit.StateVerified, []byte("HDR|1\nA\nB\nC\nTRL3\n"))
	l.unseal()
	l.clk.advance(29 * time.Minute)
	if _, _, err := l.read("olga", "ds-1", "vaccination", "C-1"); err != nil {
		t.Fatalf("a read within the idle time: %v", err)
	}
	l.clk.advance(29 * time.Minute) // 58 minutes after unsealing, 29 after the last use
	l.s.SealIfIdle()
	if st := l.s.vaultState(); st.Sealed {
		t.Fatal("sealed although the key was used 29 minutes ago")
	}
	l.clk.advance(time.Minute)
	l.s.SealIfIdle()
	if st := l.s.vaultState(); !st.Sealed {
		t.Fatal("still unsealed after 30 minutes without use")
	}
	ev := lastEvent(t, l.s, audit.EvVaultSealed)
	if ev.Actor != SystemActor || ev.Details["reason"] != "idle" || ev.Details["idle"] != "30m0s" {
		t.Fatalf("idle seal: %+v", ev)
	}
	if _, _, err := l.read("olga", "ds-1", "vaccination", "C-1"); !errors.Is(err, ErrConflict) {
		t.Fatalf("a read after the idle timeout: %v", err)
	}
}

// TestReadsArePurposeBoundAndRecorded: a read streams the exact bytes and
// is an access record with the delivered SHA-256; a non-matching purpose,
// a role without the right, another unit are refused and recorded; an
// emergency use needs a director's approval and allows one read.
func TestReadsArePurposeBoundAndRecorded(t *testing.T) {
	l := newLifecycle(t)
	data := []byte("HDR|1\nA123456789\nB987654321\nC111111111\nTRL3\n")
	l.store("ds-1", audit.StateVerified, data)
	l.unseal()
	got, res, err := l.read("olga", "ds-1", "vaccination", "C-2026-17")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %q %v", got, err)
	}
	ev := lastEvent(t, l.s, audit.EvDatasetRead)
	want := map[string]string{"purpose": "vaccination", "case": "C-2026-17", "bytes": strconv.Itoa(len(data)), "sha256": hexSum(data), "outcome": "complete"}
	for k, v := range want {
		if ev.Details[k] != v {
			t.Errorf("dataset.read %s = %q, want %q", k, ev.Details[k], v)
		}
	}
	if ev.Actor != "olga" || ev.DatasetID != "ds-1" || res.SHA256 != hexSum(data) || res.Index != ev.Index {
		t.Fatalf("the access record: %+v %+v", ev, res)
	}
	if _, _, err := l.read("cora", "ds-1", "vaccination", "C-2026-18"); err != nil {
		t.Fatalf("the contractor of the unit reads for the legal basis: %v", err)
	}

	refusals := len(events(t, l.s, audit.EvAccessRefused))
	for _, tc := range []struct{ who, purpose, rule string }{
		{"olga", "cancer-prevention", "purpose:"},
		{"cora", "emergency", "purpose:"},
		{"aud", "vaccination", "role:"},
		{"sue", "vaccination", "role:"},
		{"dora", "vaccination", "role:"},
		{"adam", "vaccination", "role:"},
	} {
		got, _, err := l.read(tc.who, "ds-1", tc.purpose, "C-9")
		if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), tc.rule) || len(got) != 0 {
			t.Errorf("%s reading for %s: %v (%d bytes)", tc.who, tc.purpose, err, len(got))
		}
		refusals++
		evs := events(t, l.s, audit.EvAccessRefused)
		if len(evs) != refusals || evs[len(evs)-1].DatasetID != "ds-1" || evs[len(evs)-1].Actor != tc.who {
			t.Errorf("%s's refusal is not recorded", tc.who)
		}
	}
	other := l.actor["olga"]
	other.Unit = "south"
	if _, err := l.s.ReadDataset(context.Background(), other, "ds-1", ReadRequest{"vaccination", "C-1"}, &bytes.Buffer{}); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "unit:") {
		t.Errorf("an officer of another unit: %v", err)
	}
	for _, bad := range []ReadRequest{{"vaccination", ""}, {"vaccination", strings.Repeat("x", 129)}, {"curiosity", "C-1"}, {"vaccination", "C\n1"}} {
		if _, err := l.s.ReadDataset(context.Background(), l.actor["olga"], "ds-1", bad, &bytes.Buffer{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if n := len(events(t, l.s, audit.EvDatasetRead)); n != 2 {
		t.Fatalf("%d reads recorded, want the 2 that were allowed", n)
	}

	// Emergency use: a director approves, for that purpose and case, once.
	ctx := context.Background()
	q, err := l.s.FileDataRequest(ctx, l.actor["olga"], DataRequest{Kind: accounts.KindEmergencyUse, Dataset: "ds-1",
		Purpose: "communicable-disease", Case: "OUTBREAK-7", Reason: "measles contact tracing"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.read("olga", "ds-1", "communicable-disease", "OUTBREAK-7"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("before the approval: %v", err)
	}
	if _, err := l.s.Approve(ctx, l.actor["sue"], q.ID, "not mine to approve"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a supervisor approved an emergency use: %v", err)
	}
	if _, err := l.s.Approve(ctx, l.actor["dora"], q.ID, "outbreak declared"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.read("olga", "ds-1", "communicable-disease", "OUTBREAK-8"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("the approval is for its case only: %v", err)
	}
	if _, _, err := l.read("cora", "ds-1", "communicable-disease", "OUTBREAK-7"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("the approval is its requester's only: %v", err)
	}
	if got, _, err := l.read("olga", "ds-1", "communicable-disease", "OUTBREAK-7"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the approved emergency use: %v", err)
	}
	if ev := lastEvent(t, l.s, audit.EvDatasetRead); ev.Details["request"] != q.ID || ev.Details["purpose"] != "communicable-disease" {
		t.Fatalf("the read must name the request that allowed it: %+v", ev)
	}
	if _, _, err := l.read("olga", "ds-1", "communicable-disease", "OUTBREAK-7"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("an emergency approval allows one read: %v", err)
	}
}

// TestQuarantinedAndHeldNeedAnApprovedRequest: data whose completeness is
// not proven is read only with a supervisor's exceptional-read approval.
func TestQuarantinedAndHeldNeedAnApprovedRequest(t *testing.T) {
	l := newLifecycle(t)
	ctx := context.Background()
	for _, st := range []audit.State{audit.StateQuarantined, audit.StateHeld} {
		id := "ds-" + string(st)
		data := []byte("HDR|1\nA\nTRL9\n")
		l.store(id, st, data)
		l.unseal()
		if _, _, err := l.read("olga", id, "vaccination", "C-1"); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "exceptional-read") {
			t.Fatalf("%s without a request: %v", st, err)
		}
		q, err := l.s.FileDataRequest(ctx, l.actor["olga"], DataRequest{Kind: accounts.KindExceptionalRead, Dataset: id,
			Purpose: "vaccination", Case: "C-1", Reason: "the provider confirmed the count"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.s.Approve(ctx, l.actor["sue"], q.ID, "count confirmed by phone"); err != nil {
			t.Fatal(err)
		}
		if got, _, err := l.read("olga", id, "vaccination", "C-1"); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s with an approved request: %v", st, err)
		}
		if _, err := l.s.Seal(ctx, l.actor["olga"]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.s.FileDataRequest(ctx, l.actor["olga"], DataRequest{Kind: accounts.KindExport, Dataset: "ds-held",
		Purpose: "vaccination", Case: "C-1", Reason: "wrong command for it"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an export through the data request: %v", err)
	}
}

// requireAge finds the stock age CLI: the test skips without it, unless
// CUSTODIAN_REQUIRE_AGE=1 (CI), where its absence fails.
func requireAge(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("age")
	if err != nil {
		if os.Getenv("CUSTODIAN_REQUIRE_AGE") == "1" {
			t.Fatalf("CUSTODIAN_REQUIRE_AGE=1 but the age CLI is not installed (Debian package age): %v", err)
		}
		t.Skip("the age CLI is not installed (Debian package age); CI sets CUSTODIAN_REQUIRE_AGE=1")
	}
	return p
}

// TestExportIsApprovedEncryptedAndOnce: an export without approval is
// refused; the approved one decrypts with the stock age CLI to the
// original bytes and runs once; an expired approval is refused; each
// refusal and the export are on the ledger.
func TestExportIsApprovedEncryptedAndOnce(t *testing.T) {
	ageBin := requireAge(t)
	l := newLifecycle(t)
	ctx := context.Background()
	data := []byte("HDR|1\nA123456789\nB987654321\nTRL2\n")
	l.store("ds-1", audit.StateVerified, data)
	l.unseal()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	recipient := id.Recipient().String()
	for _, bad := range []string{"", "age1notakey", "ssh-ed25519 AAAA"} {
		if _, err := l.s.FileExport(ctx, l.actor["olga"], ExportRequest{Dataset: "ds-1", Recipient: bad, Purpose: "vaccination", Case: "C-1", Reason: "for the county's vaccination team"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("recipient %q: %v", bad, err)
		}
	}
	if _, err := l.s.FileExport(ctx, l.actor["aud"], ExportRequest{Dataset: "ds-1", Recipient: recipient, Purpose: "vaccination", Case: "C-1", Reason: "for the county's vaccination team"}); !errors.Is(err, ErrForbidden) {
		t.Errorf("the auditor filed an export: %v", err)
	}
	q, err := l.s.FileExport(ctx, l.actor["cora"], ExportRequest{Dataset: "ds-1", Recipient: recipient, Purpose: "vaccination", Case: "C-1", Reason: "for the county's vaccination team"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := l.s.RunExport(ctx, l.actor["cora"], q.ID, &out); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "needs") || out.Len() != 0 {
		t.Fatalf("an export without approval: %v (%d bytes)", err, out.Len())
	}
	if ev := lastEvent(t, l.s, audit.EvAccessRefused); ev.Details["action"] != string(ActRunExport) {
		t.Fatalf("the refusal must be recorded: %+v", ev)
	}
	if _, err := l.s.Approve(ctx, l.actor["sue"], q.ID, "team lead's request seen"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.s.RunExport(ctx, l.actor["olga"], q.ID, &out); !errors.Is(err, ErrForbidden) || out.Len() != 0 {
		t.Fatalf("someone else ran the requester's export: %v", err)
	}
	res, err := l.s.RunExport(ctx, l.actor["cora"], q.ID, &out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out.Bytes(), data[6:16]) || !bytes.HasPrefix(out.Bytes(), []byte("age-encryption.org/v1\n")) {
		t.Fatal("the export is not age ciphertext")
	}
	ev := lastEvent(t, l.s, audit.EvDatasetExported)
	fp := sha256.Sum256([]byte(recipient))
	if ev.Actor != "cora" || ev.DatasetID != "ds-1" || ev.Details["recipient_fingerprint"] != hex.EncodeToString(fp[:]) ||
		ev.Details["sha256"] != hexSum(out.Bytes()) || ev.Details["bytes"] != strconv.Itoa(out.Len()) || ev.Details["request"] != q.ID ||
		ev.Details["purpose"] != "vaccination" || ev.Details["case"] != "C-1" || ev.Details["outcome"] != "complete" || res.SHA256 != ev.Details["sha256"] {
		t.Fatalf("dataset.exported: %+v", ev)
	}
	if strings.Contains(ev.Details["recipient_fingerprint"], recipient) {
		t.Fatal("the ledger names the key by its fingerprint")
	}

	// The stock age CLI decrypts it to the original bytes.
	dir := t.TempDir()
	keyFile, encFile := filepath.Join(dir, "key.txt"), filepath.Join(dir, "export.age")
	os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600)
	os.WriteFile(encFile, out.Bytes(), 0o600)
	plain, err := exec.Command(ageBin, "--decrypt", "--identity", keyFile, encFile).Output()
	if err != nil {
		t.Fatalf("age --decrypt: %v", err)
	}
	if !bytes.Equal(plain, data) {
		t.Fatalf("age decrypted %q, want the received bytes", plain)
	}

	// Once.
	var again bytes.Buffer
	if _, err := l.s.RunExport(ctx, l.actor["cora"], q.ID, &again); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "executes-once") || again.Len() != 0 {
		t.Fatalf("a second export: %v", err)
	}
	if n := len(events(t, l.s, audit.EvDatasetExported)); n != 1 {
		t.Fatalf("%d exports recorded", n)
	}

	// An expired approval.
	q2, err := l.s.FileExport(ctx, l.actor["cora"], ExportRequest{Dataset: "ds-1", Recipient: recipient, Purpose: "vaccination", Case: "C-2", Reason: "for the county's vaccination team"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.s.Approve(ctx, l.actor["sue"], q2.ID, "team lead's request seen"); err != nil {
		t.Fatal(err)
	}
	l.clk.advance(accounts.DefaultRequestTTL)
	l.unseal()
	if _, err := l.s.RunExport(ctx, l.actor["cora"], q2.ID, &again); !errors.Is(err, ErrConflict) || again.Len() != 0 {
		t.Fatalf("an expired approval: %v", err)
	}
}

// TestHandoverMovesCustodyOnlyAfterApprovalAndAcceptance: the inventory
// lists everything in the giver's custody; custody moves only once a
// supervisor approved and the receiver accepted, each dataset by its own
// event (state unchanged), and the ledger still verifies.
func TestHandoverMovesCustodyOnlyAfterApprovalAndAcceptance(t *testing.T) {
	l := newLifecycle(t)
	ctx := context.Background()
	l.store("ds-1", audit.StateVerified, []byte("one"))
	l.store("ds-2", audit.StateQuarantined, []byte("two"))
	custodians := func() map[string]string {
		ds, _ := l.s.Ledger.Datasets()
		m := map[string]string{}
		for _, d := range ds {
			m[d.ID] = d.Custodian + "/" + string(d.State)
		}
		return m
	}
	if _, err := l.s.FileHandover(ctx, l.actor["bert"], HandoverRequest{From: "olga", To: "bert", Reason: "olga moves to another post"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("an officer filed someone else's hand-over: %v", err)
	}
	q, err := l.s.FileHandover(ctx, l.actor["olga"], HandoverRequest{From: "olga", To: "bert", Reason: "olga moves to another post"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := l.s.HandoverView(ctx, l.actor["aud"], q.ID)
	if err != nil || len(h.Inventory) != 2 || h.Inventory[1].State != "quarantined" || h.Inventory[0].SHA256 != hexSum([]byte("one")) || h.To.FullName != "Person bert" {
		t.Fatalf("inventory: %+v %v", h, err)
	}
	if ev := lastEvent(t, l.s, audit.EvRequestFiled); ev.Details["inventory_sha256"] != h.InventorySHA256 || ev.Details["from"] != "olga" {
		t.Fatalf("the filed hand-over must name its inventory's hash: %+v", ev)
	}
	if _, err := l.s.AcceptHandover(ctx, l.actor["bert"], q.ID); !errors.Is(err, ErrConflict) {
		t.Fatalf("accepted before approval: %v", err)
	}
	if _, err := l.s.Approve(ctx, l.actor["sue"], q.ID, "inventory checked against the register"); err != nil {
		t.Fatal(err)
	}
	if got := custodians(); got["ds-1"] != "olga/verified" || got["ds-2"] != "olga/quarantined" {
		t.Fatalf("custody moved on approval alone: %v", got)
	}
	for _, who := range []string{"olga", "sue"} {
		if _, err := l.s.AcceptHandover(ctx, l.actor[who], q.ID); !errors.Is(err, ErrForbidden) {
			t.Fatalf("%s accepted bert's hand-over: %v", who, err)
		}
	}
	h, err = l.s.AcceptHandover(ctx, l.actor["bert"], q.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := custodians(); got["ds-1"] != "bert/verified" || got["ds-2"] != "bert/quarantined" {
		t.Fatalf("after acceptance: %v", got)
	}
	if n := len(events(t, l.s, audit.EvDatasetCustodyTransferred)); n != 2 {
		t.Fatalf("%d custody transfers recorded", n)
	}
	done := lastEvent(t, l.s, audit.EvHandoverCompleted)
	if done.Details["inventory_sha256"] != h.InventorySHA256 || done.Details["requested_by"] != "olga" || done.Details["approved_by"] != "sue" || done.Details["accepted_by"] != "bert" {
		t.Fatalf("handover.completed: %+v", done)
	}
	if h.AcceptedBy == nil || h.AcceptedBy.Username != "bert" || h.ApprovedBy == nil || h.ApprovedBy.Username != "sue" {
		t.Fatalf("signatures: %+v", h)
	}
	if _, err := l.s.AcceptHandover(ctx, l.actor["bert"], q.ID); !errors.Is(err, ErrConflict) {
		t.Fatalf("accepted twice: %v", err)
	}
	rep, err := audit.Verify(l.s.Ledger, audit.VerifyOptions{})
	if err != nil || !rep.OK {
		t.Fatalf("the ledger after a hand-over: %v %v", rep, err)
	}
}

// TestScrubInTheDaemon: unsealed, the service decrypts every object and
// records the outcome as its own finding; sealed, it refuses.
func TestScrubInTheDaemon(t *testing.T) {
	l := newLifecycle(t)
	ctx := context.Background()
	l.store("ds-1", audit.StateVerified, []byte("HDR|1\nA\nB\nC\nTRL3\n"))
	if _, err := l.s.ScrubVault(ctx, l.actor["aud"]); !errors.Is(err, ErrConflict) {
		t.Fatalf("a scrub while sealed: %v", err)
	}
	l.unseal()
	res, err := l.s.ScrubVault(ctx, l.actor["aud"])
	if err != nil || res.Checked != 1 {
		t.Fatalf("scrub: %+v %v", res, err)
	}
	ev := lastEvent(t, l.s, audit.EvVaultScrubbed)
	if ev.Actor != "aud" || ev.Details["objects_checked"] != "1" || ev.Index != res.Index || ev.Details["checked_digest"] != res.CheckedDigest {
		t.Fatalf("vault.scrubbed: %+v", ev)
	}
	// ds-1 counts 0 records with no counting rule: the ledger's 3 is a mismatch the scrub finds.
	if ev.Details["failed"] != "1" || len(events(t, l.s, audit.EvVaultObjectFailed)) != 1 {
		t.Fatalf("the record-count mismatch must be found: %+v", ev)
	}
}

// TestTrainingEnforcedOnReads: with training.enforce, an officer without
// three hours of training in the last year is refused a read, with the
// rule, and the refusal is recorded; once trained, the read goes through.
func TestTrainingEnforcedOnReads(t *testing.T) {
	l := newLifecycle(t)
	l.store("ds-1", audit.StateVerified, []byte("HDR|1\nA\nB\nC\nTRL3\n"))
	l.unseal()
	l.s.config().Training.Enforce = true
	_, _, err := l.read("olga", "ds-1", "vaccination", "C-2026-9")
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "training:") {
		t.Fatalf("an untrained officer's read: %v", err)
	}
	if ev := lastEvent(t, l.s, audit.EvAccessRefused); ev.Details["action"] != string(ActReadDataset) || !strings.Contains(ev.Details["rule"], "training") {
		t.Fatalf("the refusal must be recorded: %+v", ev)
	}
	if _, err := l.s.RecordTraining(context.Background(), l.actor["sue"], TrainingRecord{Username: "olga", Hours: "3", Date: l.clk.now().AddDate(0, 0, -10).Format("2006-01-02"), Course: "個資保護"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.read("olga", "ds-1", "vaccination", "C-2026-9"); err != nil {
		t.Fatalf("after training: %v", err)
	}
}

// TestDestroyWithTheUnsealedKey: an approved destruction runs with the key
// an officer unsealed (no passphrase sent); afterwards a read of the
// dataset fails naming when, by whom and on which request it was
// destroyed, and the other datasets stay readable.
func TestDestroyWithTheUnsealedKey(t *testing.T) {
	l := newLifecycle(t)
	l.add("sam", accounts.RoleSupervisor)
	ctx := context.Background()
	l.store("ds-1", audit.StateVerified, []byte("HDR|1\nA\nB\nC\nTRL3\n"))
	l.store("ds-2", audit.StateVerified, []byte("HDR|1\nD\nE\nF\nTRL3\n"))
	q, err := l.s.FileDestruction(ctx, l.actor["olga"], DestructionRequest{Datasets: []string{"ds-1"}, Reason: "retention of two years has passed"})
	if err != nil {
		t.Fatal(err)
	}
	for _, sup := range []string{"sue", "sam"} {
		if _, err := l.s.Approve(ctx, l.actor[sup], q.ID, "retention checked against the job"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.s.RunDestruction(ctx, l.actor["olga"], q.ID, DestroyOptions{}); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "unseal") {
		t.Fatalf("a destruction with the vault sealed and no passphrase: %v", err)
	}
	if _, err := l.s.RunDestruction(ctx, l.actor["olga"], q.ID, DestroyOptions{Rotate: true}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a rotation without the passphrase: %v", err)
	}
	l.unseal()
	if _, err := l.s.RunDestruction(ctx, l.actor["olga"], q.ID, DestroyOptions{}); err != nil {
		t.Fatal(err)
	}
	_, _, err = l.read("olga", "ds-1", "vaccination", "C-2026-4")
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "destroyed on") || !strings.Contains(err.Error(), "by olga") || !strings.Contains(err.Error(), q.ID) {
		t.Fatalf("a read of a destroyed dataset: %v", err)
	}
	if got, _, err := l.read("olga", "ds-2", "vaccination", "C-2026-4"); err != nil || !strings.Contains(string(got), "E\nF") {
		t.Fatalf("the other dataset after the destruction: %v", err)
	}
}
