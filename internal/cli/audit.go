package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"custodian/audit"
	"custodian/daemon"
)

func newAuditCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "audit", Short: "Verify, export and read the custody ledger"}
	var (
		db, cpFile, vkey string
		asJSON           bool
		out              string
		from             int64
		limit            int
	)
	verify := &cobra.Command{
		Use:   "verify (--config FILE | --db FILE) [--checkpoint FILE] [--verifier-key KEY|FILE]",
		Short: "Recompute the whole ledger and name the first entry that does not match",
		Long: `verify recomputes every event's Merkle leaf, the tree, the signed checkpoint and
every dataset's state from the events, and names the first entry that does not
match. With --config it asks the running daemon (or, when none runs, opens the
ledger itself read-only). With --db it checks an exported copy offline.
--checkpoint FILE proves the ledger still contains everything that earlier
checkpoint covered (it only grew); --verifier-key gives the key the auditors
hold (default: the key recorded in the ledger itself). Exit status 1 on any
problem.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := audit.VerifyOptions{}
			if cpFile != "" {
				b, err := os.ReadFile(cpFile)
				if err != nil {
					return usageError{fmt.Errorf("--checkpoint: %w", err)}
				}
				opts.Checkpoint = b
			}
			if vkey != "" {
				k, err := readKeyArg(vkey)
				if err != nil {
					return err
				}
				opts.VerifierKey = k
			}
			var rep *audit.Report
			var err error
			switch {
			case db != "":
				rep, err = verifyFile(db, opts)
			case g.configPath != "":
				rep, err = g.verifyInstalled(cmd.Context(), opts)
			default:
				return usageError{errors.New("give --config FILE (the installation) or --db FILE (an exported copy)")}
			}
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(g.stdout, rep); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(g.stdout, rep.String())
			}
			if !rep.OK {
				return errFailed
			}
			return nil
		},
	}
	verify.Flags().StringVar(&db, "db", "", "verify this exported ledger file offline")
	verify.Flags().StringVar(&cpFile, "checkpoint", "", "a kept signed checkpoint the ledger must still contain")
	verify.Flags().StringVar(&vkey, "verifier-key", "", "the ledger's verifier key, or a file holding it")
	verify.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")

	export := &cobra.Command{
		Use:   "export --config FILE --out FILE",
		Short: "Write a consistent snapshot of the ledger, for offline verification and archiving",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{errors.New("--out FILE is required")}
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			n, err := exportTo(cmd.Context(), cl, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Exported the ledger (%s) to %s\nVerify it offline with: custodian audit verify --db %s\n", humanBytes(n), out, out)
			return nil
		},
	}
	export.Flags().StringVarP(&out, "out", "o", "", "file to write (created 0600; must not exist)")

	checkpoint := &cobra.Command{
		Use:   "checkpoint --config FILE",
		Short: "Print the latest signed checkpoint (keep it: it proves later that the log only grew)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			cp, vk, err := cl.Checkpoint(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprint(g.stdout, cp)
			fmt.Fprintf(g.stderr, "verifier key: %s\nKeep this checkpoint; later prove the ledger still contains it with:\n  custodian audit verify --db EXPORT --checkpoint CHECKPOINT_FILE --verifier-key KEY\n", vk)
			return nil
		},
	}

	logCmd := &cobra.Command{
		Use:   "log --config FILE [--from N] [--limit N] [--json]",
		Short: "Print ledger events",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			evs, err := cl.Log(cmd.Context(), from, limit)
			if err != nil {
				return err
			}
			g.warnLedger(cl)
			if asJSON {
				return writeJSON(g.stdout, evs)
			}
			printEvents(g.stdout, evs)
			return nil
		},
	}
	logCmd.Flags().Int64Var(&from, "from", 0, "first event index")
	logCmd.Flags().IntVar(&limit, "limit", 1000, "number of events (1 to 100000)")
	logCmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	c.AddCommand(verify, export, checkpoint, logCmd)
	return c
}

// readKeyArg accepts a note verifier key or a file holding one.
func readKeyArg(s string) (string, error) {
	if strings.Count(s, "+") >= 2 && !strings.ContainsAny(s, "/\\") {
		return s, nil
	}
	b, err := os.ReadFile(s)
	if err != nil {
		return "", usageError{fmt.Errorf("--verifier-key: %q is neither a key nor a readable file: %w", s, err)}
	}
	return strings.TrimSpace(string(b)), nil
}

func verifyFile(path string, opts audit.VerifyOptions) (*audit.Report, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, usageError{fmt.Errorf("--db: %w", err)}
	}
	l, err := audit.Open(path, audit.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return audit.Verify(l, opts)
}

// verifyInstalled asks the daemon, or opens the ledger read-only when no
// daemon runs.
func (g *globals) verifyInstalled(ctx context.Context, opts audit.VerifyOptions) (*audit.Report, error) {
	cfg, err := g.config()
	if err != nil {
		return nil, err
	}
	cl, err := g.client()
	if err != nil {
		return nil, err
	}
	rep, err := cl.Verify(ctx, opts)
	if errors.Is(err, daemon.ErrNotRunning) {
		fmt.Fprintln(g.stderr, "(no daemon running: verifying the ledger file directly)")
		return verifyFile(cfg.LedgerPath(), opts)
	}
	return rep, err
}

func exportTo(ctx context.Context, cl *daemon.Client, out string) (int64, error) {
	if _, err := os.Stat(out); err == nil {
		return 0, usageError{fmt.Errorf("--out: %s exists; choose a new file", out)}
	}
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	n, err := cl.Export(ctx, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	return n, os.Rename(f.Name(), out)
}
