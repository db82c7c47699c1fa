package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"

	"custodian/audit"
	"custodian/backup"
	"custodian/internal/fsutil"
)

// Backup writes a consistent backup of the installation into dir, an
// absolute directory the daemon (the service account) writes: the ledger
// snapshot first, then exactly the vault objects it names (only those not
// already in dir), the keys (the signing key sealed to the vault's key), the
// vault's encrypted master key and the configuration, then the manifest
// signed with the ledger key. It records backup.created and the daemon's
// last backup (data_dir/last-backup.json).
func (s *Service) Backup(ctx context.Context, a Actor, dir string, progress func(backup.Progress)) (*backup.Result, error) {
	if err := s.authorize(a, ActBackup, Resource{Kind: "installation"}); err != nil {
		return nil, err
	}
	// A ledger that failed verification or cannot be written is not backed
	// up over: the backup's manifest would vouch for it, and its event
	// could not be recorded. Copy data_dir as evidence instead.
	if err := s.open(); err != nil {
		return nil, err
	}
	if s.Signer == nil || s.Vault == nil {
		return nil, fmt.Errorf("%w: backups are written by the daemon (custodian serve)", ErrUnavailable)
	}
	if dir == "" || !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("%w: out: %q is not an absolute directory; the daemon writes the backup, so give its absolute path (--out DIR)", ErrInvalid, dir)
	}
	cfg := s.config()
	files := map[string]string{}
	if cfg.Path != "" {
		files["custodian.yaml"] = cfg.Path
	}
	names := make([]string, 0, len(cfg.Sources))
	for n := range cfg.Sources {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if src := cfg.Sources[n]; src != nil && src.KnownHosts != "" {
			files["known_hosts."+n] = src.KnownHosts
		}
	}
	res, err := backup.Write(ctx, backup.Source{
		Ledger: s.Ledger, Vault: s.Vault, VaultDir: cfg.VaultDir(),
		SigningKeyPath: cfg.SigningKeyPath(), VerifierKeyPath: cfg.VerifierKeyPath(),
		Signer: s.Signer, Config: files, Now: s.now,
	}, dir, progress)
	if errors.Is(err, backup.ErrRefused) {
		return nil, s.refused(a, ActBackup, Resource{Kind: "installation"}, fmt.Errorf("%w: %v", ErrRefused, err))
	}
	if err != nil {
		return nil, err
	}
	if err := s.Record(audit.Event{Actor: a.Name, Type: audit.EvBackupCreated, Details: map[string]string{
		"backup_id":       res.ID,
		"dir":             res.Dir,
		"ledger_size":     strconv.FormatInt(res.LedgerSize, 10),
		"objects":         strconv.Itoa(res.Objects),
		"objects_copied":  strconv.Itoa(res.ObjectsCopied),
		"bytes":           strconv.FormatInt(res.Bytes, 10),
		"bytes_copied":    strconv.FormatInt(res.BytesCopied, 10),
		"manifest_sha256": res.ManifestSHA256,
	}}); err != nil {
		return nil, fmt.Errorf("the backup %s was written but cannot be recorded on the ledger: %w", res.ID, err)
	}
	last, _ := json.MarshalIndent(backup.Last{ID: res.ID, Time: s.now(), Dir: res.Dir, LedgerSize: res.LedgerSize, Objects: res.Objects, Bytes: res.Bytes}, "", "  ")
	if err := fsutil.WriteFileAtomic(filepath.Join(cfg.DataDir, backup.LastFile), append(last, '\n'), 0o600); err != nil {
		s.Logger.Error().Err(err).Msg("cannot record the last backup in data_dir (doctor will not see it)")
	}
	return res, nil
}
