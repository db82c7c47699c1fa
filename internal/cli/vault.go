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
	"custodian/service"
	"custodian/transfer"
	"custodian/vault"
)

func newVaultCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "vault", Short: "Check the encrypted vault; unseal and seal its private key in the daemon; rotate its master key"}
	var passFile string
	verify := &cobra.Command{
		Use:   "verify --config FILE [--passphrase-file FILE]",
		Short: "Decrypt every object (in memory, streaming) and check it against the ledger",
		Long: `verify is the scrub: it unlocks the vault's private key in this process (the key
never reaches the daemon), decrypts every vault object the ledger refers to
(each dataset's current object and the earlier copies of re-pulled files) as a
stream without writing plaintext anywhere, and checks its size, SHA-256 and
record count against the ledger. It names every object that fails and reports
objects no dataset refers to.

While the daemon is unsealed (custodian vault unseal), the scrub runs inside
it with the key it holds, and the daemon records the outcome as its own
finding (vault.scrubbed); no passphrase is asked.

Otherwise, with a daemon running, the outcome is recorded on the ledger as a report by
you (the daemon cannot decrypt, so it records who reported what): the number
of objects checked, the failed object IDs, and the digest of what was checked
(SHA-256 over the sorted lines "OBJECT_ID SHA256"). The daemon refuses, and
records the refusal of, a report whose count, object IDs or digest do not
match the ledger. Exit status 1 on any failure or refusal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if done, err := daemonScrub(ctx, g, cl); done {
				return err
			}
			plan, err := scrubPlan(ctx, cl)
			daemonUp := err == nil
			if errors.Is(err, daemon.ErrNotRunning) {
				// No daemon checked the installation at its start: do it here.
				if err := daemon.CheckInstallation(cfg); err != nil {
					return err
				}
				plan, err = readPlanDirect(cfg)
			}
			if err != nil {
				return err
			}
			pass, err := readPassphrase(passFile, "Vault passphrase: ", false, g.stderr)
			if err != nil {
				return err
			}
			rep, err := scrub(ctx, cfg, pass, plan, g.stdout)
			if err != nil {
				return err
			}
			if daemonUp {
				idx, err := cl.RecordScrub(ctx, rep)
				if err != nil {
					return fmt.Errorf("recording the result on the ledger: %w", err)
				}
				fmt.Fprintf(g.stdout, "Recorded on the ledger (entry %d) as your report\n", idx)
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
	c.AddCommand(verify, newUnsealCmd(g), newSealCmd(g), newVaultRotateCmd(g))
	return c
}

// scrubPlan asks the daemon for the objects to check, with what the ledger
// says each holds.
func scrubPlan(ctx context.Context, cl *daemon.Client) (transfer.ScrubPlan, error) {
	p, err := cl.ScrubPlan(ctx)
	if err != nil {
		return transfer.ScrubPlan{}, err
	}
	return p.Transfer(), nil
}

// readPlanDirect reads the scrub plan from the ledger file when no daemon
// runs.
func readPlanDirect(cfg *configs.Config) (transfer.ScrubPlan, error) {
	l, err := audit.Open(cfg.LedgerPath(), audit.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return transfer.ScrubPlan{}, err
	}
	defer l.Close()
	size, err := l.Size()
	if err != nil {
		return transfer.ScrubPlan{}, err
	}
	return transfer.PlanScrub(l, size)
}

// scrub checks every object of the plan and reports to w.
func scrub(ctx context.Context, cfg *configs.Config, pass []byte, plan transfer.ScrubPlan, w io.Writer) (service.ScrubReport, error) {
	rep := service.ScrubReport{LedgerSize: plan.LedgerSize, Failed: map[string]string{}}
	v, err := vault.Open(cfg.VaultDir())
	if err != nil {
		return rep, err
	}
	ident, err := v.Unlock(pass)
	if err != nil {
		return rep, err
	}
	referenced := map[string]bool{}
	var checked []transfer.ScrubItem
	for i, it := range plan.Items {
		referenced[it.ObjectID] = true
		d := it.Dataset
		what := d.ID
		if d.ObjectID != it.ObjectID || d.ObjectID == "" {
			what += " (no state on the ledger)"
		}
		err := v.CheckObject(ctx, ident, d)
		if ctx.Err() != nil {
			return rep, ctx.Err() // interrupted: nothing to report
		}
		checked = append(checked, it)
		rep.Checked++
		if err != nil {
			rep.Failed[it.ObjectID] = err.Error()
			fmt.Fprintf(w, "FAIL  %s  %s\n", what, err)
			continue
		}
		fmt.Fprintf(w, "ok    %s  %s  %d/%d  %s  %d records\n", what, it.ObjectID, i+1, len(plan.Items), humanBytes(d.Size), d.Records)
	}
	rep.CheckedDigest = transfer.ScrubDigest(checked)
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
		fmt.Fprintf(w, "WARN  object %s is referenced by no dataset (as of ledger entry %d; removed on the daemon's next start if still unreferenced)\n", id, plan.LedgerSize)
	}
	for _, id := range plan.Destroyed {
		fmt.Fprintf(w, "destroyed  %s  (its objects were erased by an approved destruction; see custodian dataset show %s)\n", id, id)
	}
	fmt.Fprintf(w, "Vault verify: %d object(s) checked, %d failed, %d unreferenced, %d dataset(s) destroyed\n", rep.Checked, len(rep.Failed), len(orphans), len(plan.Destroyed))
	return rep, nil
}
