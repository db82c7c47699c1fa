package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"custodian/audit"
	"custodian/configs"
	"custodian/vault"
)

// ErrSubstituted: the vault or a ledger key of the installation is not the
// one the ledger recorded when custodian init created it: someone replaced
// it. Nothing runs, since new files could be encrypted to a key the agency
// does not hold, or the ledger signed by a key the auditors do not know.
var ErrSubstituted = errors.New("installation keys substituted")

// firstEvent is what the ledger's first event, written by Init, records.
// The vault key it records may since have been rotated: see
// audit.Ledger.VaultRecipient.
type firstEvent struct {
	recipient, vkey string
}

func readFirstEvent(cfg *configs.Config, led *audit.Ledger) (firstEvent, error) {
	evs, err := led.Events(0, 1)
	if err != nil {
		return firstEvent{}, fmt.Errorf("reading the first event of %s: %w", cfg.LedgerPath(), err)
	}
	if len(evs) == 0 || evs[0].Type != "installation.initialized" ||
		evs[0].Details["vault_recipient"] == "" || evs[0].Details["verifier_key"] == "" {
		return firstEvent{}, fmt.Errorf("%w: %s does not start with the installation.initialized event that custodian init writes (with vault_recipient and verifier_key), so the vault and keys cannot be checked; restore the installation's ledger from backup",
			ErrSubstituted, cfg.LedgerPath())
	}
	return firstEvent{recipient: evs[0].Details["vault_recipient"], vkey: evs[0].Details["verifier_key"]}, nil
}

// checkKeys refuses an installation whose vault (master.pub), ledger
// signing key (keys/ledger.sign), recorded verifier key (the ledger's meta)
// or verifier key file (keys/ledger.vkey, given to auditors) differs from
// what the ledger's installation.initialized event recorded. signer may be
// nil (read-only use).
func checkKeys(cfg *configs.Config, led *audit.Ledger, v *vault.Vault, signer note.Signer) error {
	first, err := readFirstEvent(cfg, led)
	if err != nil {
		return err
	}
	restore := "restore the original from backup and find out who could write to data_dir"
	// The vault key in force: installation.initialized's, or the last
	// vault.rotated's (custodian vault rotate).
	trusted, rotations, err := led.VaultRecipient()
	if err != nil {
		return fmt.Errorf("%w: %s: %v; run custodian audit verify", ErrSubstituted, cfg.LedgerPath(), err)
	}
	if got := v.Recipient(); got != trusted {
		what := "the ledger's installation.initialized event records"
		if rotations > 0 {
			what = fmt.Sprintf("the ledger's last vault.rotated event (rotation %d) records", rotations)
		}
		return fmt.Errorf("%w: the vault's public key %s is %s, but %s %s: the vault was replaced, and new files would be encrypted to a key the agency may not hold; %s",
			ErrSubstituted, filepath.Join(cfg.VaultDir(), "master.pub"), got, what, trusted, restore)
	}
	if ks, ok := signer.(audit.KeyedSigner); ok && ks.VerifierKey() != first.vkey {
		return fmt.Errorf("%w: the signing key %s has verifier key %s, but the ledger's installation.initialized event records %s: keys/ was replaced; %s",
			ErrSubstituted, cfg.SigningKeyPath(), ks.VerifierKey(), first.vkey, restore)
	}
	if meta, err := led.VerifierKey(); err != nil {
		return fmt.Errorf("reading the verifier key recorded in %s: %w", cfg.LedgerPath(), err)
	} else if meta != first.vkey {
		return fmt.Errorf("%w: %s records verifier key %s, but its installation.initialized event records %s: the ledger was edited; run custodian audit verify and %s",
			ErrSubstituted, cfg.LedgerPath(), meta, first.vkey, restore)
	}
	b, err := os.ReadFile(cfg.VerifierKeyPath())
	if err == nil && strings.TrimSpace(string(b)) != first.vkey {
		return fmt.Errorf("%w: %s (the verifier key given to auditors) holds %s, but the ledger's installation.initialized event records %s: it was replaced; write the recorded key back into it",
			ErrSubstituted, cfg.VerifierKeyPath(), strings.TrimSpace(string(b)), first.vkey)
	}
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// explainOpenError adds the fix to the ledger's refusal of a signing key
// that does not match the key it recorded.
func explainOpenError(cfg *configs.Config, err error) error {
	if errors.Is(err, audit.ErrKeyMismatch) {
		return fmt.Errorf("%w: the signing key %s is not the key that signs %s (%v): keys/ was replaced; restore the original from backup and find out who could write to data_dir",
			ErrSubstituted, cfg.SigningKeyPath(), cfg.LedgerPath(), err)
	}
	return err
}

// settleRotation finishes or undoes a vault key rotation that a crash
// interrupted, by what the ledger trusts (vault.ResumeRotation): finished
// if the ledger recorded it, undone if not.
func settleRotation(led *audit.Ledger, v *vault.Vault) error {
	if _, _, ok, err := v.PendingRotation(); err != nil || !ok {
		return err
	}
	trusted, _, err := led.VaultRecipient()
	if err != nil {
		return err
	}
	if _, err := v.ResumeRotation(trusted); err != nil {
		return fmt.Errorf("%w: an interrupted vault key rotation: %v", ErrSubstituted, err)
	}
	return nil
}

// CheckInstallation runs the checks of Open without taking the ledger for
// writing, for commands that read the installation directly while no
// daemon runs: data_dir's ownership and permissions (checkDataDir) and the
// vault and ledger keys against the ledger's first event (checkKeys).
func CheckInstallation(cfg *configs.Config) error {
	if err := checkDataDir(cfg); err != nil {
		return err
	}
	led, err := audit.Open(cfg.LedgerPath(), audit.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer led.Close()
	v, err := vault.Open(cfg.VaultDir())
	if err != nil {
		return err
	}
	var signer note.Signer
	if skey, err := os.ReadFile(cfg.SigningKeyPath()); err == nil {
		signer, err = audit.NewSigner(string(skey))
		clear(skey)
		if err != nil {
			return fmt.Errorf("ledger signing key %s: %w", cfg.SigningKeyPath(), err)
		}
	}
	return checkKeys(cfg, led, v, signer)
}

// checkBeforeOpen is what Open checks before it reads anything from
// data_dir: checkDataDir and CheckSourceSecrets.
func checkBeforeOpen(cfg *configs.Config) error {
	if err := checkDataDir(cfg); err != nil {
		return err
	}
	return CheckSourceSecrets(cfg)
}
