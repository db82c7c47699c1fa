package audit

import (
	"errors"
	"strings"
	"testing"
)

// TestTransitionTable enumerates every (event, from, to) and checks the
// table says exactly what the custody rules say.
func TestTransitionTable(t *testing.T) {
	allowed := map[[3]string]bool{}
	for _, s := range []State{StateVerified, StateQuarantined, StateHeld, StateUnverified} {
		allowed[[3]string{string(EvDatasetReceived), "", string(s)}] = true
		allowed[[3]string{string(EvDatasetRepulled), string(StateQuarantined), string(s)}] = true
	}
	allowed[[3]string{string(EvDatasetReleased), string(StateHeld), string(StateVerified)}] = true
	allowed[[3]string{string(EvDatasetReleased), string(StateQuarantined), string(StateReleased)}] = true
	// A hand-over changes the custodian of a dataset in any state, never
	// the state.
	for _, s := range States {
		allowed[[3]string{string(EvDatasetCustodyTransferred), string(s), string(s)}] = true
	}
	// Destruction: from every state whose objects are stored; nothing
	// leaves destroyed.
	for _, s := range []State{StateVerified, StateQuarantined, StateHeld, StateUnverified, StateReleased} {
		allowed[[3]string{string(EvDatasetDestroyed), string(s), string(StateDestroyed)}] = true
	}

	froms := append([]State{""}, States...)
	for _, ev := range EventTypes() {
		for _, from := range froms {
			for _, to := range States {
				err := CheckTransition(ev, from, to)
				want := allowed[[3]string{string(ev), string(from), string(to)}]
				if (err == nil) != want {
					t.Errorf("%s: %q → %q: allowed=%v, table says %v", ev, from, to, want, err)
				}
				if err != nil && err.Error() == "" {
					t.Errorf("%s: empty refusal", ev)
				}
			}
		}
	}
	// A released quarantined file is never called verified.
	if err := CheckTransition(EvDatasetReleased, StateQuarantined, StateVerified); err == nil || !strings.Contains(err.Error(), "released") {
		t.Errorf("quarantined → verified by release: %v", err)
	}
}

// TestAppendRefusesForbiddenTransition: Append writes no state change the
// table forbids, and no event type outside the catalogue.
func TestAppendRefusesForbiddenTransition(t *testing.T) {
	l, _ := openTest(t, newTestKey(t, "test"))
	d := testDataset(1, StateQuarantined)
	app := func(typ EventType, d *Dataset) error {
		return l.Update(func(tx *Tx) error {
			_, err := tx.Append(Event{Actor: "officer.a", Type: typ, Dataset: d})
			return err
		})
	}
	if err := app(EvDatasetReceived, d); err != nil {
		t.Fatal(err)
	}
	v := *d
	v.State = StateVerified
	if err := app(EvDatasetReleased, &v); !errors.Is(err, ErrTransition) {
		t.Fatalf("quarantined → verified by release: %v", err)
	}
	if err := app(EvDatasetReceived, &v); !errors.Is(err, ErrTransition) {
		t.Fatalf("a second receipt of a recorded dataset: %v", err)
	}
	if err := app("dataset.teleported", &v); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("unknown type: %v", err)
	}
	if err := app(EvDatasetReleased, nil); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("a state-changing type without a state: %v", err)
	}
	if n, _ := l.Size(); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
}

// TestVerifyFindsForbiddenTransition: a state change the rules forbid,
// written into a ledger whose hashes and signature are otherwise sound,
// fails verification and names the event.
func TestVerifyFindsForbiddenTransition(t *testing.T) {
	l, path := openTest(t, newTestKey(t, "test"))
	d := testDataset(1, StateQuarantined)
	v := *d
	v.State = StateVerified // a quarantined file may be released, never verified
	testSkipTransitions = true
	err := l.Update(func(tx *Tx) error {
		if _, err := tx.Append(Event{Actor: "officer.a", Type: EvDatasetReceived, Dataset: d}); err != nil {
			return err
		}
		_, err := tx.Append(Event{Actor: "officer.a", Type: EvDatasetReleased, Dataset: &v})
		return err
	})
	testSkipTransitions = false
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	rep := verifyFile(t, path, VerifyOptions{})
	if rep.OK || !hasKind(rep, ProblemTransition) || rep.FirstBad != 1 {
		t.Fatalf("forbidden transition not reported at event 1: %s", rep)
	}
	if !strings.Contains(rep.String(), "quarantined") {
		t.Errorf("the report should say what the table allows: %s", rep)
	}
}

// TestCustodyTransferKeepsTheState: a hand-over's event records the new
// custodian of a dataset in its state; it cannot change the state nor
// apply to a dataset not recorded, and Verify replays it as the table
// says: sound when the state stayed, a problem where it changed.
func TestCustodyTransferKeepsTheState(t *testing.T) {
	l, path := openTest(t, newTestKey(t, "test"))
	d := testDataset(1, StateHeld)
	d.Custodian = "olga"
	app := func(typ EventType, d *Dataset) error {
		return l.Update(func(tx *Tx) error {
			_, err := tx.Append(Event{Actor: "bert", Type: typ, Dataset: d, Details: map[string]string{"from": "olga", "to": "bert"}})
			return err
		})
	}
	if err := app(EvDatasetReceived, d); err != nil {
		t.Fatal(err)
	}
	moved := *d
	moved.Custodian = "bert"
	if err := app(EvDatasetCustodyTransferred, &moved); err != nil {
		t.Fatalf("custody transfer: %v", err)
	}
	if got, _, _ := l.Dataset(d.ID); got.Custodian != "bert" || got.State != StateHeld {
		t.Fatalf("after the transfer: %+v", got)
	}
	changed := moved
	changed.State = StateVerified
	if err := app(EvDatasetCustodyTransferred, &changed); !errors.Is(err, ErrTransition) {
		t.Fatalf("a hand-over that changes the state: %v", err)
	}
	if err := app(EvDatasetCustodyTransferred, testDataset(2, StateVerified)); !errors.Is(err, ErrTransition) {
		t.Fatalf("a hand-over of a dataset never received: %v", err)
	}
	if err := app(EvDatasetCustodyTransferred, nil); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("a hand-over event without the dataset: %v", err)
	}
	// Written past the rules: Verify finds it.
	testSkipTransitions = true
	err := app(EvDatasetCustodyTransferred, &changed)
	testSkipTransitions = false
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	rep := verifyFile(t, path, VerifyOptions{})
	if rep.OK || !hasKind(rep, ProblemTransition) || rep.FirstBad != 2 {
		t.Fatalf("a custody transfer that changed the state must be reported at event 2: %s", rep)
	}
}
