package service

import (
	"context"
	"strings"
	"testing"

	"custodian/accounts"
)

// TestCustodianProblem: a job's officer must be an active officer or
// contractor account; every other name is explained, with the fix.
func TestCustodianProblem(t *testing.T) {
	p := newPeople(t)
	p.add("olga", accounts.RoleOfficer)
	p.add("cora", accounts.RoleContractor)
	p.add("aud", accounts.RoleAuditor)
	p.add("olaf", accounts.RoleOfficer)
	s, ctx := p.s, context.Background()
	q, err := s.FileAccountRequest(ctx, p.actor["adam"], AccountRequest{Kind: accounts.KindAccountDisable, Username: "olaf", Reason: "left the agency"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Approve(ctx, p.actor["sue"], q.ID, "resignation letter seen"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ExecuteRequest(ctx, p.actor["adam"], q.ID); err != nil {
		t.Fatal(err)
	}
	for user, want := range map[string]string{
		"olga": "", "cora": "",
		"":       "no officer is named",
		"nobody": "no account nobody",
		"olaf":   "is disabled",
		"aud":    "neither the officer nor the contractor role",
	} {
		got := s.CustodianProblem(user)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("CustodianProblem(%q) = %q, want %q", user, got, want)
		}
	}
}
