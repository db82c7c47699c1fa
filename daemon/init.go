package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"custodian/audit"
	"custodian/configs"
	"custodian/vault"
)

// InitOptions are the inputs of Init.
type InitOptions struct {
	// Passphrase protects the vault's private key. Required.
	Passphrase []byte
	// ScryptWorkFactor is the passphrase KDF cost (0: the vault's default).
	ScryptWorkFactor int
	// Actor is the person creating the installation.
	Actor string
}

// MinPassphrase is the shortest vault passphrase Init accepts.
const MinPassphrase = 12

// Init creates data_dir (0700), the vault and its master key, the ledger's
// signing key and the ledger, and records the installation as the ledger's
// first event. It refuses to touch an existing installation.
func Init(cfg *configs.Config, opts InitOptions) error {
	if len(opts.Passphrase) < MinPassphrase {
		return fmt.Errorf("vault passphrase: %d characters is too short; use at least %d", len(opts.Passphrase), MinPassphrase)
	}
	for _, p := range []string{cfg.LedgerPath(), cfg.VaultDir(), cfg.SigningKeyPath()} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%w: %s exists; custodian init never overwrites an installation", ErrAlreadyInitialized, p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	for _, dir := range []string{cfg.DataDir, cfg.KeysDir()} {
		if err := ensureDir(dir); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	if err := vault.Init(cfg.VaultDir(), opts.Passphrase, vault.InitOptions{ScryptWorkFactor: opts.ScryptWorkFactor}); err != nil {
		return fmt.Errorf("creating the vault: %w", err)
	}
	name := "custodian-ledger"
	if cfg.Unit != "" {
		name += "/" + cfg.Unit // note key names may not contain "+" or spaces
	}
	skey, vkey, err := audit.GenerateSigningKey(name)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(cfg.SigningKeyPath(), []byte(skey), 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(cfg.VerifierKeyPath(), []byte(vkey+"\n"), 0o600); err != nil {
		return err
	}
	signer, err := audit.NewSigner(skey)
	if err != nil {
		return err
	}
	led, err := audit.Open(cfg.LedgerPath(), audit.Options{Signer: signer})
	if err != nil {
		return err
	}
	defer led.Close()
	v, err := vault.Open(cfg.VaultDir())
	if err != nil {
		return err
	}
	actor := opts.Actor
	if actor == "" {
		actor = SystemActor
	}
	return led.Update(func(tx *audit.Tx) error {
		_, err := tx.Append(audit.Event{Actor: actor, Type: "installation.initialized", Details: map[string]string{
			"vault_recipient": v.Recipient(),
			"verifier_key":    vkey,
			"unit":            cfg.Unit,
		}})
		return err
	})
}

// writeFileAtomic writes data to a temp file, fsyncs it, renames it into
// place and fsyncs the directory.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
