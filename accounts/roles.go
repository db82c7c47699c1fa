package accounts

import (
	"fmt"
	"slices"
	"strings"
)

// Role is what an account may do; an account holds one or more.
type Role string

// The roles.
const (
	// RoleOfficer runs jobs and acts on datasets of their unit, and files
	// requests.
	RoleOfficer Role = "officer"
	// RoleSupervisor approves or rejects requests and co-signs access
	// records.
	RoleSupervisor Role = "supervisor"
	// RoleAuditor reads the ledger and runs reviews: no data reads, no
	// approvals, no job runs.
	RoleAuditor Role = "auditor"
	// RoleAdmin executes approved account changes: no data reads, no
	// approvals.
	RoleAdmin Role = "admin"
	// RoleDirector is the head of agency: approves emergency use.
	RoleDirector Role = "director"
	// RoleContractor has an officer's rights, but every copy needs
	// approval and the account records a confidentiality agreement.
	RoleContractor Role = "contractor"
	// RoleMetrics may only scrape /metrics over HTTPS (a monitoring
	// system's account); it holds no other role.
	RoleMetrics Role = "metrics"
)

// Roles lists every role.
var Roles = []Role{RoleOfficer, RoleSupervisor, RoleAuditor, RoleAdmin, RoleDirector, RoleContractor, RoleMetrics}

// Known reports whether r is one of [Roles].
func (r Role) Known() bool { return slices.Contains(Roles, r) }

// separated lists, for a role, the roles one account may not hold with it.
var separated = map[Role][]Role{
	RoleAuditor: {RoleAdmin, RoleOfficer, RoleContractor},
	RoleMetrics: {RoleOfficer, RoleSupervisor, RoleAuditor, RoleAdmin, RoleDirector, RoleContractor},
}

// ValidateRoles checks a set of roles for one account: at least one, each
// known, none twice, and the separation of duties (an auditor cannot also
// be an admin, officer or contractor). The error names the rule.
func ValidateRoles(roles []Role) error {
	if len(roles) == 0 {
		return fmt.Errorf("roles: an account holds at least one role (%s)", roleList(Roles))
	}
	for i, r := range roles {
		if !r.Known() {
			return fmt.Errorf("roles: %q is not a role; use %s", r, roleList(Roles))
		}
		if slices.Contains(roles[:i], r) {
			return fmt.Errorf("roles: %s is listed twice", r)
		}
	}
	for _, r := range roles {
		for _, other := range separated[r] {
			if slices.Contains(roles, other) {
				return fmt.Errorf("roles: separation of duties: an %s cannot also be %s (an %s may not hold %s)", r, article(other), r, roleList(separated[r]))
			}
		}
	}
	return nil
}

func article(r Role) string {
	if strings.ContainsRune("aeiou", rune(r[0])) {
		return "an " + string(r)
	}
	return "a " + string(r)
}

func roleList(rs []Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}
