package accounts

import (
	"fmt"
	"slices"
	"strings"

	"custodian/service"
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
)

// Roles lists every role.
var Roles = []Role{RoleOfficer, RoleSupervisor, RoleAuditor, RoleAdmin, RoleDirector, RoleContractor}

// Known reports whether r is one of [Roles].
func (r Role) Known() bool { return slices.Contains(Roles, r) }

// matrix is the one role matrix: for each action, the roles that may
// perform it. An action that is not here is refused to every role.
//
//   - officer and contractor: the data work of their unit (runs, datasets,
//     release, re-pull) and the vault scrub, which decrypts objects in
//     memory and so is a data read, done by the people who hold the vault
//     key;
//   - supervisor: reads datasets and the ledger (approvals are requests,
//     not service actions);
//   - auditor: the ledger (read, verify, export, checkpoint), dataset
//     metadata and the scrub plan (the list of objects and digests the
//     ledger refers to, to compare with a scrub report); not the scrub
//     itself, which decrypts data;
//   - admin: status and backups (a backup copies ciphertext and sealed
//     keys; it decrypts nothing);
//   - director: status and one dataset's metadata.
var matrix = map[service.Action][]Role{
	service.ActStatus:       {RoleOfficer, RoleSupervisor, RoleAuditor, RoleAdmin, RoleDirector, RoleContractor},
	service.ActRunJob:       {RoleOfficer, RoleContractor},
	service.ActListDatasets: {RoleOfficer, RoleSupervisor, RoleAuditor, RoleContractor},
	service.ActShowDataset:  {RoleOfficer, RoleSupervisor, RoleAuditor, RoleDirector, RoleContractor},
	service.ActRelease:      {RoleOfficer, RoleContractor},
	service.ActRepull:       {RoleOfficer, RoleContractor},
	service.ActReadLedger:   {RoleSupervisor, RoleAuditor},
	service.ActVerifyLedger: {RoleAuditor},
	service.ActExportLedger: {RoleAuditor},
	service.ActScrubPlan:    {RoleOfficer, RoleAuditor, RoleContractor},
	service.ActRecordScrub:  {RoleOfficer, RoleContractor},
	service.ActBackup:       {RoleAdmin},
}

// Allowed reports whether role may perform action. An unknown role or an
// action outside the matrix is refused.
func Allowed(role Role, action service.Action) bool {
	return slices.Contains(matrix[action], role)
}

// Permits reports whether an account holding roles may perform action:
// whether one of them is [Allowed] to.
func Permits(roles []Role, action service.Action) bool {
	return slices.ContainsFunc(roles, func(r Role) bool { return Allowed(r, action) })
}

// separated lists, for a role, the roles one account may not hold with it.
var separated = map[Role][]Role{
	RoleAuditor: {RoleAdmin, RoleOfficer, RoleContractor},
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
