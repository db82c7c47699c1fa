package accounts

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func rules(v []Violation) []string {
	var out []string
	for _, x := range v {
		out = append(out, x.Rule)
	}
	return out
}

// TestPasswordPolicy: each rule on its own, and a password breaking many
// rules gets every one of them, each naming its rule.
func TestPasswordPolicy(t *testing.T) {
	if DefaultPasswordPolicy != (PasswordPolicy{MinLength: 12, RequireUpper: true, RequireLower: true, RequireDigit: true, MaxAge: 90 * day, History: 5}) {
		t.Fatalf("DefaultPasswordPolicy = %+v (clause 五(十二))", DefaultPasswordPolicy)
	}
	a := &Account{Username: "chen.wei", FullName: "Chen Wei-Ting"}
	p := DefaultPasswordPolicy
	for _, tc := range []struct {
		pw   string
		want []string
	}{
		{"Vermilion-Kettle-42", nil},
		{"Quartz7Lagoon", nil},
		{"新竹Harbour2026x", nil},          // letters beyond ASCII count as letters
		{"Short1Aa", []string{"length"}}, // 8 characters
		{"vermilion-kettle-42", []string{"upper"}},
		{"VERMILION-KETTLE-42", []string{"lower"}},
		{"Vermilion-Kettle-xy", []string{"digit"}},
		{"Chen.Wei-Kettle-42", []string{"username", "name"}},  // "chen.wei" and its parts
		{"Kettle-42-WEIQuartz", []string{"username", "name"}}, // "wei" is a part of both
		{"Kettle-42-TingQuartz", []string{"name"}},
		{"Password2026!", []string{"blocklist"}},
		{"!!Welcome12345", []string{"blocklist"}},
		{"Iloveyou1234", []string{"blocklist"}},
		{"Qwerty123456", []string{"blocklist"}},
		{"p@ssw0rd", []string{"length", "upper", "blocklist"}},
		{"123456", []string{"length", "upper", "lower", "blocklist"}},
		{"chen", []string{"length", "upper", "digit", "username", "name"}},
		{"", []string{"length", "upper", "lower", "digit"}},
	} {
		got := rules(p.Check(tc.pw, a))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: rules %v, want %v", tc.pw, got, tc.want)
		}
		for _, v := range p.Check(tc.pw, a) {
			if v.Message == "" || !strings.HasPrefix(v.String(), v.Rule+": ") {
				t.Errorf("%q: %+v does not name its rule", tc.pw, v)
			}
		}
	}
	// The rules follow the policy.
	loose := PasswordPolicy{MinLength: 4}
	if v := loose.Check("kettle", a); v != nil {
		t.Errorf("a policy without character classes: %v", v)
	}
	// Without an account, only the rules about the password itself.
	if got := rules(p.Check("Chen.Wei-Kettle-42", nil)); got != nil {
		t.Errorf("nil account: %v", got)
	}
}

func TestBlocklist(t *testing.T) {
	if n := len(blocklist); n < 300 {
		t.Errorf("blocklist has %d entries", n)
	}
	for _, pw := range []string{"password", "PASSWORD", "Password1", "123456", "qwerty", "letmein!", "Welcome2024", "2024admin", "iloveyou", "Admin!!!", "1q2w3e4r"} {
		if !Blocklisted(pw) {
			t.Errorf("%q is not blocklisted", pw)
		}
	}
	for _, pw := range []string{"Vermilion-Kettle-42", "passwordless-Kettle", "# Common passwords", "", "12"} {
		if Blocklisted(pw) {
			t.Errorf("%q is blocklisted", pw)
		}
	}
}

// TestPasswordHistory: the current password and the ones before it, up to
// History in all, cannot be reused; older ones can.
func TestPasswordHistory(t *testing.T) {
	p := DefaultPasswordPolicy
	p.History = 3
	a := &Account{Username: "chen.wei", FullName: "Chen Wei"}
	pws := []string{"Vermilion-Kettle-41", "Vermilion-Kettle-42", "Vermilion-Kettle-43", "Vermilion-Kettle-44"}
	for i, pw := range pws {
		if err := p.SetPassword(a, pw, TestParams, t0.Add(time.Duration(i)*day), false); err != nil {
			t.Fatalf("set %q: %v", pw, err)
		}
	}
	if len(a.PasswordHistory) != 2 || !a.PasswordSetAt.Equal(t0.Add(3*day)) || a.MustChangePassword {
		t.Fatalf("history %d, set at %v", len(a.PasswordHistory), a.PasswordSetAt)
	}
	for i, pw := range pws {
		reused := slices.Contains(rules(p.Check(pw, a)), "history")
		if reused != (i >= 1) {
			t.Errorf("%q (password %d of 4): history rule = %v", pw, i+1, reused)
		}
	}
	err := p.SetPassword(a, "Vermilion-Kettle-43", TestParams, t0.Add(4*day), false)
	var pe *PolicyError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "history: one of the last 3 passwords") {
		t.Errorf("reuse: %v", err)
	}
	if ok, _ := Verify("Vermilion-Kettle-44", a.PasswordHash); !ok {
		t.Error("a refused password must not replace the current one")
	}
	err = p.SetPassword(a, "short", TestParams, t0, true)
	if !errors.As(err, &pe) || len(pe.Violations) != 3 {
		t.Errorf("every rule at once: %v", err)
	}
	if err := p.SetPassword(a, "Issued-Temp-Pw-77", TestParams, t0.Add(5*day), true); err != nil || !a.MustChangePassword {
		t.Errorf("issued: %v %v", err, a.MustChangePassword)
	}
	// A damaged history entry is skipped, not fatal.
	a.PasswordHistory = append(a.PasswordHistory, "garbage")
	if v := p.Check("Another-Kettle-12", a); v != nil {
		t.Errorf("damaged history: %v", v)
	}
}

func TestPasswordExpired(t *testing.T) {
	p := DefaultPasswordPolicy
	a := &Account{PasswordSetAt: t0}
	for _, tc := range []struct {
		now  time.Time
		want bool
	}{{t0, false}, {t0.Add(90*day - time.Second), false}, {t0.Add(90 * day), true}} {
		if got := p.Expired(a, tc.now); got != tc.want {
			t.Errorf("at %v: Expired = %v", tc.now.Sub(t0), got)
		}
	}
	if !p.Expired(&Account{PasswordSetAt: t0, MustChangePassword: true}, t0) {
		t.Error("an issued password must be changed")
	}
	if !p.Expired(&Account{}, t0) {
		t.Error("a password never set is expired")
	}
	if (PasswordPolicy{}).Expired(a, t0.Add(1000*day)) {
		t.Error("MaxAge 0: passwords do not age")
	}
}
