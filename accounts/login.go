package accounts

import (
	"errors"
	"fmt"
	"time"
)

// Login errors. ErrBadCredentials is the same for an unknown username and
// a wrong password, and takes as long.
var (
	ErrBadCredentials         = errors.New("wrong username or password")
	ErrLocked                 = errors.New("account locked after too many failed logins; an approved unlock request reopens it")
	ErrDisabled               = errors.New("account disabled")
	ErrPasswordChangeRequired = errors.New("password change required")
	ErrTOTPRequired           = errors.New("one-time code required")
	ErrTOTPEnrollRequired     = errors.New("one-time codes required: enrol an authenticator first")
	ErrBadTOTP                = errors.New("wrong one-time code")
)

// Lockout locks an account after Attempts consecutive failed logins.
type Lockout struct{ Attempts int }

// DefaultLockout is the default: 5 attempts.
var DefaultLockout = Lockout{Attempts: 5}

// DefaultDisableUnusedAfter: accounts unused for 180 days are disabled.
const DefaultDisableUnusedAfter = 180 * 24 * time.Hour

// Policy is every account rule that configuration sets (configs.Accounts)
// plus the hash parameters.
type Policy struct {
	Password           PasswordPolicy
	Lockout            Lockout
	DisableUnusedAfter time.Duration
	RequireTOTP        []Role
	Idle, Absolute     time.Duration // session limits
	// Hash are the argon2id parameters of new password hashes, and the
	// cost of the dummy verification for unknown usernames (zero:
	// DefaultParams).
	Hash Params
}

// DefaultPolicy returns the defaults.
func DefaultPolicy() Policy {
	return Policy{
		Password:           DefaultPasswordPolicy,
		Lockout:            DefaultLockout,
		DisableUnusedAfter: DefaultDisableUnusedAfter,
		RequireTOTP:        append([]Role(nil), DefaultRequireTOTP...),
		Idle:               DefaultIdle,
		Absolute:           DefaultAbsolute,
		Hash:               DefaultParams,
	}
}

// CheckLogin decides a login attempt at now by a (nil for an unknown
// username) with password pw and one-time code code ("" if none was
// given), and records its outcome on a (failures, lock, last login, TOTP
// step) for the caller to store. In order:
//
//  1. the password is verified first, always (for an unknown user against
//     a dummy of the same cost): a wrong one is ErrBadCredentials and
//     counts as a failure, so nothing else about the account is revealed
//     to someone without its password;
//  2. a disabled account (by state, an ended contractor agreement, or
//     not used for DisableUnusedAfter) is ErrDisabled, a locked one
//     ErrLocked;
//  3. TOTP, if the account is enrolled or its roles require it: no code is
//     ErrTOTPRequired (not a failure), no enrolment ErrTOTPEnrollRequired,
//     a wrong or reused code ErrBadTOTP (a failure);
//  4. an issued or expired password is ErrPasswordChangeRequired: the
//     person is authenticated (the login counts as a success) but may only
//     change the password.
//
// nil means logged in. A disabled or unused account is not marked
// disabled here; the caller does that (and records it) when it sees
// ErrDisabled with a.State still active.
func (p Policy) CheckLogin(a *Account, pw, code string, now time.Time) error {
	hp := p.Hash
	if hp == (Params{}) {
		hp = DefaultParams
	}
	if a == nil {
		DummyVerify(hp)
		return ErrBadCredentials
	}
	ok, err := Verify(pw, a.PasswordHash)
	if err != nil {
		DummyVerify(hp) // a damaged hash takes as long as a wrong password
	}
	if err != nil || !ok {
		a.RecordFailure(now, p.Lockout)
		return ErrBadCredentials
	}
	switch {
	case a.State == StateDisabled:
		return ErrDisabled
	case a.DisabledOn(now):
		return fmt.Errorf("%w: the contractor agreement %s ended on %s", ErrDisabled, a.Contractor.Reference, a.Contractor.Ends.Format(time.DateOnly))
	case a.Unused(now, p.DisableUnusedAfter):
		return fmt.Errorf("%w: not used for %d days", ErrDisabled, int(p.DisableUnusedAfter/(24*time.Hour)))
	case a.State == StateLocked:
		return ErrLocked
	case a.State != StateActive:
		return fmt.Errorf("%w: state %q", ErrDisabled, a.State)
	}
	if a.TOTPSecret != "" || RequireTOTP(a.Roles, p.RequireTOTP) {
		switch {
		case a.TOTPSecret == "":
			a.RecordSuccess(now)
			return ErrTOTPEnrollRequired
		case code == "":
			return ErrTOTPRequired
		}
		if err := a.CheckTOTP(code, now); err != nil {
			if a.RecordFailure(now, p.Lockout) {
				return fmt.Errorf("%w; %w", err, ErrLocked)
			}
			return err
		}
	}
	a.RecordSuccess(now)
	if p.Password.Expired(a, now) {
		return ErrPasswordChangeRequired
	}
	return nil
}

// Unlock reopens a locked account through req, an approved unlock request
// for a's username: it executes req (by, holding roles, at now: the
// approvals engine's rules apply) and makes a active with no failures, in
// one step, so that an account is never unlocked without its request being
// marked executed, nor the reverse. The caller stores both.
func Unlock(a *Account, req *Request, by string, roles []Role, now time.Time) error {
	switch {
	case req == nil || req.Kind != KindUnlock:
		return rule("unlock-request", "an account is unlocked only through an approved unlock request")
	case req.Subject != a.Username:
		return rule("unlock-request", "request %s is for %q, not %q", req.ID, req.Subject, a.Username)
	case a.State != StateLocked:
		return rule("unlock-request", "%s is %s, not locked", a.Username, a.State)
	}
	if err := req.Execute(by, roles, now); err != nil {
		return err
	}
	a.State, a.FailedLogins, a.LockedAt = StateActive, 0, time.Time{}
	return nil
}
