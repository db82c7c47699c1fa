package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"custodian/audit"
	"custodian/configs"
	"custodian/transfer"
	"custodian/vault"
)

// keyring holds the vault's private key while the vault is unsealed: in
// memory only, never on disk, until a person seals it, it goes unused for
// vault.unseal_idle, or the daemon stops. Go cannot wipe memory, so
// sealing drops the daemon's reference and the key is gone once the
// garbage collector reclaims it; reads in progress finish with the
// reference they hold.
type keyring struct {
	mu    sync.Mutex
	ident *vault.Identity
	by    string    // who unsealed
	since time.Time // when
	last  time.Time // the last use of the key ended (or began)
	inUse int       // reads, exports and scrubs holding the key now
}

// VaultState says whether the daemon holds the vault's private key.
type VaultState struct {
	Sealed     bool       `json:"sealed"`
	UnsealedBy string     `json:"unsealed_by,omitempty"`
	UnsealedAt *time.Time `json:"unsealed_at,omitempty"`
	// Until is when the key is dropped if nobody uses it (idle timeout);
	// absent while sealed or while a use is in progress.
	Until *time.Time `json:"until,omitempty"`
	InUse int        `json:"in_use,omitempty"`
	Idle  string     `json:"idle"` // vault.unseal_idle
}

// unsealIdle is vault.unseal_idle.
func (s *Service) unsealIdle() time.Duration {
	if d := s.config().Vault.UnsealIdle.Duration; d > 0 {
		return d
	}
	return configs.DefaultUnsealIdle
}

// VaultState reports the key's state, sealing first if it sat idle too
// long.
func (s *Service) vaultState() VaultState {
	s.SealIfIdle()
	idle := s.unsealIdle()
	s.key.mu.Lock()
	defer s.key.mu.Unlock()
	st := VaultState{Sealed: s.key.ident == nil, Idle: idle.String()}
	if st.Sealed {
		return st
	}
	since, until := s.key.since, s.key.last.Add(idle)
	st.UnsealedBy, st.UnsealedAt, st.InUse = s.key.by, &since, s.key.inUse
	if s.key.inUse == 0 {
		st.Until = &until
	}
	return st
}

// VaultSealed reports whether the daemon holds no vault key (for metrics;
// no authorization: it reveals nothing but the seal).
func (s *Service) VaultSealed() bool {
	s.key.mu.Lock()
	defer s.key.mu.Unlock()
	return s.key.ident == nil
}

// Unseal unlocks the vault's private key with passphrase and keeps it in
// the daemon's memory. A wrong passphrase is a refusal, recorded.
func (s *Service) Unseal(ctx context.Context, a Actor, passphrase []byte) (VaultState, error) {
	r := Resource{Kind: "vault"}
	if err := s.authorize(a, ActUnseal, r); err != nil {
		return VaultState{}, err
	}
	if err := s.open(); err != nil {
		return VaultState{}, err
	}
	if s.Vault == nil {
		return VaultState{}, fmt.Errorf("%w: no vault is open in this process", ErrUnavailable)
	}
	if len(passphrase) == 0 || len(passphrase) > maxSecret {
		return VaultState{}, fmt.Errorf("%w: passphrase: give the vault passphrase (--passphrase-file or the prompt)", ErrInvalid)
	}
	if st := s.vaultState(); !st.Sealed {
		return st, fmt.Errorf("%w: the vault is unsealed already (by %s); seal it first to unseal it again", ErrConflict, st.UnsealedBy)
	}
	ident, err := s.Vault.Unlock(passphrase)
	switch {
	case errors.Is(err, vault.ErrBadPassphrase):
		return VaultState{}, s.refused(a, ActUnseal, r, fmt.Errorf("%w: passphrase: not the vault's passphrase", ErrForbidden))
	case err != nil:
		return VaultState{}, err
	}
	now := s.now()
	s.key.mu.Lock()
	if s.key.ident != nil {
		s.key.mu.Unlock()
		return s.vaultState(), fmt.Errorf("%w: the vault was unsealed meanwhile (by %s)", ErrConflict, s.key.by)
	}
	s.key.ident, s.key.by, s.key.since, s.key.last = ident, a.Name, now, now
	s.key.mu.Unlock()
	s.recordEvent(attributed(a, audit.Event{Actor: a.Name, Type: audit.EvVaultUnsealed, Details: map[string]string{
		"idle": s.unsealIdle().String()}}))
	s.Logger.Info().Str("actor", a.Name).Msg("vault unsealed")
	return s.vaultState(), nil
}

// Seal drops the private key at a person's request.
func (s *Service) Seal(ctx context.Context, a Actor) (VaultState, error) {
	if err := s.authorize(a, ActSeal, Resource{Kind: "vault"}); err != nil {
		return VaultState{}, err
	}
	if !s.seal(a.Name, "request", a) {
		return s.vaultState(), fmt.Errorf("%w: the vault is sealed already", ErrConflict)
	}
	return s.vaultState(), nil
}

// SealIfIdle drops the key if nobody used it for vault.unseal_idle; the
// daemon calls it every few seconds, and every use of the key first.
func (s *Service) SealIfIdle() {
	idle := s.unsealIdle()
	s.key.mu.Lock()
	due := s.key.ident != nil && s.key.inUse == 0 && !s.now().Before(s.key.last.Add(idle))
	s.key.mu.Unlock()
	if due {
		s.seal(SystemActor, "idle", Actor{Name: SystemActor})
	}
}

// SealForShutdown drops the key as the daemon stops.
func (s *Service) SealForShutdown() {
	s.seal(SystemActor, "shutdown", Actor{Name: SystemActor})
}

// seal drops the key and records why; false if it was sealed already.
func (s *Service) seal(by, reason string, a Actor) bool {
	s.key.mu.Lock()
	if s.key.ident == nil {
		s.key.mu.Unlock()
		return false
	}
	unsealedBy, since, inUse := s.key.by, s.key.since, s.key.inUse
	s.key.ident, s.key.by = nil, ""
	s.key.mu.Unlock()
	d := map[string]string{"reason": reason, "unsealed_by": unsealedBy, "unsealed_at": since.UTC().Format(time.RFC3339)}
	if reason == "idle" {
		d["idle"] = s.unsealIdle().String()
	}
	if inUse > 0 {
		d["uses_in_progress"] = strconv.Itoa(inUse)
	}
	s.recordEvent(attributed(a, audit.Event{Actor: by, Type: audit.EvVaultSealed, Details: d}))
	s.Logger.Info().Str("actor", by).Str("reason", reason).Msg("vault sealed")
	return true
}

// errSealed is the rule a sealed vault answers with.
var errSealed = fmt.Errorf("%w: vault: sealed; reading needs the vault's private key: an officer unseals it first (`custodian vault unseal`)", ErrConflict)

// useKey returns the private key for one use (a read, an export, a scrub)
// and the function that ends the use; the idle timeout counts from then.
func (s *Service) useKey() (*vault.Identity, func(), error) {
	s.SealIfIdle()
	s.key.mu.Lock()
	defer s.key.mu.Unlock()
	if s.key.ident == nil || s.Vault == nil {
		return nil, nil, errSealed
	}
	s.key.inUse++
	s.key.last = s.now()
	var once sync.Once
	return s.key.ident, func() {
		once.Do(func() {
			s.key.mu.Lock()
			s.key.inUse--
			s.key.last = s.now()
			s.key.mu.Unlock()
		})
	}, nil
}

// ScrubLine is one object checked by the in-daemon scrub.
type ScrubLine struct {
	ObjectID string `json:"object_id"`
	Dataset  string `json:"dataset"`
	Current  bool   `json:"current"` // the dataset's current object (else an earlier receipt's)
	Size     int64  `json:"size"`
	Records  int64  `json:"records"`
	Error    string `json:"error,omitempty"`
}

// VaultScrub is the outcome of the in-daemon scrub, as recorded.
type VaultScrub struct {
	Index         int64             `json:"index"` // the vault.scrubbed event
	LedgerSize    int64             `json:"ledger_size"`
	Checked       int               `json:"checked"`
	Failed        map[string]string `json:"failed"`
	CheckedDigest string            `json:"checked_digest"`
	Unreferenced  []string          `json:"unreferenced,omitempty"`
	Objects       []ScrubLine       `json:"objects"`
}

// ScrubVault has the daemon, unsealed, decrypt every object the ledger
// refers to (as a stream, in memory) and check its size, SHA-256 and
// record count; the outcome is recorded as the daemon's own finding
// (vault.scrubbed), each failure as vault.object_failed.
func (s *Service) ScrubVault(ctx context.Context, a Actor) (VaultScrub, error) {
	r := Resource{Kind: "vault"}
	if err := s.authorize(a, ActScrubVault, r); err != nil {
		return VaultScrub{}, err
	}
	if err := s.open(); err != nil {
		return VaultScrub{}, err
	}
	ident, done, err := s.useKey()
	if err != nil {
		return VaultScrub{}, s.refused(a, ActScrubVault, r, err)
	}
	defer done()
	size, err := s.Ledger.Size()
	if err != nil {
		return VaultScrub{}, err
	}
	plan, err := transfer.PlanScrub(s.Ledger, size)
	if err != nil {
		return VaultScrub{}, err
	}
	out := VaultScrub{LedgerSize: size, Failed: map[string]string{}}
	referenced := map[string]bool{}
	owner := map[string]string{}
	for _, it := range plan.Items {
		referenced[it.ObjectID] = true
		owner[it.ObjectID] = it.Dataset.ID
		line := ScrubLine{ObjectID: it.ObjectID, Dataset: it.Dataset.ID, Current: it.Dataset.ObjectID == it.ObjectID,
			Size: it.Dataset.Size, Records: it.Dataset.Records}
		if err := s.Vault.CheckObject(ctx, ident, it.Dataset); err != nil {
			if ctx.Err() != nil {
				return VaultScrub{}, ctx.Err() // interrupted: nothing to record
			}
			line.Error = err.Error()
			out.Failed[it.ObjectID] = err.Error()
		}
		out.Checked++
		out.Objects = append(out.Objects, line)
	}
	out.CheckedDigest = transfer.ScrubDigest(plan.Items)
	ids, err := s.Vault.List()
	if err != nil {
		return VaultScrub{}, err
	}
	for _, id := range ids {
		if !referenced[id] {
			out.Unreferenced = append(out.Unreferenced, id)
		}
	}
	failed := slices.Sorted(maps.Keys(out.Failed))
	list := strings.Join(failed, " ")
	if len(list) > maxFailedObjectsField {
		cut := strings.LastIndexByte(list[:maxFailedObjectsField], ' ')
		list = list[:max(cut, 0)] + " … (the rest in vault.object_failed events)"
	}
	details := map[string]string{
		"objects_checked": strconv.Itoa(out.Checked),
		"failed":          strconv.Itoa(len(failed)),
		"failed_objects":  list,
		"checked_digest":  out.CheckedDigest,
		"ledger_size":     strconv.FormatInt(size, 10),
		"unreferenced":    strconv.Itoa(len(out.Unreferenced)),
	}
	err = s.Ledger.Update(func(tx *audit.Tx) error {
		ev, err := tx.Append(attributed(a, audit.Event{Actor: a.Name, Type: audit.EvVaultScrubbed, Details: details}))
		if err != nil {
			return err
		}
		out.Index = ev.Index
		for _, obj := range failed {
			if _, err := tx.Append(audit.Event{Actor: a.Name, Type: audit.EvVaultObjectFailed, DatasetID: owner[obj], Details: map[string]string{
				"object_id": obj, "reason": out.Failed[obj], "reported_by": SystemActor}}); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}
