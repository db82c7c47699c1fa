package configs

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAccountsDefaults: without an accounts: block (or with an empty one)
// every key has its default (clause 五(十二) and the issue).
func TestAccountsDefaults(t *testing.T) {
	want := Accounts{
		Password:           AccountsPassword{MinLength: 12, MaxAge: Duration{90 * 24 * time.Hour}, History: 5},
		Lockout:            AccountsLockout{Attempts: 5},
		DisableUnusedAfter: Duration{180 * 24 * time.Hour},
		RequireTOTP:        []string{"admin", "supervisor", "director"},
		Session:            AccountsSession{Idle: Duration{15 * time.Minute}, Absolute: Duration{8 * time.Hour}},
	}
	for _, doc := range []string{minimal, minimal + "accounts:\n", minimal + "accounts: {}\n"} {
		cfg, err := Parse([]byte(doc), "/etc/custodian")
		if err != nil {
			t.Fatal(err)
		}
		a := cfg.Accounts
		if a.Password != want.Password || a.Lockout != want.Lockout || a.DisableUnusedAfter != want.DisableUnusedAfter ||
			a.Session != want.Session || !slices.Equal(a.RequireTOTP, want.RequireTOTP) {
			t.Errorf("defaults: %+v", a)
		}
	}
}

// TestAccountsBlock: the block exactly as the issue gives it parses, days
// included, and each key is applied.
func TestAccountsBlock(t *testing.T) {
	const block = `accounts: {password: {min_length: 14, max_age: 60d, history: 8}, lockout: {attempts: 3}, disable_unused_after: 90d, require_totp: [admin, supervisor, director, auditor], session: {idle: 10m, absolute: 4h}}` + "\n"
	cfg, err := Parse([]byte(minimal+block), "/etc/custodian")
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Accounts
	if a.Password.MinLength != 14 || a.Password.MaxAge.Duration != 60*24*time.Hour || a.Password.History != 8 ||
		a.Lockout.Attempts != 3 || a.DisableUnusedAfter.Duration != 90*24*time.Hour ||
		!slices.Equal(a.RequireTOTP, []string{"admin", "supervisor", "director", "auditor"}) ||
		a.Session.Idle.Duration != 10*time.Minute || a.Session.Absolute.Duration != 4*time.Hour {
		t.Errorf("%+v", a)
	}
	cfg, err = Parse([]byte(minimal+"accounts: {require_totp: []}\n"), "/etc/custodian")
	if err != nil || cfg.Accounts.RequireTOTP == nil || len(cfg.Accounts.RequireTOTP) != 0 {
		t.Errorf("require_totp: [] means no role: %v %#v", err, cfg)
	}
}

// TestAccountsValidation: every problem at once, each with its path.
func TestAccountsValidation(t *testing.T) {
	const block = `
accounts:
  password: {min_length: 6, max_age: 12h, history: 30}
  lockout: {attempts: 101}
  disable_unused_after: 1h
  require_totp: [admin, root, admin]
  session: {idle: 8h, absolute: 15m}
`
	_, err := Parse([]byte(minimal+block), "/etc/custodian")
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{
		"accounts.password.min_length: 6 is out of range; use 8 to 128",
		"accounts.password.max_age: 12h is out of range; use 1d to 366d",
		"accounts.password.history: 30 is out of range",
		"accounts.lockout.attempts: 101 is out of range",
		"accounts.disable_unused_after: 1h is out of range; use at least 1d",
		`accounts.require_totp[1]: "root" is not a role; use officer, supervisor, auditor, admin, director, contractor`,
		"accounts.require_totp[2]: admin is listed twice",
		"accounts.session: idle (8h) must be shorter than absolute (15m)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
	for _, tc := range []struct{ block, want string }{
		{"accounts: {session: {idle: 30s}}", "accounts.session.idle: 30s is out of range"},
		{"accounts: {session: {absolute: 8d}}", "accounts.session.absolute: 8d is out of range; use at most 7d"},
		{"accounts: {session: {absolute: -1h}}", "accounts.session.absolute: -1h is out of range"},
		{"accounts: {password: {max_age: 400d}}", "accounts.password.max_age: 400d is out of range"},
	} {
		if _, err := Parse([]byte(minimal+tc.block+"\n"), "/etc/custodian"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.block, err, tc.want)
		}
	}
}

// TestAccountsStrict: unknown keys and undecodable values are reported
// with their paths, together.
func TestAccountsStrict(t *testing.T) {
	const block = `
accounts:
  pasword: {min_length: 12}
  lockout: {attempts: 2.5, after: 5}
  session: {idle: soon}
  require_totp: admin
`
	_, err := Parse([]byte(minimal+block), "/etc/custodian")
	if !errors.Is(err, ErrParse) {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{
		"accounts.pasword: unknown key; accepted keys: password, lockout, disable_unused_after, require_totp, session",
		"accounts.lockout.attempts: 2.5 is not a whole number; use a whole number from 1 to 100",
		"accounts.lockout.after: unknown key; accepted keys: attempts",
		`accounts.session.idle: "soon" is not a duration; use e.g. 30s, 5m, 1h30m, 90d or a number of seconds`,
		`accounts.require_totp: "admin" is not accepted; use a list`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
}

// TestDurationDays: durations accept whole days, everywhere.
func TestDurationDays(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "1d": 24 * time.Hour, "0d": 0, " 7d ": 7 * 24 * time.Hour, "106751d": 106751 * 24 * time.Hour} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for in, want := range map[string]string{
		"106752d":               "out of range",
		"99999999999999999999d": "out of range",
		"1.5d":                  "not a duration",
		"-1d":                   "not a duration",
		"1d12h":                 "not a duration",
		"d":                     "not a duration",
		"90D":                   "not a duration",
	} {
		if _, err := parseDuration(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
	cfg, err := Parse([]byte(minimal+"verify: {every: 2d}\n"), "/etc/custodian")
	if err != nil || cfg.Verify.Every.Duration != 48*time.Hour {
		t.Errorf("verify.every: 2d: %v", err)
	}
}

// TestAccountsExample: the commented accounts: block of the example,
// uncommented, parses and gives the defaults.
func TestAccountsExample(t *testing.T) {
	text := string(Example)
	i := strings.Index(text, "# accounts:\n")
	if i < 0 {
		t.Fatal("the example documents no accounts: block")
	}
	var block strings.Builder
	for _, l := range strings.Split(text[i:], "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		block.WriteString(strings.TrimPrefix(l, "# ") + "\n")
	}
	cfg, err := Parse([]byte(minimal+block.String()), "/etc/custodian")
	if err != nil {
		t.Fatalf("%v\n%s", err, block.String())
	}
	def, _ := Parse([]byte(minimal), "/etc/custodian")
	a, d := cfg.Accounts, def.Accounts
	if a.Password != d.Password || a.Lockout != d.Lockout || a.DisableUnusedAfter != d.DisableUnusedAfter || a.Session != d.Session || !slices.Equal(a.RequireTOTP, d.RequireTOTP) {
		t.Errorf("the example's values are not the defaults: %+v", a)
	}
}
