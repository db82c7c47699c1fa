package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"custodian/accounts"
	"custodian/audit"
	"custodian/proof"
)

// TestArchiveAndPruneRules: an archive of the events before a date checks
// offline and fails after a changed byte; a prune request for anything
// younger than five years is refused and the refusal recorded; an old,
// archived segment can be requested, and two supervisors approve.
func TestArchiveAndPruneRules(t *testing.T) {
	s := newService(t)
	clk := newClock()
	s.Now = clk.now
	ctx := context.Background()
	aud := Actor{Name: "auditor.a", Roles: roles(accounts.RoleAuditor)}
	sup := Actor{Name: "sue", Roles: roles(accounts.RoleSupervisor)}
	sid := Actor{Name: "sid", Roles: roles(accounts.RoleSupervisor)}
	// The installation's first years, then this year's events.
	err := s.Ledger.Update(func(tx *audit.Tx) error {
		for i := range 8 {
			at := time.Date(2019, 1, 1+i, 0, 0, 0, 0, time.UTC)
			if i >= 5 {
				at = time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC)
			}
			if _, err := tx.Append(audit.Event{Time: at, Actor: "system:custodian", Type: audit.EvDaemonStarted}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	p := struct{ s *Service }{s}
	before := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	arc, err := p.s.ArchiveLedger(ctx, aud, before)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := p.s.Ledger.Size()
	if arc.Count != 5 || arc.CheckpointSize != n-1 || n != 9 {
		t.Fatalf("archive of %d events, ledger %d", arc.Count, n)
	}
	vkey, _ := p.s.Ledger.VerifierKey()
	res, err := proof.CheckArchive(arc.Archive, proof.Options{VerifierKey: vkey})
	if err != nil || !res.KeyTrusted || res.Count != arc.Count {
		t.Fatalf("check: %+v %v", res, err)
	}
	sum := sha256.Sum256(arc.Archive)
	if hex.EncodeToString(sum[:]) != arc.SHA256 {
		t.Fatal("sha256")
	}
	ev := events(t, p.s, audit.EvLedgerArchived)
	if len(ev) != 1 || ev[0].Details["archive_sha256"] != arc.SHA256 || ev[0].Index != arc.Event {
		t.Fatalf("ledger.archived: %+v", ev)
	}
	// Any changed byte fails.
	for _, at := range []int{10, len(arc.Archive) / 3, len(arc.Archive) / 2, len(arc.Archive) - 20} {
		bad := []byte(string(arc.Archive))
		bad[at] ^= 0x01
		if _, err := proof.CheckArchive(bad, proof.Options{VerifierKey: vkey}); !errors.Is(err, proof.ErrInvalid) {
			t.Errorf("byte %d changed: %v", at, err)
		}
	}
	if _, err := p.s.ArchiveLedger(ctx, sup, before); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a supervisor archived: %v", err)
	}
	if _, err := p.s.ArchiveLedger(ctx, aud, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("nothing before 2000: %v", err)
	}

	// Pruning younger than five years is refused, and recorded.
	req := PruneRequest{Before: clk.now().AddDate(-5, 0, 1), ArchiveSHA256: arc.SHA256, Reason: "retention period over"}
	_, err = p.s.FilePruneRequest(ctx, aud, req)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "retention:") {
		t.Fatalf("pruning younger than five years: %v", err)
	}
	refused := events(t, p.s, audit.EvAccessRefused)
	if last := refused[len(refused)-1]; last.Details["action"] != string(ActPruneLedger) || !strings.Contains(last.Details["rule"], "retention") {
		t.Fatalf("the refusal is not recorded: %+v", last)
	}
	// Old enough but not archived: refused.
	old := time.Date(2019, 1, 4, 0, 0, 0, 0, time.UTC)
	if _, err := p.s.FilePruneRequest(ctx, aud, PruneRequest{Before: old, ArchiveSHA256: strings.Repeat("0", 64), Reason: "retention period over"}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "archived:") {
		t.Fatalf("not archived: %v", err)
	}
	// Archived, and older than five years: filed.
	q, err := p.s.FilePruneRequest(ctx, aud, PruneRequest{Before: old, ArchiveSHA256: arc.SHA256, Reason: "retention period over"})
	if err != nil {
		t.Fatal(err)
	}
	if q.Kind != accounts.KindPrune || q.Approvers != 2 || q.Details["archive_sha256"] != arc.SHA256 {
		t.Fatalf("prune request: %+v", q)
	}
	if _, err := p.s.FilePruneRequest(ctx, sup, req); !errors.Is(err, ErrForbidden) {
		t.Fatal(err)
	}
	// The archive covers a later date when no event lies between.
	if _, err := p.s.FilePruneRequest(ctx, aud, PruneRequest{Before: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC), ArchiveSHA256: arc.SHA256, Reason: "retention period over"}); err != nil {
		t.Fatalf("2021: every event before it (the 2019 ones) is archived: %v", err)
	}
	// A smaller archive does not cover what it does not hold.
	small, err := p.s.ArchiveLedger(ctx, aud, time.Date(2019, 1, 3, 0, 0, 0, 0, time.UTC))
	if err != nil || small.Count != 2 {
		t.Fatal(small.Count, err)
	}
	if _, err := p.s.FilePruneRequest(ctx, aud, PruneRequest{Before: old, ArchiveSHA256: small.SHA256, Reason: "retention period over"}); !errors.Is(err, ErrRefused) {
		t.Fatalf("an archive of 2 events covers 3: %v", err)
	}
	if v, err := p.s.Approve(ctx, sup, q.ID, "archive checked offline"); err != nil || v.State != "pending" {
		t.Fatal(v.State, err)
	}
	if v, err := p.s.Approve(ctx, sid, q.ID, "archive checked offline"); err != nil || v.State != "approved" {
		t.Fatal(v.State, err)
	}
}

func TestRetentionRule(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if err := retentionRule(time.Date(2021, 12, 1, 0, 0, 0, 0, time.UTC), now); err != nil {
		t.Fatalf("exactly five years: %v", err)
	}
	for _, b := range []time.Time{time.Date(2021, 12, 1, 0, 0, 1, 0, time.UTC), now, now.AddDate(1, 0, 0)} {
		if err := retentionRule(b, now); !errors.Is(err, ErrRefused) {
			t.Errorf("before %s: %v", b, err)
		}
	}
}
