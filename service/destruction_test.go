package service

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"custodian/accounts"
	"custodian/audit"
	"custodian/configs"
)

// TestExpiring: a dataset past its job's retention is listed with the days
// overdue (and its open destruction request once filed); one within it,
// one of a job without retention, and a destroyed one are not.
func TestExpiring(t *testing.T) {
	p := newPeople(t)
	p.add("olga", accounts.RoleOfficer)
	s := p.s
	s.config().Jobs = []*configs.Job{{Name: "pull", Retention: configs.Retention{Days: 30}}, {Name: "forever"}}
	now := p.clk.now()
	rec := func(id, job string, age time.Duration, st audit.State) {
		err := s.Ledger.Update(func(tx *audit.Tx) error {
			_, err := tx.Append(audit.Event{Actor: "olga", Time: now.Add(-age), Type: audit.EvDatasetReceived, Dataset: &audit.Dataset{
				ID: id, Job: job, Source: "moi", Kind: "extract", RemotePath: "/outbox/" + id, State: st, ReceivedAt: now.Add(-age)}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	day := 24 * time.Hour
	rec("ds-old", "pull", 40*day+time.Hour, audit.StateVerified)
	rec("ds-new", "pull", 10*day, audit.StateVerified)
	rec("ds-kept", "forever", 400*day, audit.StateVerified)
	ctx := context.Background()
	list, err := s.ExpiringDatasets(ctx, p.actor["olga"])
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Dataset.ID != "ds-old" || list[0].DaysOverdue != 10 || list[0].Retention != "30d" || list[0].Request != "" {
		t.Fatalf("expiring %+v", list)
	}
	q, err := s.FileDestruction(ctx, p.actor["olga"], DestructionRequest{Datasets: []string{"ds-old"}, Reason: "retention of 30 days passed"})
	if err != nil {
		t.Fatal(err)
	}
	if list, _ = s.ExpiringDatasets(ctx, p.actor["olga"]); len(list) != 1 || list[0].Request != q.ID {
		t.Fatalf("after filing: %+v", list)
	}
	if _, err := s.ExpiringDatasets(ctx, p.actor["adam"]); !errors.Is(err, ErrForbidden) {
		t.Errorf("an admin lists expiring datasets: %v", err)
	}
}

// TestDestructionRequestRules: only an officer (or contractor) files it,
// with a reason, for known stored datasets; it needs two supervisors, not
// the requester; a run without the vault is refused before anything.
func TestDestructionRequestRules(t *testing.T) {
	p := newPeople(t)
	p.add("olga", accounts.RoleOfficer)
	p.add("sam", accounts.RoleSupervisor)
	s := p.s
	receive(t, s, "ds-1", audit.StateQuarantined)
	ctx := context.Background()
	if _, err := s.FileDestruction(ctx, p.actor["sue"], DestructionRequest{Datasets: []string{"ds-1"}, Reason: "a supervisor asks"}); !errors.Is(err, ErrForbidden) {
		t.Errorf("a supervisor filed a destruction request: %v", err)
	}
	if _, err := s.FileDestruction(ctx, p.actor["olga"], DestructionRequest{Datasets: []string{"ds-1"}, Reason: "short"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("no reason: %v", err)
	}
	if _, err := s.FileDestruction(ctx, p.actor["olga"], DestructionRequest{Datasets: []string{"ds-nope"}, Reason: "retention passed"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown dataset: %v", err)
	}
	q, err := s.FileDestruction(ctx, p.actor["olga"], DestructionRequest{Datasets: []string{"ds-1"}, Reason: "retention passed"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Approve(ctx, p.actor["olga"], q.ID, "approving my own request"); !errors.Is(err, ErrForbidden) {
		t.Errorf("self-approval: %v", err)
	}
	s.Approve(ctx, p.actor["sue"], q.ID, "first approval given")
	if _, err := s.RunDestruction(ctx, p.actor["olga"], q.ID, DestroyOptions{Passphrase: []byte("x")}); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "needs-approvals") {
		t.Errorf("one approval of two: %v", err)
	}
	s.Approve(ctx, p.actor["sam"], q.ID, "second approval given")
	if _, err := s.RunDestruction(ctx, p.actor["sue"], q.ID, DestroyOptions{Passphrase: []byte("x")}); !errors.Is(err, ErrForbidden) {
		t.Errorf("run by a supervisor: %v", err)
	}
	if _, err := s.RunDestruction(ctx, p.actor["olga"], q.ID, DestroyOptions{Passphrase: []byte("x")}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("run without a vault: %v", err)
	}
	if n := countEvents(t, s, audit.EvAccessRefused, "action", string(ActDestroy)); n != 2 {
		t.Errorf("%d refused runs recorded, want 2", n)
	}
	if n := countEvents(t, s, audit.EvAccessRefused, "action", string(ActRequestDestruction)); n != 1 {
		t.Errorf("%d refused filings recorded, want 1", n)
	}
}
