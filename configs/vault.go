package configs

import "time"

// VaultConfig sets how the daemon holds the vault's private key (the
// top-level key vault:). The daemon ingests with the public key only; a
// person unseals it (custodian vault unseal) for reads, exports and the
// in-daemon scrub, and it is dropped again after UnsealIdle without use.
type VaultConfig struct {
	// UnsealIdle is how long the unsealed key stays in memory unused.
	UnsealIdle Duration `yaml:"unseal_idle"`
}

// Bounds of vault.unseal_idle.
const (
	DefaultUnsealIdle = 30 * time.Minute
	MinUnsealIdle     = time.Minute
	MaxUnsealIdle     = 24 * time.Hour
)

func (c *Config) applyVaultDefaults() {
	if c.Vault.UnsealIdle.Duration == 0 {
		c.Vault.UnsealIdle.Duration = DefaultUnsealIdle
	}
}

func (c *Config) validateVault(p *problems) {
	if e := c.Vault.UnsealIdle.Duration; e < MinUnsealIdle || e > MaxUnsealIdle {
		p.add("vault.unseal_idle", "%s is out of range; use %s to %s, e.g. 30m", shortDuration(e), shortDuration(MinUnsealIdle), shortDuration(MaxUnsealIdle))
	}
}
