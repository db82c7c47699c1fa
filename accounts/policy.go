package accounts

import (
	_ "embed"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// PasswordPolicy is the password rules of clause 五(十二).
type PasswordPolicy struct {
	MinLength    int // characters (runes)
	RequireUpper bool
	RequireLower bool
	RequireDigit bool
	// MaxAge is how long a password lasts; a password older than this
	// must be changed at the next login.
	MaxAge time.Duration
	// History is how many passwords, the current one included, cannot be
	// reused.
	History int
}

// DefaultPasswordPolicy follows clause 五(十二): at least 12 characters
// with an upper-case letter, a lower-case letter and a digit, changed
// every 90 days, none of the last 5 reused.
var DefaultPasswordPolicy = PasswordPolicy{
	MinLength: 12, RequireUpper: true, RequireLower: true, RequireDigit: true,
	MaxAge: 90 * 24 * time.Hour, History: 5,
}

// Violation is one password rule a password breaks.
type Violation struct {
	Rule    string // length, upper, lower, digit, username, name, blocklist, history
	Message string
}

func (v Violation) String() string { return v.Rule + ": " + v.Message }

// PolicyError lists every rule a new password breaks.
type PolicyError struct{ Violations []Violation }

func (e *PolicyError) Error() string {
	s := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		s[i] = v.String()
	}
	return "password refused: " + strings.Join(s, "; ")
}

//go:embed blocklist.txt
var blocklistText string

// blocklist holds the common passwords, lower-cased.
var blocklist = func() map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(blocklistText, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			m[strings.ToLower(l)] = true
		}
	}
	return m
}()

// Blocklisted reports whether pw is a common password: as written, or
// once the digits and symbols before and after it are removed (so
// Password2024! and 123welcome! are caught), compared case-insensitively.
func Blocklisted(pw string) bool {
	l := strings.ToLower(pw)
	if blocklist[l] {
		return true
	}
	core := strings.TrimFunc(l, func(r rune) bool { return !unicode.IsLetter(r) })
	return core != "" && blocklist[core]
}

// Check returns every rule pw breaks as the new password of a (nil when it
// breaks none). The history rule verifies pw against a's current hash and
// its history (one argon2id computation each); a stored hash that cannot
// be read is skipped.
func (p PasswordPolicy) Check(pw string, a *Account) []Violation {
	var v []Violation
	add := func(rule, format string, args ...any) {
		v = append(v, Violation{rule, fmt.Sprintf(format, args...)})
	}
	if n := utf8.RuneCountInString(pw); n < p.MinLength {
		add("length", "at least %d characters (this one has %d)", p.MinLength, n)
	}
	has := func(f func(rune) bool) bool { return strings.IndexFunc(pw, f) >= 0 }
	if p.RequireUpper && !has(unicode.IsUpper) {
		add("upper", "at least one upper-case letter")
	}
	if p.RequireLower && !has(unicode.IsLower) {
		add("lower", "at least one lower-case letter")
	}
	if p.RequireDigit && !has(unicode.IsDigit) {
		add("digit", "at least one digit")
	}
	lpw := strings.ToLower(pw)
	if a != nil {
		if part, ok := containsPart(lpw, a.Username); ok {
			add("username", "must not contain the username or a part of it (%q)", part)
		}
		if part, ok := containsPart(lpw, a.FullName); ok {
			add("name", "must not contain the account holder's name or a part of it (%q)", part)
		}
	}
	if Blocklisted(pw) {
		add("blocklist", "a common password, or one with only digits and symbols added to it")
	}
	if a != nil && p.History > 0 {
		for _, h := range a.recentHashes(p.History) {
			if ok, err := Verify(pw, h); err == nil && ok {
				add("history", "one of the last %d passwords; choose one not used before", p.History)
				break
			}
		}
	}
	return v
}

// containsPart reports whether lpw (lower case) contains s or one of its
// parts (split at anything but letters and digits) of 3 or more characters,
// case-insensitively, and which.
func containsPart(lpw, s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	parts := strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	for _, part := range append([]string{s}, parts...) {
		if utf8.RuneCountInString(part) >= 3 && strings.Contains(lpw, part) {
			return part, true
		}
	}
	return "", false
}

// recentHashes are the hashes of the last n passwords: the current one and
// n-1 from the history.
func (a *Account) recentHashes(n int) []string {
	var out []string
	if a.PasswordHash != "" {
		out = append(out, a.PasswordHash)
	}
	for _, h := range a.PasswordHistory {
		if len(out) >= n {
			break
		}
		out = append(out, h)
	}
	return out
}

// Expired reports whether a's password must be changed at now: it was
// issued by an admin (MustChangePassword), it was never set, or it is
// older than MaxAge (MaxAge ≤ 0: passwords do not age).
func (p PasswordPolicy) Expired(a *Account, now time.Time) bool {
	switch {
	case a.MustChangePassword, a.PasswordSetAt.IsZero():
		return true
	case p.MaxAge <= 0:
		return false
	}
	return now.Sub(a.PasswordSetAt) >= p.MaxAge
}

// SetPassword makes pw a's password at now if it breaks no rule (else a
// *PolicyError listing every rule it breaks): hashed with hp, the previous
// hash moved into the history (kept to History-1 entries). issued marks a
// password an admin set, which must be changed at the next login.
func (p PasswordPolicy) SetPassword(a *Account, pw string, hp Params, now time.Time, issued bool) error {
	if v := p.Check(pw, a); len(v) > 0 {
		return &PolicyError{Violations: v}
	}
	h, err := Hash(pw, hp)
	if err != nil {
		return err
	}
	if a.PasswordHash != "" {
		a.PasswordHistory = append([]string{a.PasswordHash}, a.PasswordHistory...)
	}
	if keep := max(p.History-1, 0); len(a.PasswordHistory) > keep {
		a.PasswordHistory = a.PasswordHistory[:keep]
	}
	a.PasswordHash, a.PasswordSetAt, a.MustChangePassword = h, now, issued
	return nil
}
