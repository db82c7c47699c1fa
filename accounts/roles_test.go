package accounts

import (
	"strings"
	"testing"

	"custodian/service"
)

// TestRoleMatrix enumerates every service action × every role and compares
// Allowed with the matrix written out here, so that a new action or a
// changed row is a deliberate edit of this test.
func TestRoleMatrix(t *testing.T) {
	const (
		O = RoleOfficer
		S = RoleSupervisor
		A = RoleAuditor
		M = RoleAdmin
		D = RoleDirector
		C = RoleContractor
	)
	want := map[service.Action][]Role{
		service.ActStatus:       {O, S, A, M, D, C},
		service.ActRunJob:       {O, C},
		service.ActListDatasets: {O, S, A, C},
		service.ActShowDataset:  {O, S, A, D, C},
		service.ActRelease:      {O, C},
		service.ActRepull:       {O, C},
		service.ActReadLedger:   {S, A},
		service.ActVerifyLedger: {A},
		service.ActExportLedger: {A},
		service.ActScrubPlan:    {O, A, C},
		service.ActRecordScrub:  {O, C},
		service.ActBackup:       {M},
	}
	if len(want) != len(service.Actions) {
		t.Fatalf("the expected matrix has %d actions, service.Actions %d: write the new action's row here", len(want), len(service.Actions))
	}
	for _, act := range service.Actions {
		row, ok := want[act]
		if !ok {
			t.Errorf("%s: no expected row", act)
		}
		for _, r := range Roles {
			exp := false
			for _, w := range row {
				exp = exp || w == r
			}
			if got := Allowed(r, act); got != exp {
				t.Errorf("Allowed(%s, %s) = %v, want %v", r, act, got, exp)
			}
			if got := Permits([]Role{r}, act); got != exp {
				t.Errorf("Permits([%s], %s) = %v, want %v", r, act, got, exp)
			}
		}
	}
	// Contractors have exactly an officer's rights.
	for _, act := range service.Actions {
		if Allowed(RoleOfficer, act) != Allowed(RoleContractor, act) {
			t.Errorf("%s: officer and contractor differ", act)
		}
	}
}

// TestMatrixFailsClosed: an action outside the table, an unknown role and
// no roles are refused.
func TestMatrixFailsClosed(t *testing.T) {
	for _, r := range Roles {
		if Allowed(r, "dataset.destroy") || Allowed(r, "") {
			t.Errorf("%s is allowed an unknown action", r)
		}
	}
	if Allowed("root", service.ActStatus) || Allowed("", service.ActStatus) {
		t.Error("an unknown role is allowed status")
	}
	if Permits(nil, service.ActStatus) {
		t.Error("no roles permits status")
	}
	if !Permits([]Role{RoleAdmin, RoleSupervisor}, service.ActReadLedger) || Permits([]Role{RoleAdmin, RoleDirector}, service.ActReadLedger) {
		t.Error("Permits must be the union of the roles' rights")
	}
}

func TestValidateRoles(t *testing.T) {
	for _, tc := range []struct {
		roles []Role
		rule  string // "" = valid
	}{
		{[]Role{RoleOfficer}, ""},
		{[]Role{RoleOfficer, RoleSupervisor}, ""},
		{[]Role{RoleAuditor, RoleSupervisor, RoleDirector}, ""},
		{[]Role{RoleAdmin, RoleSupervisor}, ""},
		{[]Role{RoleContractor}, ""},
		{nil, "at least one role"},
		{[]Role{"root"}, `"root" is not a role`},
		{[]Role{RoleOfficer, RoleOfficer}, "listed twice"},
		{[]Role{RoleAuditor, RoleAdmin}, "separation of duties: an auditor cannot also be an admin"},
		{[]Role{RoleOfficer, RoleAuditor}, "separation of duties: an auditor cannot also be an officer"},
		{[]Role{RoleAuditor, RoleContractor}, "separation of duties: an auditor cannot also be a contractor"},
	} {
		err := ValidateRoles(tc.roles)
		switch {
		case tc.rule == "" && err != nil:
			t.Errorf("%v: %v", tc.roles, err)
		case tc.rule != "" && (err == nil || !strings.Contains(err.Error(), tc.rule)):
			t.Errorf("%v: got %v, want %q", tc.roles, err, tc.rule)
		}
	}
}
