package accounts

import (
	"strings"
	"testing"
	"time"
)

// t0 is the fixed instant the tests start from.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

func TestValidateUsername(t *testing.T) {
	for _, ok := range []string{"abc", "transfer.officer", "chen_wei-01", strings.Repeat("a", 64), "007"} {
		if err := ValidateUsername(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "ab", strings.Repeat("a", 65), "Chen", "chen wei", "chen@moi", "陳偉", "a/b", "abc\n"} {
		if err := ValidateUsername(bad); err == nil || !strings.Contains(err.Error(), "username:") {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
}

func TestAccountValidate(t *testing.T) {
	good := func() Account {
		return Account{Username: "chen.wei", FullName: "Chen Wei", Roles: []Role{RoleOfficer}, State: StateActive}
	}
	contractor := func() Account {
		a := good()
		a.Roles = []Role{RoleContractor}
		a.Contractor = &Agreement{Reference: "NDA-2026-014", Ends: t0.Add(30 * day)}
		return a
	}
	for _, tc := range []struct {
		name string
		edit func(*Account)
		want string
	}{
		{"officer", func(*Account) {}, ""},
		{"contractor", func(a *Account) { *a = contractor() }, ""},
		{"bad username", func(a *Account) { a.Username = "Chen" }, "username:"},
		{"no name", func(a *Account) { a.FullName = " " }, "full_name: required"},
		{"separation", func(a *Account) { a.Roles = []Role{RoleAuditor, RoleOfficer} }, "separation of duties"},
		{"state", func(a *Account) { a.State = "suspended" }, `state: "suspended"`},
		{"contractor without agreement", func(a *Account) { *a = contractor(); a.Contractor = nil }, "confidentiality agreement"},
		{"agreement without end", func(a *Account) { *a = contractor(); a.Contractor.Ends = time.Time{} }, "reference and an end date"},
		{"agreement without reference", func(a *Account) { *a = contractor(); a.Contractor.Reference = "" }, "reference and an end date"},
		{"agreement on an officer", func(a *Account) { a.Contractor = &Agreement{"X", t0} }, "only an account with the contractor role"},
	} {
		a := good()
		tc.edit(&a)
		err := a.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	// Every problem at once.
	a := Account{Username: "X", State: "x", Roles: []Role{RoleContractor}}
	if err := a.Validate(); err == nil || strings.Count(err.Error(), "\n") != 3 {
		t.Errorf("want four problems: %v", err)
	}
}

func TestDisabledOnAndUnused(t *testing.T) {
	a := Account{Username: "ext.lin", Roles: []Role{RoleContractor}, Contractor: &Agreement{"NDA-1", t0}}
	if a.DisabledOn(t0.Add(-time.Second)) || !a.DisabledOn(t0) || !a.DisabledOn(t0.Add(day)) {
		t.Error("a contractor account is disabled from the agreement's end, not before")
	}
	if (&Account{}).DisabledOn(t0) {
		t.Error("an account without an agreement does not end")
	}

	const after = 180 * day
	for _, tc := range []struct {
		name           string
		created, login time.Time
		now            time.Time
		want           bool
	}{
		{"used recently", t0, t0.Add(100 * day), t0.Add(200 * day), false},
		{"unused 180 days", t0, t0.Add(100 * day), t0.Add(280 * day), true},
		{"never logged in, new", t0, time.Time{}, t0.Add(179 * day), false},
		{"never logged in, old", t0, time.Time{}, t0.Add(180 * day), true},
		{"no dates at all", time.Time{}, time.Time{}, t0, true},
	} {
		a := Account{Created: tc.created, LastLogin: tc.login}
		if got := a.Unused(tc.now, after); got != tc.want {
			t.Errorf("%s: Unused = %v", tc.name, got)
		}
	}
	if (&Account{}).Unused(t0, 0) {
		t.Error("after 0 turns the rule off")
	}
}

func TestRecordFailureLocksAfterAttempts(t *testing.T) {
	a := Account{Username: "chen.wei", State: StateActive}
	l := Lockout{Attempts: 3}
	for i := 1; i <= 2; i++ {
		if a.RecordFailure(t0, l) || a.State != StateActive || a.FailedLogins != i {
			t.Fatalf("failure %d: %+v", i, a)
		}
	}
	a.RecordSuccess(t0.Add(time.Minute))
	if a.FailedLogins != 0 || !a.LastLogin.Equal(t0.Add(time.Minute)) {
		t.Fatalf("success must reset the count: %+v", a)
	}
	for i := 1; i <= 3; i++ {
		locked := a.RecordFailure(t0.Add(time.Duration(i)*time.Minute), l)
		if locked != (i == 3) {
			t.Fatalf("failure %d: locked = %v", i, locked)
		}
	}
	if a.State != StateLocked || !a.LockedAt.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("not locked: %+v", a)
	}
	if !a.RecordFailure(t0, l) || a.FailedLogins != 3 {
		t.Error("a failure on a locked account is not counted again")
	}
	d := Account{State: StateDisabled}
	if d.RecordFailure(t0, l) || d.FailedLogins != 0 || d.State != StateDisabled {
		t.Error("a disabled account stays disabled")
	}
}
