package configs

import (
	"strings"
	"time"
)

// Verify schedules the daemon's full verification of its ledger (the
// top-level key verify:). The daemon also checks the ledger incrementally
// at every start; the full verification recomputes everything and so also
// catches damage to old events.
type Verify struct {
	// Every is the interval between full verifications. It cannot be
	// turned off.
	Every Duration `yaml:"every"`
}

// Bounds of verify.every.
const (
	DefaultVerifyEvery = 24 * time.Hour
	MinVerifyEvery     = time.Minute
	MaxVerifyEvery     = 31 * 24 * time.Hour
)

func (c *Config) applyVerifyDefaults() {
	if c.Verify.Every.Duration == 0 {
		c.Verify.Every.Duration = DefaultVerifyEvery
	}
}

func (c *Config) validateVerify(p *problems) {
	if e := c.Verify.Every.Duration; e < MinVerifyEvery || e > MaxVerifyEvery {
		p.add("verify.every", "%s is out of range; use %s to %s (31 days), e.g. 24h", shortDuration(e), shortDuration(MinVerifyEvery), shortDuration(MaxVerifyEvery))
	}
}

// shortDuration writes 24h for 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
