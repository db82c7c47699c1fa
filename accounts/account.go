package accounts

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// AccountState is whether an account may log in.
type AccountState string

// Account states.
const (
	StateActive   AccountState = "active"
	StateLocked   AccountState = "locked"   // too many failed logins; only an approved unlock request reopens it
	StateDisabled AccountState = "disabled" // by request, by an ended agreement or for not being used
)

// ErrUsernameTaken is for storage: a username is never reused, even after
// the account is disabled. Nothing in this package returns it.
var ErrUsernameTaken = errors.New("username taken: usernames are never reused")

// Agreement is a contractor's confidentiality agreement with the unit.
type Agreement struct {
	Reference string    `json:"reference"`
	Ends      time.Time `json:"ends"` // the account is disabled from this instant
}

// Account is one person's account. Its methods apply the rules; the caller
// stores the result.
type Account struct {
	Username   string       `json:"username"`
	FullName   string       `json:"full_name"`
	EmployeeID string       `json:"employee_id"`
	Unit       string       `json:"unit"`
	Roles      []Role       `json:"roles"`
	State      AccountState `json:"state"`
	// Contractor is required for, and only for, the contractor role.
	Contractor *Agreement `json:"contractor,omitempty"`
	Created    time.Time  `json:"created"`

	// PasswordHash is a PHC string ([Hash]).
	PasswordHash  string    `json:"password_hash"`
	PasswordSetAt time.Time `json:"password_set_at"`
	// MustChangePassword: the password was issued (by an admin), not
	// chosen; the next login may only change it.
	MustChangePassword bool `json:"must_change_password"`
	// PasswordHistory holds earlier PHC strings, newest first; with the
	// current one they are the passwords that cannot be reused.
	PasswordHistory []string `json:"password_history,omitempty"`

	FailedLogins int       `json:"failed_logins"` // consecutive
	LockedAt     time.Time `json:"locked_at,omitzero"`
	LastLogin    time.Time `json:"last_login,omitzero"`

	// TOTPSecret is the base32 RFC 6238 secret; empty if not enrolled.
	TOTPSecret string `json:"totp_secret,omitempty"`
	// TOTPLastStep is the time step of the last accepted code, so that a
	// code is used once.
	TOTPLastStep int64 `json:"totp_last_step,omitempty"`
	// TOTPPending is a secret shown at enrolment and not yet confirmed
	// with a first code.
	TOTPPending string `json:"totp_pending,omitempty"`
}

var usernameRE = regexp.MustCompile(`^[a-z0-9._-]{3,64}$`)

// ValidateUsername checks the form of a username: 3 to 64 lower-case
// letters, digits, '.', '_' or '-'.
func ValidateUsername(name string) error {
	if !usernameRE.MatchString(name) {
		return fmt.Errorf("username: %q: use 3 to 64 lower-case letters, digits, '.', '_' or '-'", name)
	}
	return nil
}

// Validate checks an account's data: the username, the roles, the state,
// and the contractor agreement (required with the contractor role, with a
// reference and an end date; not allowed without it). Every problem is
// returned, joined.
func (a *Account) Validate() error {
	var errs []error
	if err := ValidateUsername(a.Username); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(a.FullName) == "" {
		errs = append(errs, errors.New("full_name: required"))
	}
	if err := ValidateRoles(a.Roles); err != nil {
		errs = append(errs, err)
	}
	switch a.State {
	case StateActive, StateLocked, StateDisabled:
	default:
		errs = append(errs, fmt.Errorf("state: %q is not a state; use active, locked or disabled", a.State))
	}
	contractor := slices.Contains(a.Roles, RoleContractor)
	switch {
	case contractor && a.Contractor == nil:
		errs = append(errs, errors.New("contractor: a contractor account records the unit's confidentiality agreement (reference and end date)"))
	case contractor && (strings.TrimSpace(a.Contractor.Reference) == "" || a.Contractor.Ends.IsZero()):
		errs = append(errs, errors.New("contractor: the agreement needs a reference and an end date"))
	case !contractor && a.Contractor != nil:
		errs = append(errs, errors.New("contractor: only an account with the contractor role records an agreement"))
	}
	return errors.Join(errs...)
}

// HasRole reports whether the account holds r.
func (a *Account) HasRole(r Role) bool { return slices.Contains(a.Roles, r) }

// DisabledOn reports whether a contractor's agreement has ended at now: the
// account is disabled from the agreement's end date.
func (a *Account) DisabledOn(now time.Time) bool {
	return a.Contractor != nil && !now.Before(a.Contractor.Ends)
}

// Unused reports whether the account has not been used for after (the
// issue's 180 days) at now: no login since, counting from its creation if
// it never logged in. An account with neither date is unused: there is no
// evidence of use. after ≤ 0 turns the rule off.
func (a *Account) Unused(now time.Time, after time.Duration) bool {
	if after <= 0 {
		return false
	}
	last := a.LastLogin
	if a.Created.After(last) {
		last = a.Created
	}
	return last.IsZero() || now.Sub(last) >= after
}

// RecordFailure counts a failed login at now and locks the account after
// l.Attempts consecutive failures; it reports whether the account is now
// locked. Failures on an account that is not active are not counted.
func (a *Account) RecordFailure(now time.Time, l Lockout) (locked bool) {
	if a.State != StateActive {
		return a.State == StateLocked
	}
	a.FailedLogins++
	if a.FailedLogins >= max(l.Attempts, 1) {
		a.State = StateLocked
		a.LockedAt = now
		return true
	}
	return false
}

// RecordSuccess records a successful login at now: the count of failures
// starts again and LastLogin is now.
func (a *Account) RecordSuccess(now time.Time) {
	a.FailedLogins = 0
	a.LastLogin = now
}
