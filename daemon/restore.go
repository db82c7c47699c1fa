package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"custodian/audit"
	"custodian/backup"
	"custodian/configs"
	"custodian/internal/fsutil"
	"custodian/vault"
)

// ErrBadBackup: a backup failed verification (or is a rollback against a
// kept checkpoint); nothing was restored.
var ErrBadBackup = errors.New("backup failed verification")

// RestoreOptions are the inputs of Restore.
type RestoreOptions struct {
	From        string // the backup directory
	Passphrase  []byte // the vault passphrase: unseals the ledger's signing key
	VerifierKey string // the auditors' verifier key (default: the backup's own)
	Checkpoint  []byte // a checkpoint kept outside the host: an older ledger is refused
	Actor       string // the host account running the restore
}

// RestoreResult describes a restored installation.
type RestoreResult struct {
	Backup     *backup.Report `json:"backup"`
	Objects    int            `json:"objects"`
	EventIndex int64          `json:"event_index"` // of backup.restored
}

// Restore rebuilds an installation in cfg's data_dir from a backup: it
// verifies the backup (every hash against the signed manifest, the ledger,
// every object the ledger names present, and, with a kept checkpoint, that
// the backup is not a rollback), unseals the signing key with the vault
// passphrase, and lays out data_dir as Init does, all or nothing: it builds
// in data_dir/.init-XXXX (so an interrupted restore is cleaned up like an
// interrupted init) and moves vault/, keys/ and finally ledger.db into
// place, directories 0700 and files 0600. The restored ledger gains
// backup.restored, by opts.Actor, signed by the installation's own key.
// data_dir must not hold an installation.
func Restore(ctx context.Context, cfg *configs.Config, opts RestoreOptions) (res *RestoreResult, err error) {
	if len(opts.Passphrase) == 0 {
		return nil, errors.New("the vault passphrase is required: it unseals the ledger's signing key kept in the backup")
	}
	rep, err := backup.Verify(ctx, opts.From, backup.VerifyOptions{VerifierKey: opts.VerifierKey, Checkpoint: opts.Checkpoint})
	if err != nil {
		return nil, err
	}
	if !rep.OK {
		what := ""
		if rep.Rollback {
			what = " (a ROLLBACK: its ledger is older than, or inconsistent with, the kept checkpoint)"
		}
		return nil, fmt.Errorf("%w%s; nothing was restored:\n%s", ErrBadBackup, what, strings.TrimRight(rep.String(), "\n"))
	}
	m := rep.Manifest
	bv, err := vault.Open(filepath.Join(opts.From, "vault"))
	if err != nil {
		return nil, fmt.Errorf("the backup's vault: %w", err)
	}
	ident, err := bv.Unlock(opts.Passphrase)
	if err != nil {
		return nil, err
	}
	sealed, err := os.ReadFile(filepath.Join(opts.From, filepath.FromSlash(backup.SealedSignerFile)))
	if err != nil {
		return nil, err
	}
	skey, err := ident.Unseal(sealed)
	if err != nil {
		return nil, err
	}
	defer clear(skey)
	signer, err := audit.NewSigner(string(skey))
	if err != nil {
		return nil, fmt.Errorf("the backup's signing key: %w", err)
	}
	if got := signer.(audit.KeyedSigner).VerifierKey(); got != rep.VerifierKey {
		return nil, fmt.Errorf("%w: the sealed signing key belongs to %s, not to the verifier key %s", ErrBadBackup, got, rep.VerifierKey)
	}

	res = &RestoreResult{Backup: rep}
	err = installAtomically(cfg, "restored", "restore rebuilds an installation only where there is none", func(tcfg *configs.Config) error {
		objects, err := layOut(ctx, opts.From, m, tcfg, skey)
		if err != nil {
			return err
		}
		res.Objects = objects
		led, err := audit.Open(tcfg.LedgerPath(), audit.Options{Signer: signer})
		if err != nil {
			return err
		}
		actor := opts.Actor
		if actor == "" {
			actor = SystemActor
		}
		details := map[string]string{
			"backup_id": rep.ID, "dir": opts.From, "ledger_size": strconv.FormatInt(m.LedgerSize, 10),
			"manifest_sha256": rep.ManifestSHA256,
		}
		if rep.KeptCheckpoint > 0 {
			details["checked_against"] = "kept checkpoint of size " + strconv.FormatInt(rep.KeptCheckpoint, 10)
		}
		err = led.Update(func(tx *audit.Tx) error {
			ev, err := tx.Append(audit.Event{Actor: actor, Type: audit.EvBackupRestored, Details: details})
			res.EventIndex = ev.Index
			return err
		})
		if cerr := led.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("recording the restore on the ledger: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// layOut copies the backup into tcfg's data_dir (the temporary directory)
// with the modes the daemon requires, checking each copy's SHA-256 against
// the manifest, and writes the unsealed signing key (0600).
func layOut(ctx context.Context, from string, m *backup.Manifest, tcfg *configs.Config, skey []byte) (objects int, err error) {
	for _, d := range []string{tcfg.VaultDir(), filepath.Join(tcfg.VaultDir(), "objects"), filepath.Join(tcfg.VaultDir(), "tmp"), filepath.Join(tcfg.VaultDir(), "keys"), tcfg.KeysDir()} {
		if err := os.Mkdir(d, dataDirMode); err != nil {
			return 0, err
		}
	}
	copies := map[string]string{
		backup.MasterPubFile:   filepath.Join(tcfg.VaultDir(), "master.pub"),
		backup.MasterKeyFile:   filepath.Join(tcfg.VaultDir(), "master.key.age"),
		backup.VerifierKeyFile: tcfg.VerifierKeyPath(),
		m.LedgerPath():         tcfg.LedgerPath(),
	}
	dirs := map[string]bool{}
	for _, e := range m.Files {
		dst, ok := copies[e.Path]
		if !ok && strings.HasPrefix(e.Path, backup.ObjectsDir+"/") {
			dst = filepath.Join(tcfg.VaultDir(), "objects", filepath.FromSlash(strings.TrimPrefix(e.Path, backup.ObjectsDir+"/")))
			objects++
		}
		if !ok && strings.HasPrefix(e.Path, backup.KeysDir+"/") {
			// The objects' own keys (wrapped to the master key).
			dst = filepath.Join(tcfg.VaultDir(), "keys", filepath.FromSlash(strings.TrimPrefix(e.Path, backup.KeysDir+"/")))
		}
		if dst == "" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		sum, err := backup.CopyFile(filepath.Join(from, filepath.FromSlash(e.Path)), dst, 0o600)
		if err != nil {
			return 0, err
		}
		if sum != e.SHA256 {
			return 0, fmt.Errorf("%w: %s changed while it was restored (SHA-256 %s, the manifest says %s)", ErrBadBackup, e.Path, sum, e.SHA256)
		}
		dirs[filepath.Dir(dst)] = true
	}
	if err := fsutil.WriteFileAtomic(tcfg.SigningKeyPath(), skey, 0o600); err != nil {
		return 0, err
	}
	for d := range dirs {
		if err := fsutil.SyncDir(d); err != nil {
			return 0, err
		}
	}
	return objects, fsutil.SyncDir(tcfg.DataDir)
}
