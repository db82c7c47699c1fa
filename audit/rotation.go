package audit

import (
	"fmt"
	"strconv"
)

// RotationOnceKey is the once key of the n-th vault.rotated event (1, 2,
// …). Each rotation is recorded with the next number, so the latest is
// found by index lookups, without reading the log.
func RotationOnceKey(n int) string { return "vault.rotation:" + strconv.Itoa(n) }

// VaultRecipient returns the vault public key the ledger trusts: the one
// installation.initialized recorded, replaced by each vault.rotated event
// in turn (their old_recipient must be the key they replace), and the
// number of rotations. The daemon refuses a vault whose master.pub is any
// other key.
func (l *Ledger) VaultRecipient() (recipient string, rotations int, err error) {
	chain, err := l.VaultRecipients()
	if err != nil {
		return "", 0, err
	}
	return chain[len(chain)-1], len(chain) - 1, nil
}

// VaultRecipients returns every vault public key the ledger has trusted,
// oldest first: installation.initialized's, then each vault.rotated's
// new_recipient.
func (l *Ledger) VaultRecipients() ([]string, error) {
	recipient, chain, err := "", []string(nil), error(nil)
	evs, err := l.Events(0, 1)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 || evs[0].Type != EvInstallationInitialized || evs[0].Details["vault_recipient"] == "" {
		return nil, fmt.Errorf("the ledger does not start with installation.initialized recording vault_recipient")
	}
	recipient = evs[0].Details["vault_recipient"]
	chain = append(chain, recipient)
	for n := 1; ; n++ {
		i, ok, err := l.Once(RotationOnceKey(n))
		if err != nil {
			return nil, err
		}
		if !ok {
			return chain, nil
		}
		ev, err := l.Events(i, 1)
		if err != nil {
			return nil, err
		}
		if len(ev) != 1 || ev[0].Type != EvVaultRotated {
			return nil, fmt.Errorf("once key %s names event %d, which is not vault.rotated", RotationOnceKey(n), i)
		}
		if old := ev[0].Details["old_recipient"]; old != recipient {
			return nil, fmt.Errorf("vault.rotated event %d replaces %s, but the vault key then in force was %s", i, old, recipient)
		}
		recipient = ev[0].Details["new_recipient"]
		if recipient == "" {
			return nil, fmt.Errorf("vault.rotated event %d records no new_recipient", i)
		}
		chain = append(chain, recipient)
	}
}
