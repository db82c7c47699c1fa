package configs

import (
	"fmt"
	"strings"
	"time"
)

// Accounts is the optional accounts: block: the rules of per-person
// accounts (package accounts), clauses 五(九)–(十三). Every key has a
// default.
type Accounts struct {
	Password AccountsPassword `yaml:"password"`
	Lockout  AccountsLockout  `yaml:"lockout"`
	// DisableUnusedAfter disables an account not used for this long.
	DisableUnusedAfter Duration `yaml:"disable_unused_after"`
	// RequireTOTP lists the roles that must use one-time codes; [] for none.
	RequireTOTP []string        `yaml:"require_totp"`
	Session     AccountsSession `yaml:"session"`
}

// AccountsPassword is accounts.password.
type AccountsPassword struct {
	MinLength int      `yaml:"min_length" accept:"a whole number of characters from 8 to 128"`
	MaxAge    Duration `yaml:"max_age"`
	History   int      `yaml:"history" accept:"a whole number of passwords from 1 to 24"`
}

// AccountsLockout is accounts.lockout.
type AccountsLockout struct {
	Attempts int `yaml:"attempts" accept:"a whole number from 1 to 100"`
}

// AccountsSession is accounts.session.
type AccountsSession struct {
	Idle     Duration `yaml:"idle"`
	Absolute Duration `yaml:"absolute"`
}

// AccountRoles are the roles of package accounts (a test there keeps the
// two lists equal; configs cannot import accounts, which sits above it).
var AccountRoles = []string{"officer", "supervisor", "auditor", "admin", "director", "contractor", "metrics"}

// Defaults of the accounts: block (clause 五(十二) and the issue).
const (
	DefaultPasswordMinLength  = 12
	DefaultPasswordMaxAge     = 90 * 24 * time.Hour
	DefaultPasswordHistory    = 5
	DefaultLockoutAttempts    = 5
	DefaultDisableUnusedAfter = 180 * 24 * time.Hour
	DefaultSessionIdle        = 15 * time.Minute
	DefaultSessionAbsolute    = 8 * time.Hour
)

// DefaultRequireTOTP is the default of accounts.require_totp.
var DefaultRequireTOTP = []string{"admin", "supervisor", "director"}

func (c *Config) applyAccountsDefaults() {
	a := &c.Accounts
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setDur := func(v *Duration, d time.Duration) {
		if v.Duration == 0 {
			v.Duration = d
		}
	}
	setInt(&a.Password.MinLength, DefaultPasswordMinLength)
	setDur(&a.Password.MaxAge, DefaultPasswordMaxAge)
	setInt(&a.Password.History, DefaultPasswordHistory)
	setInt(&a.Lockout.Attempts, DefaultLockoutAttempts)
	setDur(&a.DisableUnusedAfter, DefaultDisableUnusedAfter)
	setDur(&a.Session.Idle, DefaultSessionIdle)
	setDur(&a.Session.Absolute, DefaultSessionAbsolute)
	if a.RequireTOTP == nil {
		a.RequireTOTP = append([]string(nil), DefaultRequireTOTP...)
	}
}

func (c *Config) validateAccounts(p *problems) {
	a := &c.Accounts
	const day = 24 * time.Hour
	if n := a.Password.MinLength; n < 8 || n > 128 {
		p.add("accounts.password.min_length", "%d is out of range; use 8 to 128 characters (clause 五(十二): 12)", n)
	}
	if d := a.Password.MaxAge.Duration; d < day || d > 366*day {
		p.add("accounts.password.max_age", "%s is out of range; use 1d to 366d (clause 五(十二): 90d)", days(d))
	}
	if n := a.Password.History; n < 1 || n > 24 {
		p.add("accounts.password.history", "%d is out of range; use 1 to 24 passwords (clause 五(十二): 5)", n)
	}
	if n := a.Lockout.Attempts; n < 1 || n > 100 {
		p.add("accounts.lockout.attempts", "%d is out of range; use 1 to 100 consecutive failures", n)
	}
	if d := a.DisableUnusedAfter.Duration; d < day {
		p.add("accounts.disable_unused_after", "%s is out of range; use at least 1d, e.g. 180d", days(d))
	}
	seen := map[string]bool{}
	for i, r := range a.RequireTOTP {
		at := fmt.Sprintf("accounts.require_totp[%d]", i)
		switch {
		case !contains(AccountRoles, r):
			p.add(at, "%q is not a role; use %s", r, strings.Join(AccountRoles, ", "))
		case seen[r]:
			p.add(at, "%s is listed twice", r)
		}
		seen[r] = true
	}
	idle, abs := a.Session.Idle.Duration, a.Session.Absolute.Duration
	if idle < time.Minute {
		p.add("accounts.session.idle", "%s is out of range; use at least 1m, e.g. 15m", shortDuration(idle))
	}
	if abs > 7*day {
		p.add("accounts.session.absolute", "%s is out of range; use at most 7d, e.g. 8h", days(abs))
	}
	if idle >= abs && abs > 0 {
		p.add("accounts.session", "idle (%s) must be shorter than absolute (%s)", shortDuration(idle), shortDuration(abs))
	} else if abs <= 0 {
		p.add("accounts.session.absolute", "%s is out of range; use a positive duration, e.g. 8h", shortDuration(abs))
	}
}

// days writes a duration of whole days as 90d, others as shortDuration.
func days(d time.Duration) string {
	const day = 24 * time.Hour
	if d > 0 && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	return shortDuration(d)
}
