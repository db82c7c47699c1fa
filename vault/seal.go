package vault

import (
	"bytes"
	"fmt"
	"io"

	"filippo.io/age"
)

// maxSealed bounds what Seal and Unseal handle: small secrets (keys), never
// datasets, which go through Create.
const maxSealed = 1 << 16

// Seal encrypts a small secret (at most 64 KiB), such as the ledger's
// signing key for a backup, to the vault's master key: only someone who can
// Unlock the vault (who knows the passphrase) can read it back with
// [Identity.Unseal]. The daemon holds only the public key, so it can seal
// but never unseal.
func (v *Vault) Seal(secret []byte) ([]byte, error) {
	if len(secret) > maxSealed {
		return nil, fmt.Errorf("%w: a sealed secret is at most %d bytes", ErrInvalidArgument, maxSealed)
	}
	var buf bytes.Buffer
	v.rot.RLock()
	r := v.recipient
	v.rot.RUnlock()
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		return nil, fmt.Errorf("vault: seal: %w", err)
	}
	if _, err := w.Write(secret); err != nil {
		return nil, fmt.Errorf("vault: seal: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("vault: seal: %w", err)
	}
	return buf.Bytes(), nil
}

// Unseal decrypts what [Vault.Seal] sealed to this identity's vault. The
// caller should clear the result once used.
func (i *Identity) Unseal(sealed []byte) ([]byte, error) {
	if i == nil || i.x == nil {
		return nil, fmt.Errorf("%w: nil identity", ErrInvalidArgument)
	}
	r, err := age.Decrypt(bytes.NewReader(sealed), i.x)
	if err != nil {
		return nil, fmt.Errorf("%w: sealed secret: %w", ErrCorrupt, err)
	}
	b, err := io.ReadAll(io.LimitReader(r, maxSealed+1))
	if err != nil {
		return nil, fmt.Errorf("%w: sealed secret: %w", ErrCorrupt, err)
	}
	if len(b) > maxSealed {
		clear(b)
		return nil, fmt.Errorf("%w: sealed secret larger than %d bytes", ErrCorrupt, maxSealed)
	}
	return b, nil
}
