package audit

import (
	"errors"
	"testing"
)

// TestDestroyedState: dataset.destroyed moves a dataset from any stored
// state to destroyed and nothing leaves it; Verify replays it; a change
// file that was accepted keeps its place in the job's sequence chain.
func TestDestroyedState(t *testing.T) {
	l, _ := openTest(t, newTestKey(t, "test"))
	app := func(typ EventType, d *Dataset) error {
		return l.Update(func(tx *Tx) error {
			_, err := tx.Append(Event{Actor: "officer.a", Type: typ, Dataset: d})
			return err
		})
	}
	for i, st := range []State{StateVerified, StateQuarantined, StateHeld, StateUnverified} {
		d := testDataset(i+1, st)
		d.Integrity = map[string]string{IntegritySequence: "7"}
		if err := app(EvDatasetReceived, d); err != nil {
			t.Fatal(err)
		}
		x := *d
		x.State, x.DestroyedFrom = StateDestroyed, st
		if err := app(EvDatasetDestroyed, &x); err != nil {
			t.Fatalf("%s → destroyed: %v", st, err)
		}
		y := x
		y.State = StateVerified
		if err := app(EvDatasetReleased, &y); !errors.Is(err, ErrTransition) {
			t.Fatalf("destroyed → verified: %v", err)
		}
		if err := app(EvDatasetDestroyed, &x); !errors.Is(err, ErrTransition) {
			t.Fatalf("destroyed twice: %v", err)
		}
	}
	rep, err := Verify(l, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Fatalf("verify after destruction: %v", rep.Problems)
	}
	if d, ok, err := l.Dataset(testDataset(1, StateVerified).ID); err != nil || !ok || d.State != StateDestroyed || d.SHA256 == "" {
		t.Errorf("the ledger keeps the destroyed dataset's metadata: %+v %v %v", d, ok, err)
	}
}

// TestVaultRecipient: the trusted vault key is the first event's,
// replaced by each vault.rotated in turn; a rotation from a key not in
// force is reported.
func TestVaultRecipient(t *testing.T) {
	l, _ := openTest(t, newTestKey(t, "test"))
	rec := func(typ EventType, once string, d map[string]string) error {
		return l.Update(func(tx *Tx) error {
			if once != "" {
				_, _, err := tx.AppendOnce(once, Event{Actor: "officer.a", Type: typ, Details: d})
				return err
			}
			_, err := tx.Append(Event{Actor: "system:custodian", Type: typ, Details: d})
			return err
		})
	}
	if err := rec(EvInstallationInitialized, "", map[string]string{"vault_recipient": "age1first"}); err != nil {
		t.Fatal(err)
	}
	if r, n, err := l.VaultRecipient(); err != nil || r != "age1first" || n != 0 {
		t.Fatalf("%s %d %v", r, n, err)
	}
	rec(EvVaultRotated, RotationOnceKey(1), map[string]string{"old_recipient": "age1first", "new_recipient": "age1second"})
	rec(EvVaultRotated, RotationOnceKey(2), map[string]string{"old_recipient": "age1second", "new_recipient": "age1third"})
	if r, n, err := l.VaultRecipient(); err != nil || r != "age1third" || n != 2 {
		t.Fatalf("%s %d %v", r, n, err)
	}
	rec(EvVaultRotated, RotationOnceKey(3), map[string]string{"old_recipient": "age1other", "new_recipient": "age1fourth"})
	if _, _, err := l.VaultRecipient(); err == nil {
		t.Fatal("a rotation from a key not in force was accepted")
	}
}
