package transfer

import (
	"context"
	"io"

	"custodian/vault"
)

// Store is the part of the vault a job needs: ingest takes only the public key.
type Store interface {
	Create(ctx context.Context) (ObjectWriter, error)
	Remove(id string) error
	// Flush makes every object closed before the call durable; concurrent
	// callers share one flush (group commit).
	Flush() error
}

// ObjectWriter receives one object's plaintext and encrypts it.
type ObjectWriter interface {
	io.Writer
	// Close finishes the object; it is durable only after Store.Flush.
	Close() (vault.ObjectInfo, error)
	Abort() error
	ID() string
}

// VaultStore adapts *vault.Vault to Store.
type VaultStore struct{ V *vault.Vault }

// Create implements Store.
func (s VaultStore) Create(ctx context.Context) (ObjectWriter, error) { return s.V.Create(ctx) }

// Remove implements Store.
func (s VaultStore) Remove(id string) error { return s.V.Remove(id) }

// Flush implements Store.
func (s VaultStore) Flush() error { return s.V.Flush() }

var _ Store = VaultStore{}
