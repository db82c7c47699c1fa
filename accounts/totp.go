package accounts

import (
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// TOTP (RFC 6238) as authenticator apps use it: SHA-1, 6 digits, 30-second
// steps, a 160-bit secret.
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	// totpSkew is how many steps before and after now a code is accepted,
	// for clocks that drift (RFC 6238 section 5.2 recommends at most one).
	totpSkew = 1
)

// DefaultRequireTOTP are the roles that must use TOTP (the issue's
// require_totp default).
var DefaultRequireTOTP = []Role{RoleAdmin, RoleSupervisor, RoleDirector}

// ErrTOTPReused: the code is right but was already used (its step is not
// after the last accepted one).
var ErrTOTPReused = errors.New("this code was already used; wait for the next one")

// EnrollTOTP creates a fresh secret for username, and the otpauth:// URI an
// authenticator app reads (as a QR code or typed in). The secret goes on
// the account ([Account.TOTPSecret]) once the user has proved, with a
// first code, that the app holds it.
func EnrollTOTP(username, issuer string) (secret, uri string, err error) {
	k, err := totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: username, Period: totpPeriod, Digits: totpDigits,
		Algorithm: otp.AlgorithmSHA1, SecretSize: 20,
	})
	if err != nil {
		return "", "", fmt.Errorf("totp enrolment: %w", err)
	}
	return k.Secret(), k.URL(), nil
}

// ValidateTOTP reports whether code is secret's code at now, allowing one
// step of clock skew either way, and returns the step it matched (for
// [Account.TOTPLastStep]). A secret that is not base32 is an error.
func ValidateTOTP(secret, code string, now time.Time) (step int64, ok bool, err error) {
	return validateTOTP(secret, code, now, totpDigits)
}

// minSecret is the shortest secret accepted: RFC 4226 section 4 requires
// at least 128 bits (an empty secret would give codes anyone can compute).
const minSecret = 16

func validateTOTP(secret, code string, now time.Time, digits otp.Digits) (int64, bool, error) {
	if now.Unix() < 0 {
		return 0, false, errors.New("totp: time before 1970")
	}
	s := strings.ToUpper(strings.TrimSpace(secret))
	if n := len(s) % 8; n != 0 {
		s += strings.Repeat("=", 8-n)
	}
	if key, err := base32.StdEncoding.DecodeString(s); err != nil || len(key) < minSecret {
		return 0, false, fmt.Errorf("totp: the secret is not base32 of at least %d bytes", minSecret)
	}
	cur := now.Unix() / totpPeriod
	found, match := int64(0), 0
	// Every candidate is computed and compared, so the time taken does not
	// depend on which one matched.
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		s := cur + d
		if s < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(s), hotp.ValidateOpts{Digits: digits, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, false, fmt.Errorf("totp: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && match == 0 {
			found, match = s, 1
		}
	}
	return found, match == 1, nil
}

// CheckTOTP checks code against a's secret at now and, if it is right and
// newer than the last code a used, records its step. It returns ErrBadTOTP
// for a wrong code and one wrapping ErrBadTOTP and ErrTOTPReused for a
// code already used.
func (a *Account) CheckTOTP(code string, now time.Time) error {
	step, ok, err := ValidateTOTP(a.TOTPSecret, code, now)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %v", ErrBadTOTP, err)
	case !ok:
		return ErrBadTOTP
	case step <= a.TOTPLastStep:
		return fmt.Errorf("%w: %w", ErrBadTOTP, ErrTOTPReused)
	}
	a.TOTPLastStep = step
	return nil
}

// RequireTOTP reports whether an account holding roles must use TOTP,
// given the roles that require it.
func RequireTOTP(roles, require []Role) bool {
	return slices.ContainsFunc(roles, func(r Role) bool { return slices.Contains(require, r) })
}
