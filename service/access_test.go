package service

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"custodian/accounts"
	"custodian/audit"
)

// TestCosignAccess: a supervisor co-signs a period's access records (not
// their own), recorded with the indexes' digest; the rest stay listed as
// uncosigned.
func TestCosignAccess(t *testing.T) {
	p := reviewPeople(t)
	p.add("sam", accounts.RoleSupervisor, accounts.RoleOfficer)
	ctx := context.Background()
	a := reads(t, p.s, "officer.a", 4, time.March)
	b := reads(t, p.s, "officer.b", 2, time.March)
	own := reads(t, p.s, "sam", 1, time.March)
	reads(t, p.s, "officer.a", 2, time.April)
	list := func(q AccessQuery) []int64 {
		t.Helper()
		recs, err := p.s.AccessRecords(ctx, p.actor["auditor.a"], q)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, r := range recs {
			out = append(out, r.Index)
		}
		return out
	}
	if got := list(AccessQuery{Period: "2026-03", Uncosigned: true}); len(got) != 7 {
		t.Fatalf("uncosigned before: %v", got)
	}
	c, err := p.s.CosignAccess(ctx, p.actor["sam"], AccessQuery{Period: "2026-03", User: "officer.a"})
	if err != nil || c.Count != 4 || !slices.Equal(c.Indexes, a) || c.IndexesSHA256 != IndexesDigest(a) {
		t.Fatalf("cosign: %+v %v", c, err)
	}
	c2, err := p.s.CosignAccess(ctx, p.actor["sam"], AccessQuery{Period: "2026-03"})
	if err != nil || !slices.Equal(c2.Indexes, b) || c2.SkippedOwn != 1 {
		t.Fatalf("cosign the rest: %+v %v", c2, err)
	}
	if got := list(AccessQuery{Period: "2026-03", Uncosigned: true}); !slices.Equal(got, own) {
		t.Fatalf("uncosigned after: %v, want sam's own %v", got, own)
	}
	if _, err := p.s.CosignAccess(ctx, p.actor["sam"], AccessQuery{Period: "2026-03"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("nothing left to co-sign: %v", err)
	}
	c3, err := p.s.CosignAccess(ctx, p.actor["sue"], AccessQuery{Period: "2026-03"})
	if err != nil || !slices.Equal(c3.Indexes, own) {
		t.Fatalf("another supervisor co-signs sam's: %+v %v", c3, err)
	}
	evs := events(t, p.s, audit.EvAccessCosigned)
	if len(evs) != 3 || evs[0].Actor != "sam" || evs[0].Details["count"] != "4" || evs[0].Details["indexes_sha256"] != IndexesDigest(a) || evs[0].Details["user"] != "officer.a" {
		t.Fatalf("access.cosigned: %+v", evs)
	}
	recs, _ := p.s.AccessRecords(ctx, p.actor["sue"], AccessQuery{Period: "2026-03"})
	if recs[0].Cosigned == nil || recs[0].Cosigned.By != "sam" || recs[0].Cosigned.Event != evs[0].Index {
		t.Fatalf("record: %+v", recs[0])
	}
	if _, err := p.s.CosignAccess(ctx, p.actor["auditor.a"], AccessQuery{Period: "2026-04"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("an auditor co-signed: %v", err)
	}
	if _, err := p.s.AccessRecords(ctx, p.actor["officer.a"], AccessQuery{Period: "2026"}); !errors.Is(err, ErrForbidden) {
		t.Fatal(err)
	}
	if _, err := p.s.CosignAccess(ctx, p.actor["sue"], AccessQuery{Period: "March"}); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
}
