package accounts

import (
	"strings"
	"testing"
)

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
