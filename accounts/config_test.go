package accounts

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"custodian/configs"
)

// TestConfigMatches: configs' list of roles is this package's, and an
// accounts: block left to its defaults gives DefaultPolicy.
func TestConfigMatches(t *testing.T) {
	var names []string
	for _, r := range Roles {
		names = append(names, string(r))
	}
	if !slices.Equal(names, configs.AccountRoles) {
		t.Errorf("configs.AccountRoles = %v, accounts.Roles = %v", configs.AccountRoles, names)
	}
	var cfg configs.Config
	cfg.ApplyDefaults()
	p, err := PolicyFromConfig(cfg.Accounts)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, DefaultPolicy()) {
		t.Errorf("from the configuration's defaults:\n%+v\nwant\n%+v", p, DefaultPolicy())
	}

	c := cfg.Accounts
	c.Password.MinLength, c.Lockout.Attempts, c.RequireTOTP = 16, 3, []string{"auditor"}
	c.Session.Idle.Duration = 5 * time.Minute
	p, err = PolicyFromConfig(c)
	if err != nil || p.Password.MinLength != 16 || p.Lockout.Attempts != 3 || !slices.Equal(p.RequireTOTP, []Role{RoleAuditor}) || p.Idle != 5*time.Minute || !p.Password.RequireUpper {
		t.Errorf("%+v %v", p, err)
	}
	c.RequireTOTP = []string{"root"}
	if _, err := PolicyFromConfig(c); err == nil {
		t.Error("an unknown role must not be dropped silently")
	}
}
