package accounts

import (
	"fmt"
	"time"

	"custodian/configs"
)

// PolicyFromConfig is the policy an accounts: block sets (configs has
// validated it and applied its defaults; a zero value here keeps the
// default), with the real hash parameters.
func PolicyFromConfig(c configs.Accounts) (Policy, error) {
	p := DefaultPolicy()
	setInt := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	setDur := func(dst *time.Duration, v time.Duration) {
		if v != 0 {
			*dst = v
		}
	}
	setInt(&p.Password.MinLength, c.Password.MinLength)
	setDur(&p.Password.MaxAge, c.Password.MaxAge.Duration)
	setInt(&p.Password.History, c.Password.History)
	setInt(&p.Lockout.Attempts, c.Lockout.Attempts)
	setDur(&p.DisableUnusedAfter, c.DisableUnusedAfter.Duration)
	setDur(&p.Idle, c.Session.Idle.Duration)
	setDur(&p.Absolute, c.Session.Absolute.Duration)
	if c.RequireTOTP == nil {
		return p, nil
	}
	p.RequireTOTP = make([]Role, 0, len(c.RequireTOTP))
	for _, r := range c.RequireTOTP {
		if !Role(r).Known() {
			return Policy{}, fmt.Errorf("accounts.require_totp: %q is not a role", r)
		}
		p.RequireTOTP = append(p.RequireTOTP, Role(r))
	}
	return p, nil
}
