package service

import (
	"fmt"
	"slices"

	"custodian/accounts"
)

// CustodianProblem says why username cannot be the custodian of a job's
// datasets (jobs[].officer), or "" if they can: an active account of the
// installation's unit holding the officer or contractor role. Custody is
// attributed to the job's officer on every dataset it receives, so a
// name with no such account (a typo, an account not created yet, one
// disabled or locked, a hand-over whose jobs were not moved) is shown in
// status and on the console's jobs page. Runs are not stopped for it:
// the data keeps arriving and is recorded, and the officer's team fixes
// the configuration.
func (s *Service) CustodianProblem(username string) string {
	if username == "" {
		return "no officer is named (jobs[].officer)"
	}
	acct, err := s.account(username)
	switch {
	case err != nil:
		return fmt.Sprintf("cannot read the account %s: %v", username, err)
	case acct == nil:
		return fmt.Sprintf("no account %s: create it (account request create) or name an existing officer in jobs[].officer", username)
	case acct.State != accounts.StateActive || acct.DisabledOn(s.now()):
		return fmt.Sprintf("the account %s is %s: name an active officer in jobs[].officer (after a hand-over, its receiver)", username, acct.State)
	case !slices.Contains(acct.Roles, accounts.RoleOfficer) && !slices.Contains(acct.Roles, accounts.RoleContractor):
		return fmt.Sprintf("%s holds neither the officer nor the contractor role", username)
	case acct.Unit != s.config().Unit:
		return fmt.Sprintf("%s belongs to unit %s, not %s", username, acct.Unit, s.config().Unit)
	}
	return ""
}
