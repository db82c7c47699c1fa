package accounts

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

const goodPW = "Vermilion-Kettle-42"

func testPolicy() Policy {
	p := DefaultPolicy()
	p.Hash = TestParams
	return p
}

// newAccount is an active account with goodPW set at t0.
func newAccount(t *testing.T, roles ...Role) *Account {
	t.Helper()
	a := &Account{Username: "chen.wei", FullName: "Chen Wei", Roles: roles, State: StateActive, Created: t0}
	if err := DefaultPasswordPolicy.SetPassword(a, goodPW, TestParams, t0, false); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestDefaultPolicy(t *testing.T) {
	p := DefaultPolicy()
	if p.Password != DefaultPasswordPolicy || p.Lockout.Attempts != 5 || p.DisableUnusedAfter != 180*day ||
		len(p.RequireTOTP) != 3 || p.Idle != 15*time.Minute || p.Absolute != 8*time.Hour || p.Hash != DefaultParams {
		t.Errorf("%+v", p)
	}
	p.RequireTOTP[0] = RoleOfficer
	if DefaultRequireTOTP[0] != RoleAdmin {
		t.Error("DefaultPolicy must copy, not share, the default list")
	}
}

// TestCheckLogin: each outcome of a login, and what it records.
func TestCheckLogin(t *testing.T) {
	p := testPolicy()
	now := t0.Add(day)
	for _, tc := range []struct {
		name     string
		roles    []Role
		edit     func(*Account)
		pw, code string
		want     error
		failures int  // FailedLogins afterwards (starting from 2)
		success  bool // LastLogin is now
	}{
		{"right password", []Role{RoleOfficer}, nil, goodPW, "", nil, 0, true},
		{"wrong password", []Role{RoleOfficer}, nil, "wrong", "", ErrBadCredentials, 3, false},
		{"damaged hash", []Role{RoleOfficer}, func(a *Account) { a.PasswordHash = "$argon2id$" }, goodPW, "", ErrBadCredentials, 3, false},
		{"locked, right password", []Role{RoleOfficer}, func(a *Account) { a.State = StateLocked }, goodPW, "", ErrLocked, 2, false},
		{"locked, wrong password says nothing more", []Role{RoleOfficer}, func(a *Account) { a.State = StateLocked }, "wrong", "", ErrBadCredentials, 2, false},
		{"disabled", []Role{RoleOfficer}, func(a *Account) { a.State = StateDisabled }, goodPW, "", ErrDisabled, 2, false},
		{"disabled, wrong password", []Role{RoleOfficer}, func(a *Account) { a.State = StateDisabled }, "x", "", ErrBadCredentials, 2, false},
		{"contractor agreement ended", []Role{RoleContractor}, func(a *Account) { a.Contractor = &Agreement{"NDA-7", now} }, goodPW, "", ErrDisabled, 2, false},
		{"contractor agreement running", []Role{RoleContractor}, func(a *Account) { a.Contractor = &Agreement{"NDA-7", now.Add(time.Second)} }, goodPW, "", nil, 0, true},
		{"unused for 180 days", []Role{RoleOfficer}, func(a *Account) { a.Created = now.Add(-180 * day) }, goodPW, "", ErrDisabled, 2, false},
		{"unknown state", []Role{RoleOfficer}, func(a *Account) { a.State = "" }, goodPW, "", ErrDisabled, 2, false},
		{"supervisor not enrolled", []Role{RoleSupervisor}, nil, goodPW, "", ErrTOTPEnrollRequired, 0, true},
		{"supervisor, no code", []Role{RoleSupervisor}, enrol, goodPW, "", ErrTOTPRequired, 2, false},
		{"supervisor, wrong code", []Role{RoleSupervisor}, enrol, goodPW, "000000", ErrBadTOTP, 3, false},
		{"supervisor, right code", []Role{RoleSupervisor}, enrol, goodPW, code(now), nil, 0, true},
		{"supervisor, code already used", []Role{RoleSupervisor}, func(a *Account) { enrol(a); a.TOTPLastStep = now.Unix() / 30 }, goodPW, code(now), ErrTOTPReused, 3, false},
		{"officer who enrolled uses it too", []Role{RoleOfficer}, enrol, goodPW, "", ErrTOTPRequired, 2, false},
		{"issued password", []Role{RoleOfficer}, func(a *Account) { a.MustChangePassword = true }, goodPW, "", ErrPasswordChangeRequired, 0, true},
		{"password 90 days old", []Role{RoleOfficer}, func(a *Account) { a.PasswordSetAt = now.Add(-90 * day) }, goodPW, "", ErrPasswordChangeRequired, 0, true},
		{"admin: TOTP before the password change", []Role{RoleAdmin}, func(a *Account) { enrol(a); a.MustChangePassword = true }, goodPW, "", ErrTOTPRequired, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAccount(t, tc.roles...)
			a.FailedLogins = 2
			if tc.edit != nil {
				tc.edit(a)
			}
			err := p.CheckLogin(a, tc.pw, tc.code, now)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if a.FailedLogins != tc.failures || a.LastLogin.Equal(now) != tc.success {
				t.Errorf("failures %d (want %d), last login %v", a.FailedLogins, tc.failures, a.LastLogin)
			}
		})
	}
	if err := p.CheckLogin(nil, goodPW, "", now); err != ErrBadCredentials {
		t.Errorf("unknown user: %v", err)
	}
	if msg := p.CheckLogin(&Account{Username: "x", PasswordHash: newAccount(t).PasswordHash, State: StateActive, Created: t0,
		Contractor: &Agreement{"NDA-7", t0}}, goodPW, "", now).Error(); !strings.Contains(msg, "NDA-7 ended on 2026-03-01") {
		t.Errorf("the agreement is named: %s", msg)
	}
}

func enrol(a *Account) { a.TOTPSecret = rfcSecret }

func code(at time.Time) string {
	c, err := totp.GenerateCode(rfcSecret, at)
	if err != nil {
		panic(err)
	}
	return c
}

// TestLockoutThroughLogin: five wrong passwords lock the account, and then
// even the right password does not open it; wrong one-time codes count too.
func TestLockoutThroughLogin(t *testing.T) {
	p := testPolicy()
	a := newAccount(t, RoleOfficer)
	for i := 1; i <= 5; i++ {
		if err := p.CheckLogin(a, "wrong", "", t0.Add(time.Duration(i)*time.Minute)); err != ErrBadCredentials {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if a.State != StateLocked {
		t.Fatalf("not locked after 5 failures: %+v", a)
	}
	if err := p.CheckLogin(a, goodPW, "", t0.Add(time.Hour)); !errors.Is(err, ErrLocked) {
		t.Errorf("right password on a locked account: %v", err)
	}

	s := newAccount(t, RoleSupervisor)
	enrol(s)
	var err error
	for i := 0; i < 5; i++ {
		err = p.CheckLogin(s, goodPW, "000000", t0.Add(time.Duration(i)*time.Minute))
	}
	if !errors.Is(err, ErrBadTOTP) || !errors.Is(err, ErrLocked) || s.State != StateLocked {
		t.Errorf("five wrong codes: %v, %s", err, s.State)
	}

	// A success in between starts the count again.
	b := newAccount(t, RoleOfficer)
	for i := 0; i < 4; i++ {
		p.CheckLogin(b, "wrong", "", t0)
	}
	if err := p.CheckLogin(b, goodPW, "", t0.Add(time.Minute)); err != nil || b.FailedLogins != 0 {
		t.Fatalf("%v %d", err, b.FailedLogins)
	}
	p.CheckLogin(b, "wrong", "", t0)
	if b.State != StateActive {
		t.Error("locked after one failure following a success")
	}
}

// TestUnknownUserCostsAHash: an unknown username costs one hash with the
// policy's parameters, as a wrong password does (measured in memory, not
// time).
func TestUnknownUserCostsAHash(t *testing.T) {
	p := testPolicy()
	p.Hash = Params{Memory: 8192, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	a := &Account{Username: "chen.wei", State: StateActive, Created: t0}
	a.PasswordHash, _ = Hash(goodPW, p.Hash)
	alloc := func(f func()) uint64 {
		var x, y runtime.MemStats
		runtime.ReadMemStats(&x)
		f()
		runtime.ReadMemStats(&y)
		return y.TotalAlloc - x.TotalAlloc
	}
	known := alloc(func() { p.CheckLogin(a, "wrong", "", t0) })
	unknown := alloc(func() { p.CheckLogin(nil, "wrong", "", t0) })
	if known < 8<<20 || unknown < known*9/10 {
		t.Errorf("unknown user %d bytes, wrong password %d", unknown, known)
	}
}

func TestUnlock(t *testing.T) {
	p := testPolicy()
	locked := func() *Account {
		a := newAccount(t, RoleOfficer)
		for i := 0; i < 5; i++ {
			p.CheckLogin(a, "wrong", "", t0)
		}
		return a
	}
	approved := func(kind Kind, subject string) *Request {
		r, err := NewRequest("req-7", kind, subject, "locked out", "sam", t0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Approve("sue", supervisor, "identity checked in person", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		return r
	}
	at := t0.Add(2 * time.Hour)
	for _, tc := range []struct {
		name string
		a    *Account
		req  *Request
		by   string
		role []Role
		rule string
	}{
		{"no request", locked(), nil, "adam", admin, "unlock-request"},
		{"another kind", locked(), approved(KindAccountChange, "chen.wei"), "adam", admin, "unlock-request"},
		{"another person", locked(), approved(KindUnlock, "lin.mei"), "adam", admin, "unlock-request"},
		{"not locked", newAccount(t, RoleOfficer), approved(KindUnlock, "chen.wei"), "adam", admin, "unlock-request"},
		{"not approved", locked(), func() *Request { r, _ := NewRequest("r", KindUnlock, "chen.wei", "x", "sam", t0, 0); return r }(), "adam", admin, "needs-approvals"},
		{"not an admin", locked(), approved(KindUnlock, "chen.wei"), "otto", officer, "executor-role"},
		{"the approver", locked(), approved(KindUnlock, "chen.wei"), "sue", supAdmin, "executor-not-approver"},
		{"the subject", locked(), approved(KindUnlock, "chen.wei"), "chen.wei", admin, "executor-not-subject"},
	} {
		err := Unlock(tc.a, tc.req, tc.by, tc.role, at)
		var re *RuleError
		if !errors.As(err, &re) || re.Rule != tc.rule {
			t.Errorf("%s: got %v, want rule %s", tc.name, err, tc.rule)
		}
		if tc.req != nil && tc.req.Executed != nil {
			t.Errorf("%s: the request was executed", tc.name)
		}
	}

	a, r := locked(), approved(KindUnlock, "chen.wei")
	if err := Unlock(a, r, "adam", admin, at); err != nil {
		t.Fatal(err)
	}
	if a.State != StateActive || a.FailedLogins != 0 || !a.LockedAt.IsZero() || r.State() != RequestExecuted || r.Executed.By != "adam" {
		t.Errorf("after unlock: %+v %+v", a, r)
	}
	if err := p.CheckLogin(a, goodPW, "", at); err != nil {
		t.Errorf("login after unlock: %v", err)
	}
	a2 := locked()
	a2.Username = "chen.wei"
	if err := Unlock(a2, r, "adam", admin, at); err == nil || !strings.Contains(err.Error(), "executes-once") {
		t.Errorf("one request unlocks once: %v", err)
	}
}
