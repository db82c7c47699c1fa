package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"custodian/audit"
	"custodian/proof"
)

// TestSearchEvents: every filter selects what it says, filters combine,
// and pages continue where the last one stopped without losing or
// repeating an event, oldest first and newest first.
func TestSearchEvents(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var all []audit.Event
	for i := range 30 {
		ev := audit.Event{Time: t0.Add(time.Duration(i) * time.Hour), Actor: []string{"officer.a", "auditor.b"}[i%2],
			Type: []audit.EventType{audit.EvJobStarted, audit.EvDatasetReleased, audit.EvAccessRefused}[i%3]}
		switch ev.Type {
		case audit.EvDatasetReleased:
			ev.Type = audit.EvDatasetSuperseded // a dataset event without a state change
			ev.DatasetID = fmt.Sprintf("ds-%d", i%2)
		case audit.EvAccessRefused:
			ev.Details = map[string]string{"purpose": []string{"vaccination", "emergency"}[i%2], "unit": "unit-" + fmt.Sprint(i%5)}
		}
		all = append(all, ev)
	}
	if err := s.Ledger.Update(func(tx *audit.Tx) error {
		for _, ev := range all {
			if _, err := tx.Append(ev); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := func(q EventQuery, keep func(i int, ev audit.Event) bool) {
		t.Helper()
		var exp []int64
		for i, ev := range all {
			if keep(i, ev) {
				exp = append(exp, int64(i))
			}
		}
		orig := q
		// Pages of 4: together they must be exactly exp.
		var got []int64
		q.Limit = 4
		for pages := 0; ; pages++ {
			p, err := s.SearchEvents(ctx, auditor, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Events {
				got = append(got, e.Index)
			}
			if p.Next == nil {
				break
			}
			if pages > 30 || *p.Next <= q.From {
				t.Fatalf("pagination does not advance: %+v", p)
			}
			q.From = *p.Next
		}
		if fmt.Sprint(got) != fmt.Sprint(exp) {
			t.Errorf("%+v: got %v, want %v", q, got, exp)
		}
		// Newest first (auditing_desc.go): the same events, reversed,
		// none lost or repeated across pages.
		got = nil
		q = orig
		q.Limit, q.Desc = 4, true
		for pages := 0; ; pages++ {
			p, err := s.SearchEvents(ctx, auditor, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Events {
				got = append(got, e.Index)
			}
			if p.Next == nil {
				break
			}
			if pages > 30 || (q.Before != 0 && *p.Next >= q.Before) {
				t.Fatalf("newest-first pagination does not advance: %+v", p)
			}
			q.Before = *p.Next
		}
		slices.Reverse(exp)
		if fmt.Sprint(got) != fmt.Sprint(exp) {
			t.Errorf("newest first %+v: got %v, want %v", q, got, exp)
		}
	}
	want(EventQuery{}, func(int, audit.Event) bool { return true })
	want(EventQuery{Actor: "auditor.b"}, func(i int, _ audit.Event) bool { return i%2 == 1 })
	want(EventQuery{Type: "dataset."}, func(i int, _ audit.Event) bool { return i%3 == 1 })
	want(EventQuery{Type: "access.refused"}, func(i int, _ audit.Event) bool { return i%3 == 2 })
	want(EventQuery{Dataset: "ds-1"}, func(i int, _ audit.Event) bool { return i%3 == 1 && i%2 == 1 })
	want(EventQuery{Purpose: "emergency"}, func(i int, _ audit.Event) bool { return i%3 == 2 && i%2 == 1 })
	want(EventQuery{Unit: "unit-3"}, func(i int, _ audit.Event) bool { return i%3 == 2 && i%5 == 3 })
	want(EventQuery{Since: t0.Add(5 * time.Hour), Until: t0.Add(12 * time.Hour)}, func(i int, _ audit.Event) bool { return i >= 5 && i < 12 })
	want(EventQuery{Since: t0.Add(5 * time.Hour), Actor: "officer.a", Type: "job."}, func(i int, _ audit.Event) bool { return i >= 5 && i%6 == 0 })
	want(EventQuery{From: 20, Actor: "officer.a"}, func(i int, _ audit.Event) bool { return i >= 20 && i%2 == 0 })

	for _, bad := range []EventQuery{{Limit: 0}, {Limit: 1, From: -1}, {Limit: 1, Since: t0, Until: t0}, {Limit: 1, Desc: true, Before: -1}, {Limit: 1, Before: 3}} {
		if _, err := s.SearchEvents(ctx, auditor, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

// TestProofsThroughTheService: the service's proofs check offline; an
// event past the end is not found; a checkpoint of another history is a
// conflict, not a proof.
func TestProofsThroughTheService(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	receive(t, s, "ds-1", audit.StateVerified)
	old, _ := s.Ledger.Checkpoint()
	receive(t, s, "ds-2", audit.StateHeld)
	vkey, _ := s.Ledger.VerifierKey()

	inc, err := s.ProveEvent(ctx, auditor, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := proof.Encode(inc)
	if r, err := proof.Check(b, proof.Options{VerifierKey: vkey}); err != nil || r.Event.DatasetID != "ds-2" {
		t.Fatalf("inclusion: %v %+v", err, r)
	}
	if _, err := s.ProveEvent(ctx, auditor, 2); !errors.Is(err, ErrNotFound) {
		t.Errorf("past the end: %v", err)
	}
	if _, err := s.ProveEvent(ctx, auditor, -1); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative: %v", err)
	}
	con, err := s.ProveConsistency(ctx, auditor, string(old), "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = proof.Encode(con)
	if r, err := proof.Check(b, proof.Options{VerifierKey: vkey}); err != nil || r.Old.N != 1 || r.New.N != 2 {
		t.Fatalf("consistency: %v %+v", err, r)
	}
	if _, err := s.ProveConsistency(ctx, auditor, "", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("no old checkpoint: %v", err)
	}
	other := newService(t)
	receive(t, other, "ds-x", audit.StateVerified)
	foreign, _ := other.Ledger.Checkpoint()
	if _, err := s.ProveConsistency(ctx, auditor, string(foreign), ""); !errors.Is(err, ErrConflict) {
		t.Errorf("another ledger's checkpoint: %v", err)
	}
}
