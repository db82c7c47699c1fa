package configs

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestVaultUnsealIdle: vault.unseal_idle is 30m by default, bounded, and
// strictly parsed.
func TestVaultUnsealIdle(t *testing.T) {
	cfg, err := Parse([]byte(minimal), "/etc/custodian")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Vault.UnsealIdle.Duration != 30*time.Minute {
		t.Errorf("default vault.unseal_idle = %v", cfg.Vault.UnsealIdle)
	}
	cfg, err = Parse([]byte(minimal+"vault: {unseal_idle: 5m}\n"), "/etc/custodian")
	if err != nil || cfg.Vault.UnsealIdle.Duration != 5*time.Minute {
		t.Fatalf("vault: {unseal_idle: 5m}: %v %v", cfg, err)
	}
	for _, bad := range []string{"10s", "-1m", "25h"} {
		_, err := Parse([]byte(minimal+"vault: {unseal_idle: "+bad+"}\n"), "/etc/custodian")
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "vault.unseal_idle: "+bad+" is out of range") {
			t.Errorf("vault.unseal_idle %s: %v", bad, err)
		}
	}
	if _, err := Parse([]byte(minimal+"vault: {unseal_idel: 5m}\n"), "/etc/custodian"); !errors.Is(err, ErrParse) {
		t.Errorf("a misspelt key must be refused: %v", err)
	}
}
