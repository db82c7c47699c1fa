package accounts

import (
	"fmt"

	"custodian/configs"
)

// PolicyFromConfig is the policy an accounts: block sets (configs has
// validated it and applied its defaults), with the real hash parameters.
func PolicyFromConfig(c configs.Accounts) (Policy, error) {
	p := DefaultPolicy()
	p.Password.MinLength = c.Password.MinLength
	p.Password.MaxAge = c.Password.MaxAge.Duration
	p.Password.History = c.Password.History
	p.Lockout.Attempts = c.Lockout.Attempts
	p.DisableUnusedAfter = c.DisableUnusedAfter.Duration
	p.Idle, p.Absolute = c.Session.Idle.Duration, c.Session.Absolute.Duration
	p.RequireTOTP = make([]Role, 0, len(c.RequireTOTP))
	for _, r := range c.RequireTOTP {
		if !Role(r).Known() {
			return Policy{}, fmt.Errorf("accounts.require_totp: %q is not a role", r)
		}
		p.RequireTOTP = append(p.RequireTOTP, Role(r))
	}
	return p, nil
}
