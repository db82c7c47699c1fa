package daemon

import (
	"errors"
	"fmt"
	"os"
	"time"

	"custodian/accounts"
	"custodian/audit"
	"custodian/configs"
	"custodian/service"
	"custodian/vault"
)

// RecoverAccount is the way back when every admin or every supervisor is
// locked or disabled: run by root on the host, with the daemon stopped
// (it opens the ledger itself) and the vault passphrase (proof of the
// installation's owner). It reopens username with a new issued password and
// records account.recovered by hostUser.
func RecoverAccount(cfg *configs.Config, passphrase []byte, hostUser, username string) (service.Issued, error) {
	if os.Geteuid() != 0 {
		return service.Issued{}, fmt.Errorf("%w: recover: needs root on the host", service.ErrForbidden)
	}
	if err := checkBeforeOpen(cfg); err != nil {
		return service.Issued{}, err
	}
	v, err := vault.Open(cfg.VaultDir())
	if err != nil {
		return service.Issued{}, err
	}
	if _, err := v.Unlock(passphrase); err != nil {
		return service.Issued{}, fmt.Errorf("%w: recover: the vault passphrase is wrong (%v)", service.ErrForbidden, err)
	}
	skey, err := os.ReadFile(cfg.SigningKeyPath())
	if err != nil {
		return service.Issued{}, fmt.Errorf("reading the ledger signing key: %w", err)
	}
	signer, err := audit.NewSigner(string(skey))
	if err != nil {
		return service.Issued{}, err
	}
	led, err := audit.Open(cfg.LedgerPath(), audit.Options{Signer: signer, Timeout: time.Second})
	if errors.Is(err, audit.ErrLocked) {
		return service.Issued{}, fmt.Errorf("%w: the daemon holds the ledger; stop it first (systemctl stop custodian)", ErrRunning)
	}
	if err != nil {
		return service.Issued{}, err
	}
	defer led.Close()
	if err := checkKeys(cfg, led, v, signer); err != nil {
		return service.Issued{}, err
	}
	pol, err := accounts.PolicyFromConfig(cfg.Accounts)
	if err != nil {
		return service.Issued{}, err
	}
	var issued service.Issued
	err = led.Update(func(tx *audit.Tx) (err error) {
		issued, err = service.RecoverAccount(tx, hostUser, username, pol, time.Now().UTC())
		return err
	})
	return issued, err
}
