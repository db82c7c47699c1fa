package service

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"custodian/accounts"
	"custodian/audit"
)

// fillDatasets receives n datasets over jobs a and b, three states and
// two purposes, one an hour.
func fillDatasets(t testing.TB, s *Service, n int) time.Time {
	t.Helper()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	states := []audit.State{audit.StateVerified, audit.StateQuarantined, audit.StateHeld}
	for i := 0; i < n; i += 1000 {
		err := s.Ledger.Update(func(tx *audit.Tx) error {
			for j := i; j < min(i+1000, n); j++ {
				d := audit.Dataset{ID: fmt.Sprintf("ds-%012x", j), Job: []string{"a", "b"}[j%2], Source: "moi", Kind: "change",
					RemotePath: fmt.Sprintf("/outbox/HR_%d.txt", j), Size: 1 << 20, SHA256: fmt.Sprintf("%064x", j), Records: 1000,
					State: states[j%3], Purpose: []string{"vaccination", "census"}[j%2], ReceivedAt: base.Add(time.Duration(j) * time.Hour)}
				if _, err := tx.Append(audit.Event{Actor: "officer.a", Type: audit.EvDatasetReceived, Dataset: &d}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return base
}

// TestDatasetPage: the page method authorizes like the list (the role
// matrix, refusals recorded), checks its limits, filters and pages newest
// first, and a unit other than the installation's selects nothing.
func TestDatasetPage(t *testing.T) {
	s := newService(t)
	s.config().Unit = "north"
	base := fillDatasets(t, s, 30)
	ctx := context.Background()
	p, err := s.DatasetPage(ctx, auditor, DatasetQuery{Job: "a", State: string(audit.StateVerified), Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	// jobs a: even j; verified: j%3==0 → j in {0,6,12,18,24}; newest first.
	if p.Total != 5 || len(p.Datasets) != 3 || p.Datasets[0].ID != "ds-000000000018" || p.Datasets[2].ID != "ds-00000000000c" {
		t.Fatalf("page: total %d, %+v", p.Total, p.Datasets)
	}
	p, _ = s.DatasetPage(ctx, auditor, DatasetQuery{Since: base.Add(10 * time.Hour), Until: base.Add(12 * time.Hour), Limit: 10})
	if p.Total != 2 {
		t.Fatalf("date range: %d", p.Total)
	}
	if p, _ = s.DatasetPage(ctx, auditor, DatasetQuery{Unit: "south", Limit: 10}); p.Total != 0 || len(p.Datasets) != 0 {
		t.Fatalf("another unit: %+v", p)
	}
	if p, _ = s.DatasetPage(ctx, auditor, DatasetQuery{Unit: "north", Limit: 10}); p.Total != 30 {
		t.Fatalf("the installation's unit: %d", p.Total)
	}
	for _, q := range []DatasetQuery{{Limit: 0}, {Limit: MaxDatasetPage + 1}, {Limit: 1, Offset: -1}, {Limit: 1, State: "lost"},
		{Limit: 1, Since: base.Add(time.Hour), Until: base}} {
		if _, err := s.DatasetPage(ctx, auditor, q); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", q, err)
		}
	}
	admin := Actor{Name: "adam", Roles: []accounts.Role{accounts.RoleAdmin}}
	if _, err := s.DatasetPage(ctx, admin, DatasetQuery{Limit: 1}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("an admin sees no data: %v", err)
	}
	if len(events(t, s, audit.EvAccessRefused)) != 1 {
		t.Fatal("the refusal must be recorded")
	}
	if err := s.Allow(admin, ActListDatasets, "GET /datasets"); !errors.Is(err, ErrForbidden) || len(events(t, s, audit.EvAccessRefused)) != 2 {
		t.Fatalf("Allow refuses by the matrix and records it: %v", err)
	}
}

// BenchmarkDatasetPage measures one filtered page over 100,000 datasets
// (the console's datasets page). It reports the time per page; it asserts
// none.
func BenchmarkDatasetPage(b *testing.B) {
	s := newService(b)
	fillDatasets(b, s, 100_000)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		q    DatasetQuery
	}{
		{"all", DatasetQuery{Limit: 50}},
		{"job+state", DatasetQuery{Job: "a", State: string(audit.StateQuarantined), Limit: 50}},
		{"deep-page", DatasetQuery{Purpose: "census", Offset: 40_000, Limit: 50}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.DatasetPage(ctx, auditor, c.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
