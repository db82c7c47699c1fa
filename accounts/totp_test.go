package accounts

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// rfcSecret is RFC 6238 appendix B's SHA-1 key, "12345678901234567890", in
// base32.
const rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

// TestTOTPRFC6238Vectors: the SHA-1 test vectors of RFC 6238 appendix B
// (8 digits), and the 6-digit codes the accounts use (their last 6 digits).
func TestTOTPRFC6238Vectors(t *testing.T) {
	for _, v := range []struct {
		unix int64
		code string
		step int64
	}{
		{59, "94287082", 1},
		{1111111109, "07081804", 37037036},
		{1111111111, "14050471", 37037037},
		{1234567890, "89005924", 41152263},
		{2000000000, "69279037", 66666666},
		{20000000000, "65353130", 666666666},
	} {
		now := time.Unix(v.unix, 0).UTC()
		step, ok, err := validateTOTP(rfcSecret, v.code, now, otp.DigitsEight)
		if err != nil || !ok || step != v.step {
			t.Errorf("T=%d %s: step %d ok %v err %v", v.unix, v.code, step, ok, err)
		}
		step, ok, err = ValidateTOTP(rfcSecret, v.code[2:], now)
		if err != nil || !ok || step != v.step {
			t.Errorf("T=%d %s (6 digits): step %d ok %v err %v", v.unix, v.code[2:], step, ok, err)
		}
	}
}

// TestTOTPSkew: a code is accepted one step early or late, not two.
func TestTOTPSkew(t *testing.T) {
	at := time.Unix(1234567890, 0) // step 41152263, 0 s into a 30 s step
	code := "005924"
	for _, tc := range []struct {
		d  time.Duration
		ok bool
	}{
		{0, true}, {29 * time.Second, true}, {-30 * time.Second, true}, {59 * time.Second, true},
		{-31 * time.Second, false}, {60 * time.Second, false}, {-5 * time.Minute, false},
	} {
		if _, ok, _ := ValidateTOTP(rfcSecret, code, at.Add(tc.d)); ok != tc.ok {
			t.Errorf("%v from its step: ok = %v", tc.d, ok)
		}
	}
	for _, bad := range []string{"", "5924", "0059240", "a05924", "005925"} {
		if _, ok, _ := ValidateTOTP(rfcSecret, bad, at); ok {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, secret := range []string{"not base32!", "", "GEZDGNBVGY3TQOJQ"} {
		if _, ok, err := ValidateTOTP(secret, code, at); ok || err == nil {
			t.Errorf("secret %q: a secret that is not base32 of 16 bytes or more must be an error", secret)
		}
	}
	empty, _ := totp.GenerateCode("", at) // HMAC with an empty key
	if err := (&Account{}).CheckTOTP(empty, at); !errors.Is(err, ErrBadTOTP) {
		t.Errorf("an account without a secret accepted a code: %v", err)
	}
	if _, ok, err := ValidateTOTP(strings.ToLower(rfcSecret)+"\n", code, at); !ok || err != nil {
		t.Errorf("lower case: %v %v", ok, err)
	}
}

// TestCheckTOTPOnce: a code is used once; a code older than the last one
// used is refused too.
func TestCheckTOTPOnce(t *testing.T) {
	a := &Account{TOTPSecret: rfcSecret}
	at := time.Unix(1234567890, 0)
	if err := a.CheckTOTP("005924", at); err != nil || a.TOTPLastStep != 41152263 {
		t.Fatalf("first use: %v, step %d", err, a.TOTPLastStep)
	}
	if err := a.CheckTOTP("005924", at.Add(10*time.Second)); !errors.Is(err, ErrBadTOTP) || !errors.Is(err, ErrTOTPReused) {
		t.Errorf("second use: %v", err)
	}
	prev, _ := totp.GenerateCode(rfcSecret, at.Add(-30*time.Second))
	if err := a.CheckTOTP(prev, at); !errors.Is(err, ErrTOTPReused) {
		t.Errorf("an older code after a newer one: %v", err)
	}
	next, _ := totp.GenerateCode(rfcSecret, at.Add(30*time.Second))
	if err := a.CheckTOTP(next, at.Add(30*time.Second)); err != nil {
		t.Errorf("the next step's code: %v", err)
	}
	if err := a.CheckTOTP("000000", at.Add(time.Minute)); !errors.Is(err, ErrBadTOTP) || errors.Is(err, ErrTOTPReused) {
		t.Errorf("wrong code: %v", err)
	}
}

func TestEnrollTOTP(t *testing.T) {
	secret, uri, err := EnrollTOTP("chen.wei", "custodian lienchiang")
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != 32 {
		t.Errorf("secret %q: want 160 bits in base32", secret)
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != secret ||
		u.Query().Get("issuer") != "custodian lienchiang" || u.Query().Get("digits") != "6" || u.Query().Get("period") != "30" || u.Query().Get("algorithm") != "SHA1" {
		t.Errorf("uri %s", uri)
	}
	code, _ := totp.GenerateCode(secret, t0)
	if _, ok, err := ValidateTOTP(secret, code, t0); !ok || err != nil {
		t.Errorf("a code from the enrolled secret: %v %v", ok, err)
	}
	if _, _, err := EnrollTOTP("", "x"); err == nil {
		t.Error("no account name")
	}
}

func TestRequireTOTP(t *testing.T) {
	for _, tc := range []struct {
		roles []Role
		want  bool
	}{
		{[]Role{RoleOfficer}, false},
		{[]Role{RoleAuditor}, false},
		{[]Role{RoleContractor}, false},
		{[]Role{RoleAdmin}, true},
		{[]Role{RoleSupervisor}, true},
		{[]Role{RoleDirector}, true},
		{[]Role{RoleOfficer, RoleSupervisor}, true},
		{nil, false},
	} {
		if got := RequireTOTP(tc.roles, DefaultRequireTOTP); got != tc.want {
			t.Errorf("%v: %v", tc.roles, got)
		}
	}
	if RequireTOTP([]Role{RoleAdmin}, nil) {
		t.Error("no roles required")
	}
}
