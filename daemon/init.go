package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode"

	"custodian/accounts"
	"custodian/audit"
	"custodian/configs"
	"custodian/internal/failpoint"
	"custodian/internal/fsutil"
	"custodian/service"
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
	// Accounts are the first accounts (the first admin and supervisor),
	// each with an issued password that must be changed at the first
	// login, recorded as a bootstrap by Actor. Every later account comes
	// through an approved request.
	Accounts []service.BootstrapAccount
	// HashParams, if set, replaces the argon2id parameters (tests only).
	HashParams accounts.Params
}

// MinPassphrase is the shortest vault passphrase Init accepts.
const MinPassphrase = 12

// initPrefix starts the name of the directory inside data_dir where Init
// builds a new installation before moving it into place.
const initPrefix = ".init-"

// initSteps are the points of Init after which a failure is injected in
// tests (initHook) and a crash in crash tests (failpoint "init.STEP").
var initSteps = []string{"built-vault", "built-keys", "built-ledger", "moved-vault", "moved-keys", "moved-ledger"}

// initHook lets tests make Init fail after a step.
var initHook = func(step string) error { return nil }

func initStep(step string) error {
	failpoint.Hit("init." + step)
	return initHook(step)
}

// ledgerKeyBase is the signing key's name without a unit.
const ledgerKeyBase = "custodian-ledger"

// maxUnitInKeyName is the number of characters of the unit kept in the key
// name.
const maxUnitInKeyName = 64

// LedgerKeyName derives the name of the ledger's signing key (the origin
// line of every checkpoint and the name in every signature) from the
// configured unit, which may be anything a person types: "custodian-ledger/"
// followed by the unit, where each run of white space, '+', control or
// other invisible characters (which a note key name may not contain) becomes
// one '-', with none at either end. Letters of every script are kept, so
// "Health Bureau" gives "custodian-ledger/Health-Bureau" and 連江縣衛生局
// gives "custodian-ledger/連江縣衛生局". A unit longer than 64 characters is
// cut and, like a unit with nothing printable left, gets the first 8 hex
// digits of its SHA-256, so that distinct units keep distinct names. An
// empty unit gives "custodian-ledger". The unit as typed is kept in the
// ledger's first event.
func LedgerKeyName(unit string) string {
	if unit == "" {
		return ledgerKeyBase
	}
	var b strings.Builder
	n, sep, cut := 0, false, false
	for _, r := range unit {
		if !unicode.IsPrint(r) || r == ' ' || r == '+' || r == unicode.ReplacementChar {
			sep = true
			continue
		}
		if n == maxUnitInKeyName {
			cut = true
			break
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		b.WriteRune(r)
		n++
	}
	if b.Len() == 0 || cut {
		sum := sha256.Sum256([]byte(unit))
		if b.Len() > 0 {
			b.WriteByte('-')
		}
		b.WriteString(hex.EncodeToString(sum[:4]))
	}
	return ledgerKeyBase + "/" + b.String()
}

// Init creates a new installation in data_dir: the vault and its master key,
// the ledger's signing key, and the ledger, whose first event records the
// installation (the vault's recipient, the verifier key and the unit).
//
// Init is all or nothing. It builds everything in data_dir/.init-XXXX, then
// moves vault/, keys/ and finally ledger.db into place: ledger.db is the
// commit point (serve refuses without it). Any failure removes what Init
// created, leaving data_dir as it was (absent, or present with what it
// held); data_dir is made 0700 only on success. An Init that was killed
// midway leaves a .init-XXXX directory; the next Init removes it and the
// entries it had already moved (recognised by their keys, which the
// unfinished ledger names), then starts afresh. It refuses to touch an
// existing installation, and a data_dir (or parent) that someone other than
// root or the service account could change (see checkDataDir).
func Init(cfg *configs.Config, opts InitOptions) (issued []service.Issued, err error) {
	issued, err = initInstall(cfg, opts)
	if err != nil {
		issued = nil
	}
	return issued, err
}

func initInstall(cfg *configs.Config, opts InitOptions) (issued []service.Issued, err error) {
	if len(opts.Passphrase) < MinPassphrase {
		return nil, fmt.Errorf("vault passphrase: %d characters is too short; use at least %d", len(opts.Passphrase), MinPassphrase)
	}
	err = installAtomically(cfg, "new", "", func(tcfg *configs.Config) (err error) {
		issued, err = build(cfg, tcfg, opts)
		return err
	})
	return issued, err
}

// installAtomically lays out an installation in data_dir all or nothing
// (Init and Restore): it checks data_dir, takes its lock, cleans up an
// interrupted earlier attempt, refuses an existing installation (hint is
// added to that refusal), lets build fill a temporary directory
// data_dir/.init-XXXX (tcfg is cfg with that data_dir), then moves vault/,
// keys/ and finally ledger.db into place, each move durable before the
// next, so that after a crash ledger.db is never in place without vault/
// and keys/. Any failure removes what it created, leaving data_dir as it
// was; data_dir is made 0700 only on success. what names the installation
// in messages ("new", "restored").
func installAtomically(cfg *configs.Config, what, hint string, build func(tcfg *configs.Config) error) (err error) {
	dataDir := filepath.Clean(cfg.DataDir)
	if err := checkDataDir(cfg); err != nil {
		return err
	}
	created, err := mkdirAllTracked(dataDir, dataDirMode)
	if err != nil {
		return fmt.Errorf("creating data_dir %s: %w", dataDir, err)
	}
	defer func() {
		if err != nil {
			removeCreated(created)
		}
	}()
	unlock, err := lockDir(dataDir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := recoverInterruptedInit(cfg); err != nil {
		return err
	}
	if err := refuseExisting(cfg); err != nil {
		if hint != "" {
			err = fmt.Errorf("%w (%s)", err, hint)
		}
		return err
	}
	tmp, err := os.MkdirTemp(dataDir, initPrefix)
	if err != nil {
		return fmt.Errorf("creating a temporary directory in data_dir: %w", err)
	}
	var moved []string
	defer func() {
		if err != nil {
			for i := len(moved) - 1; i >= 0; i-- {
				os.RemoveAll(filepath.Join(dataDir, moved[i]))
			}
			os.RemoveAll(tmp)
			fsutil.SyncDir(dataDir)
		}
	}()
	tcfg := *cfg
	tcfg.DataDir = tmp
	if err := build(&tcfg); err != nil {
		return err
	}
	if err := fsutil.SyncDir(tmp); err != nil {
		return err
	}
	// Commit: ledger.db last.
	for _, name := range []string{filepath.Base(cfg.VaultDir()), filepath.Base(cfg.KeysDir()), filepath.Base(cfg.LedgerPath())} {
		if err := os.Rename(filepath.Join(tmp, name), filepath.Join(dataDir, name)); err != nil {
			return fmt.Errorf("moving the %s %s into data_dir: %w", what, name, err)
		}
		moved = append(moved, name)
		if err := fsutil.SyncDir(dataDir); err != nil {
			return err
		}
		if err := initStep("moved-" + strings.TrimSuffix(name, ".db")); err != nil {
			return err
		}
	}
	if err := os.Chmod(dataDir, dataDirMode); err != nil {
		return err
	}
	os.Remove(tmp)
	return fsutil.SyncDir(dataDir)
}

// build creates the installation in tcfg's data_dir (the temporary
// directory); cfg is the real configuration.
func build(cfg, tcfg *configs.Config, opts InitOptions) ([]service.Issued, error) {
	if err := vault.Init(tcfg.VaultDir(), opts.Passphrase, vault.InitOptions{ScryptWorkFactor: opts.ScryptWorkFactor}); err != nil {
		return nil, fmt.Errorf("creating the vault: %w", err)
	}
	if err := initStep("built-vault"); err != nil {
		return nil, err
	}
	if err := os.Mkdir(tcfg.KeysDir(), dataDirMode); err != nil {
		return nil, err
	}
	skey, vkey, err := audit.GenerateSigningKey(LedgerKeyName(cfg.Unit))
	if err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileAtomic(tcfg.SigningKeyPath(), []byte(skey), 0o600); err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileAtomic(tcfg.VerifierKeyPath(), []byte(vkey+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := initStep("built-keys"); err != nil {
		return nil, err
	}
	signer, err := audit.NewSigner(skey)
	if err != nil {
		return nil, err
	}
	v, err := vault.Open(tcfg.VaultDir())
	if err != nil {
		return nil, err
	}
	led, err := audit.Open(tcfg.LedgerPath(), audit.Options{Signer: signer})
	if err != nil {
		return nil, err
	}
	actor := opts.Actor
	if actor == "" {
		actor = SystemActor
	}
	var issued []service.Issued
	err = led.Update(func(tx *audit.Tx) error {
		_, err := tx.Append(audit.Event{Actor: actor, Type: audit.EvInstallationInitialized, Details: map[string]string{
			"vault_recipient": v.Recipient(),
			"verifier_key":    vkey,
			"unit":            cfg.Unit,
		}})
		if err != nil || len(opts.Accounts) == 0 {
			return err
		}
		pol, err := accounts.PolicyFromConfig(cfg.Accounts)
		if err != nil {
			return err
		}
		if opts.HashParams != (accounts.Params{}) {
			pol.Hash = opts.HashParams
		}
		issued, err = service.Bootstrap(tx, actor, opts.Accounts, pol, time.Now().UTC())
		return err
	})
	if cerr := led.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := initStep("built-ledger"); err != nil {
		return nil, err
	}
	return issued, fsutil.SyncDir(tcfg.DataDir)
}

// refuseExisting refuses to overwrite an installation, and explains the
// half-made one an earlier version of Init could leave.
func refuseExisting(cfg *configs.Config) error {
	var found []string
	for _, p := range []string{cfg.LedgerPath(), cfg.VaultDir(), cfg.SigningKeyPath()} {
		if _, err := os.Lstat(p); err == nil {
			found = append(found, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if len(found) == 0 {
		return nil
	}
	if found[0] != cfg.LedgerPath() {
		return fmt.Errorf("%w: %s exists but %s does not: an earlier custodian init (before init became all-or-nothing) failed midway, or the files were put there by hand; nothing can have been stored without a ledger. If you did not put them there, remove them (rm -r %s %s) and run custodian init again",
			ErrAlreadyInitialized, strings.Join(found, " and "), cfg.LedgerPath(), cfg.VaultDir(), cfg.KeysDir())
	}
	return fmt.Errorf("%w: %s exists; custodian init never overwrites an installation", ErrAlreadyInitialized, found[0])
}

// recoverInterruptedInit removes what an Init that was killed midway left:
// its .init-XXXX directory and, when ledger.db was never moved into place,
// the vault/ and keys/ it had already moved, recognised by the recipient and
// verifier key that its unfinished ledger's first event names. Anything
// else is left alone (refuseExisting then reports it).
func recoverInterruptedInit(cfg *configs.Config) error {
	entries, err := os.ReadDir(cfg.DataDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), initPrefix) {
			continue
		}
		tmp := filepath.Join(cfg.DataDir, e.Name())
		if _, err := os.Lstat(cfg.LedgerPath()); errors.Is(err, fs.ErrNotExist) {
			tcfg := *cfg
			tcfg.DataDir = tmp
			if recipient, vkey, ok := installationKeys(tcfg.LedgerPath()); ok {
				if v, err := vault.Open(cfg.VaultDir()); err == nil && v.Recipient() == recipient {
					if err := os.RemoveAll(cfg.VaultDir()); err != nil {
						return err
					}
				}
				if b, err := os.ReadFile(cfg.VerifierKeyPath()); err == nil && strings.TrimSpace(string(b)) == vkey {
					if err := os.RemoveAll(cfg.KeysDir()); err != nil {
						return err
					}
				}
			}
		}
		if err := os.RemoveAll(tmp); err != nil {
			return fmt.Errorf("removing %s, left by an interrupted custodian init: %w", tmp, err)
		}
	}
	return fsutil.SyncDir(cfg.DataDir)
}

// installationKeys reads the vault recipient and verifier key from the
// installation.initialized event of the ledger at path.
func installationKeys(path string) (recipient, vkey string, ok bool) {
	if _, err := os.Stat(path); err != nil {
		return "", "", false
	}
	l, err := audit.Open(path, audit.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return "", "", false
	}
	defer l.Close()
	evs, err := l.Events(0, 1)
	if err != nil || len(evs) != 1 || evs[0].Type != "installation.initialized" {
		return "", "", false
	}
	recipient, vkey = evs[0].Details["vault_recipient"], evs[0].Details["verifier_key"]
	return recipient, vkey, recipient != "" && vkey != ""
}

// mkdirAllTracked is os.MkdirAll that returns the directories it created,
// outermost first.
func mkdirAllTracked(dir string, mode os.FileMode) ([]string, error) {
	var missing []string
	for p := dir; ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append([]string{p}, missing...)
		if filepath.Dir(p) == p {
			break
		}
	}
	var created []string
	for _, p := range missing {
		if err := os.Mkdir(p, mode); err != nil {
			removeCreated(created)
			return nil, err
		}
		created = append(created, p)
	}
	return created, nil
}

// removeCreated removes the directories mkdirAllTracked created, innermost
// first, if they are empty.
func removeCreated(created []string) {
	for i := len(created) - 1; i >= 0; i-- {
		os.Remove(created[i])
	}
}

// lockDir takes an exclusive lock on dir for the life of Init, so that two
// Inits never build in the same data_dir.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data_dir %s is locked: is another custodian init running? (%v)", dir, err)
	}
	return func() { f.Close() }, nil
}
