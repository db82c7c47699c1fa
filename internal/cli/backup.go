package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"custodian/backup"
	"custodian/daemon"
)

func newBackupCmd(g *globals) *cobra.Command {
	var (
		out    string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "backup --config FILE --out DIR",
		Short: "Ask the running daemon to write a consistent backup into DIR (incremental)",
		Long: `backup asks the daemon to write a backup of the installation into DIR while it
keeps running. The daemon writes DIR itself, as the service account: the vault
objects and keys are readable by no one else, and the ledger's file lock is
the daemon's. DIR is created (0700) if it does not exist; otherwise it must be
the service account's and writable by no one else. Under systemd, DIR must be
writable by the unit (ReadWritePaths=).

The backup holds: a snapshot of the ledger (taken first, in one read
transaction), exactly the vault objects that snapshot names (ciphertext only;
objects already in DIR are not copied again), the verifier key, the ledger's
signing key sealed to the vault's key (unsealed only with the vault
passphrase), the vault's passphrase-encrypted master key, and the
configuration with each source's known_hosts. It holds no plaintext and no
unencrypted private key. A manifest of SHA-256 sums, with the ledger size and
tree hash, is signed with the ledger key. Source SSH keys are NOT in the
backup: keep them with the agency's other credentials.

Progress goes to stderr on a terminal. The summary ends with the backup's ID
(bk-LEDGERSIZE-MANIFESTHASH) on the last line. Check a backup with
custodian backup verify DIR; rebuild an installation with custodian restore.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{errors.New("--out DIR is required")}
			}
			abs, err := filepath.Abs(out)
			if err != nil {
				return usageError{fmt.Errorf("--out: %w", err)}
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			var prog func(backup.Progress)
			if !asJSON && isTerminal(g.stderr) {
				prog = backupProgress(g.stderr)
			}
			res, err := cl.Backup(cmd.Context(), abs, prog)
			if prog != nil {
				fmt.Fprint(g.stderr, "\r\033[K")
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, res)
			}
			fmt.Fprintf(g.stdout, "Backup written to %s\n", res.Dir)
			fmt.Fprintf(g.stdout, "  ledger:   %d events\n", res.LedgerSize)
			fmt.Fprintf(g.stdout, "  objects:  %d (%d copied, %d already present)\n", res.Objects, res.ObjectsCopied, res.ObjectsPresent)
			fmt.Fprintf(g.stdout, "  bytes:    %s (%s copied)\n", humanBytes(res.Bytes), humanBytes(res.BytesCopied))
			fmt.Fprintf(g.stdout, "  manifest: sha256 %s\n", res.ManifestSHA256)
			fmt.Fprintln(g.stdout, res.ID)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "out", "o", "", "the backup directory (the daemon writes it; a second backup to it copies only new objects)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (with \"id\")")
	c.AddCommand(newBackupVerifyCmd(g))
	return c
}

// backupProgress prints objects n/N and bytes on one line of w.
func backupProgress(w io.Writer) func(backup.Progress) {
	var mu sync.Mutex
	var last time.Time
	return func(p backup.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < 100*time.Millisecond && p.Objects != p.ObjectsTotal {
			return
		}
		last = time.Now()
		fmt.Fprintf(w, "\r\033[Kobjects %d/%d  %s/%s", p.Objects, p.ObjectsTotal, humanBytes(p.Bytes), humanBytes(p.BytesTotal))
	}
}

// backupTrust holds the flags that say what a backup is checked against.
type backupTrust struct {
	passFile, cpFile, vkey string
}

func (b *backupTrust) flags(c *cobra.Command, passHelp string) {
	c.Flags().StringVar(&b.passFile, "passphrase-file", "", passHelp)
	c.Flags().StringVar(&b.cpFile, "checkpoint", "", "a signed checkpoint kept outside the host: a backup whose ledger is older or inconsistent is refused as a rollback")
	c.Flags().StringVar(&b.vkey, "verifier-key", "", "the ledger's verifier key as the auditors hold it, or a file holding it (default: the backup's own)")
}

func (b *backupTrust) read(g *globals, wantPass bool) (cp []byte, vkey string, pass []byte, err error) {
	if b.cpFile != "" {
		if cp, err = os.ReadFile(b.cpFile); err != nil {
			return nil, "", nil, usageError{fmt.Errorf("--checkpoint: %w", err)}
		}
	}
	if b.vkey != "" {
		if vkey, err = readKeyArg(b.vkey); err != nil {
			return nil, "", nil, err
		}
	}
	if wantPass {
		if pass, err = readPassphrase(b.passFile, "Vault passphrase: ", false, g.stderr); err != nil {
			return nil, "", nil, err
		}
	}
	return cp, vkey, pass, nil
}

func newBackupVerifyCmd(g *globals) *cobra.Command {
	var (
		trust  backupTrust
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "verify DIR [--passphrase-file FILE] [--checkpoint FILE] [--verifier-key KEY|FILE]",
		Short: "Check a backup offline: signature, every hash, the ledger, every object (decrypted with the passphrase)",
		Long: `verify checks a backup without the daemon:
  - the manifest's signature (against --verifier-key, default the backup's own key)
  - every file's SHA-256 against the manifest (a changed byte, a removed file
    or an edited manifest fails, naming the file)
  - the ledger snapshot (custodian audit verify), and that it is the one the
    manifest names
  - every vault object the ledger names is in the backup
  - with --checkpoint: the ledger contains that checkpoint (a backup older
    than a checkpoint an auditor kept, or inconsistent with it, is a ROLLBACK)
  - with --passphrase-file: every object is decrypted in memory and checked
    against the ledger (size, SHA-256, records), and the sealed signing key
    against the verifier key.
Exit status 1 on any problem.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			cp, vkey, pass, err := trust.read(g, trust.passFile != "" || os.Getenv("CUSTODIAN_PASSPHRASE_FILE") != "")
			if err != nil {
				return err
			}
			opts := backup.VerifyOptions{VerifierKey: vkey, Checkpoint: cp, Passphrase: pass}
			if !asJSON && len(pass) > 0 && isTerminal(g.stderr) {
				opts.Progress = func(done, total int) { fmt.Fprintf(g.stderr, "\r\033[Kdecrypted %d/%d", done, total) }
			}
			rep, err := backup.Verify(cmd.Context(), args[0], opts)
			if opts.Progress != nil {
				fmt.Fprint(g.stderr, "\r\033[K")
			}
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(g.stdout, rep); err != nil {
					return err
				}
			} else {
				fmt.Fprint(g.stdout, rep.String())
			}
			if !rep.OK {
				return errFailed
			}
			return nil
		},
	}
	trust.flags(c, "file holding the vault passphrase: also decrypt every object (- for stdin; env CUSTODIAN_PASSPHRASE_FILE)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return c
}

func newRestoreCmd(g *globals) *cobra.Command {
	var (
		from   string
		trust  backupTrust
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "restore --from DIR --config FILE [--passphrase-file FILE] [--checkpoint FILE]",
		Short: "Rebuild an installation from a backup on a fresh host (data_dir must hold none)",
		Long: `restore rebuilds an installation in the configuration's data_dir from a backup,
without a daemon. Run it as the service account (sudo -u custodian ...).

It first verifies the backup (as custodian backup verify does, against
--verifier-key and --checkpoint when given: a backup older than a checkpoint
an auditor kept is refused as a ROLLBACK), then unseals the ledger's signing
key with the vault passphrase, and lays out data_dir with the modes serve
requires (directories 0700, files 0600): the ledger snapshot, the vault's
keys and every object, the signing and verifier keys. It is all or nothing,
and refuses a data_dir that already holds an installation. The restored
ledger records backup.restored, by you.

The configuration is yours (--config): the backup's copy is in
DIR/snapshot-N/config/ to compare with. Source SSH keys are not in a backup.
Afterwards: custodian serve, custodian audit verify, custodian vault verify.
A later job run pulls nothing the backup's ledger had received.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return usageError{errors.New("--from DIR is required")}
			}
			cfg, err := g.config()
			if err != nil {
				return err
			}
			cp, vkey, pass, err := trust.read(g, true)
			if err != nil {
				return err
			}
			res, err := daemon.Restore(cmd.Context(), cfg, daemon.RestoreOptions{From: from, Passphrase: pass, VerifierKey: vkey, Checkpoint: cp, Actor: currentUser()})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, map[string]any{"id": res.Backup.ID, "data_dir": cfg.DataDir, "ledger_size": res.Backup.LedgerSize,
					"objects": res.Objects, "event_index": res.EventIndex})
			}
			fmt.Fprintf(g.stdout, "Restored %s into %s: ledger of %d events, %d vault objects; backup.restored is entry %d\n",
				from, cfg.DataDir, res.Backup.LedgerSize, res.Objects, res.EventIndex)
			fmt.Fprintf(g.stdout, "Next: custodian serve --config %s, then custodian audit verify and custodian vault verify\n", cfg.Path)
			fmt.Fprintln(g.stdout, res.Backup.ID)
			return nil
		},
	}
	c.Flags().StringVar(&from, "from", "", "the backup directory")
	trust.flags(c, "file holding the vault passphrase, which unseals the signing key (- for stdin; env CUSTODIAN_PASSPHRASE_FILE)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (with \"id\")")
	return c
}

// usageArgs makes an argument count error a usage error (exit 2).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := check(c, args); err != nil {
			return usageError{fmt.Errorf("%w\nrun `%s --help` for usage", err, c.CommandPath())}
		}
		return nil
	}
}
