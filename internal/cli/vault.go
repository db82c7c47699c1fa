package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"custodian/audit"
	"custodian/configs"
	"custodian/daemon"
	"custodian/transfer"
	"custodian/vault"
)

func newVaultCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "vault", Short: "Check the encrypted vault"}
	var passFile string
	verify := &cobra.Command{
		Use:   "verify --config FILE [--passphrase-file FILE]",
		Short: "Decrypt every object (in memory, streaming) and check it against the ledger",
		Long: `verify is the scrub: it unlocks the vault's private key in this process (the key
never reaches the daemon), decrypts every dataset's object as a stream without
writing plaintext anywhere, and checks its size, SHA-256 and record count
against the ledger. It names every object that fails, reports objects no
dataset refers to, and records the outcome on the ledger. Exit status 1 on any
failure.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, cfg, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ds, err := cl.Datasets(ctx)
			daemonUp := err == nil
			if errors.Is(err, daemon.ErrNotRunning) {
				// No daemon checked the installation at its start: do it here.
				if err := daemon.CheckInstallation(cfg); err != nil {
					return err
				}
				ds, err = readDatasetsDirect(cfg)
			}
			if err != nil {
				return err
			}
			pass, err := readPassphrase(passFile, "Vault passphrase: ", false, g.stderr)
			if err != nil {
				return err
			}
			rep, err := scrub(ctx, cfg, pass, ds, g.stdout)
			if err != nil {
				return err
			}
			if daemonUp {
				if err := cl.RecordScrub(ctx, rep); err != nil {
					return fmt.Errorf("recording the result on the ledger: %w", err)
				}
			} else {
				fmt.Fprintln(g.stderr, "(no daemon running: the result is not recorded on the ledger)")
			}
			if len(rep.Failed) > 0 {
				return errFailed
			}
			return nil
		},
	}
	verify.Flags().StringVar(&passFile, "passphrase-file", "", "file holding the vault passphrase (- for stdin; env CUSTODIAN_PASSPHRASE_FILE)")
	c.AddCommand(verify)
	return c
}

func readDatasetsDirect(cfg *configs.Config) ([]audit.Dataset, error) {
	l, err := audit.Open(cfg.LedgerPath(), audit.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return l.Datasets()
}

// scrub checks every dataset's object and reports to w.
func scrub(ctx context.Context, cfg *configs.Config, pass []byte, ds []audit.Dataset, w io.Writer) (daemon.ScrubReport, error) {
	rep := daemon.ScrubReport{Failed: map[string]string{}}
	v, err := vault.Open(cfg.VaultDir())
	if err != nil {
		return rep, err
	}
	ident, err := v.Unlock(pass)
	if err != nil {
		return rep, err
	}
	referenced := map[string]bool{}
	for i, d := range ds {
		for _, id := range d.Objects() {
			referenced[id] = true
		}
		if d.ObjectID == "" {
			continue // destroyed datasets keep no object
		}
		rep.Checked++
		if err := transfer.CheckObject(ctx, v, ident, d); err != nil {
			rep.Failed[d.ID] = err.Error()
			fmt.Fprintf(w, "FAIL  %s  %s\n", d.ID, err)
			continue
		}
		fmt.Fprintf(w, "ok    %s  %d/%d  %s  %d records\n", d.ID, i+1, len(ds), humanBytes(d.Size), d.Records)
	}
	ids, err := v.List()
	if err != nil {
		return rep, err
	}
	var orphans []string
	for _, id := range ids {
		if !referenced[id] {
			orphans = append(orphans, id)
		}
	}
	sort.Strings(orphans)
	for _, id := range orphans {
		fmt.Fprintf(w, "WARN  object %s is referenced by no dataset (removed on the daemon's next start)\n", id)
	}
	fmt.Fprintf(w, "Vault verify: %d object(s) checked, %d failed, %d unreferenced\n", rep.Checked, len(rep.Failed), len(orphans))
	return rep, nil
}
