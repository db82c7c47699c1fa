package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"custodian/audit"
)

// initPair makes two installations: a, the agency's, and b, one an
// attacker made with their own `custodian init`.
func initPair(t *testing.T) (a, b *fixture) {
	t.Helper()
	a = &fixture{cfg: testConfig(t, "Health Bureau")}
	b = &fixture{cfg: testConfig(t, "Health Bureau")}
	for _, f := range []*fixture{a, b} {
		if err := testInit(f.cfg); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

func mustOpen(t *testing.T, f *fixture) {
	t.Helper()
	d, err := Open(f.cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	d.Close()
}

func swapIn(t *testing.T, from, to string) {
	t.Helper()
	if err := os.RemoveAll(to); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// TestServeRefusesSwappedVault: a vault replaced by one from another
// `custodian init` (whose key the attacker holds) is refused at start, so
// no job stores a file the attacker can decrypt.
func TestServeRefusesSwappedVault(t *testing.T) {
	a, b := initPair(t)
	mustOpen(t, a)
	swapIn(t, b.cfg.VaultDir(), a.cfg.VaultDir())
	_, err := Open(a.cfg, zerolog.Nop())
	if !errors.Is(err, ErrSubstituted) || !strings.Contains(err.Error(), filepath.Join(a.cfg.VaultDir(), "master.pub")) {
		t.Fatalf("a swapped vault must be refused, naming master.pub: %v", err)
	}
	t.Logf("refused: %v", err)
}

// TestServeRefusesSwappedSigningKey: keys/ replaced by another
// installation's, with or without the ledger's recorded verifier key
// rewritten to match, or only ledger.vkey (the file given to auditors)
// replaced: each is refused at start.
func TestServeRefusesSwappedSigningKey(t *testing.T) {
	t.Run("keys", func(t *testing.T) {
		a, b := initPair(t)
		swapIn(t, b.cfg.KeysDir(), a.cfg.KeysDir())
		_, err := Open(a.cfg, zerolog.Nop())
		if !errors.Is(err, ErrSubstituted) || !strings.Contains(err.Error(), a.cfg.SigningKeyPath()) {
			t.Fatalf("a swapped signing key must be refused, naming it: %v", err)
		}
	})
	t.Run("keys-and-ledger-meta", func(t *testing.T) {
		a, b := initPair(t)
		swapIn(t, b.cfg.KeysDir(), a.cfg.KeysDir())
		vkey, err := os.ReadFile(a.cfg.VerifierKeyPath()) // b's, now in a
		if err != nil {
			t.Fatal(err)
		}
		if err := audit.TamperVerifierKey(a.cfg.LedgerPath(), strings.TrimSpace(string(vkey))); err != nil {
			t.Fatal(err)
		}
		_, err = Open(a.cfg, zerolog.Nop())
		if !errors.Is(err, ErrSubstituted) || !strings.Contains(err.Error(), "installation.initialized") {
			t.Fatalf("a signing key other than the one the first event names must be refused: %v", err)
		}
	})
	t.Run("vkey-file", func(t *testing.T) {
		a, b := initPair(t)
		swapIn(t, b.cfg.VerifierKeyPath(), a.cfg.VerifierKeyPath())
		_, err := Open(a.cfg, zerolog.Nop())
		if !errors.Is(err, ErrSubstituted) || !strings.Contains(err.Error(), a.cfg.VerifierKeyPath()) {
			t.Fatalf("a replaced ledger.vkey must be refused, naming it: %v", err)
		}
	})
}
