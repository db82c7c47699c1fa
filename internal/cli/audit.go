package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"custodian/audit"
	"custodian/daemon"
	"custodian/service"
)

func newAuditCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "audit", Short: "Verify, export and read the custody ledger"}
	var (
		db, cpFile, vkey string
		cosigned         []string
		cosignerKey      string
		asJSON           bool
		out              string
		from             int64
		limit            int
	)
	verify := &cobra.Command{
		Use:   "verify (--config FILE | --db FILE) [--checkpoint FILE] [--verifier-key KEY|FILE] [--cosigned FILE... --cosigner-key KEY|FILE]",
		Short: "Recompute the whole ledger and name the first entry that does not match",
		Long: `verify recomputes every event's Merkle leaf, the tree, the signed checkpoint and
every dataset's state from the events, and names the first entry that does not
match. With --config it asks the running daemon (or, when none runs, opens the
ledger itself read-only). With --db it checks an exported copy offline.
--checkpoint FILE proves the ledger still contains everything that earlier
checkpoint covered (it only grew); --verifier-key gives the key the auditors
hold (default: the key recorded in the ledger itself). --cosigned FILE (with
--cosigner-key) checks, for each checkpoint an auditor cosigned (custodian audit
cosign), both signatures and that the ledger still contains everything it
covered: a rewritten or truncated ledger fails. Exit status 1 on any problem.`,
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
			if len(cosigned) > 0 || cosignerKey != "" {
				return g.runVerifyCosigned(cmd, db, cosigned, cosignerKey, opts.VerifierKey)
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
	verify.Flags().StringArrayVar(&cosigned, "cosigned", nil, "a checkpoint cosigned by an auditor: the ledger must still contain everything it covered (repeatable)")
	verify.Flags().StringVar(&cosignerKey, "cosigner-key", "", "the auditor's verifier key (custodian audit keygen), or a file holding it; needed with --cosigned")

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

	var q service.EventQuery
	var since, until string
	var asCSV, newestFirst bool
	var before int64
	logCmd := &cobra.Command{
		Use:   "log --config FILE [--since T] [--until T] [--actor NAME] [--dataset ID] [--type PREFIX] [--purpose P] [--unit U] [--from N] [--newest-first [--before N]] [--limit N] [--json|--csv]",
		Short: "Print ledger events, filtered by time, person, dataset, event type, purpose and unit",
		Long: `log prints the ledger's events that match every filter given, in index order,
from index --from on, at most --limit of them. When more may follow, it prints
the command for the next page on stderr. --since and --until take RFC 3339 times
or local dates (YYYY-MM-DD; --until includes that whole day). --type matches a
prefix of the event type (dataset. for every dataset event). --purpose matches
the purpose in an event's details or dataset state; --unit the unit in its
details. --json prints the events as a JSON array, --csv as CSV.

--newest-first lists the newest events first, down to --from; its next page is
given with --before N (the events below index N).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON && asCSV {
				return usageError{errors.New("--json and --csv: choose one")}
			}
			var err error
			if q.Since, err = parseWhen("--since", since, false); err != nil {
				return err
			}
			if q.Until, err = parseWhen("--until", until, true); err != nil {
				return err
			}
			q.From, q.Limit = from, limit
			if before != 0 && !newestFirst {
				return usageError{errors.New("--before: only with --newest-first")}
			}
			q.Desc, q.Before = newestFirst, before
			cl, err := g.client()
			if err != nil {
				return err
			}
			page, err := cl.SearchEvents(cmd.Context(), q)
			if err != nil {
				return err
			}
			g.warnLedger(cl)
			switch {
			case asJSON:
				err = writeJSON(g.stdout, page.Events)
			case asCSV:
				err = printEventsCSV(g.stdout, page.Events)
			default:
				printEvents(g.stdout, page.Events)
			}
			if err != nil {
				return err
			}
			if page.Next != nil {
				args := []string{"custodian audit log", "--from", strconv.FormatInt(*page.Next, 10), "--limit", strconv.Itoa(limit)}
				if newestFirst {
					args = []string{"custodian audit log", "--before", strconv.FormatInt(*page.Next, 10), "--limit", strconv.Itoa(limit)}
				}
				cmd.Flags().Visit(func(f *pflag.Flag) {
					switch {
					case f.Name == "limit", f.Name == "from" && !newestFirst, f.Name == "before":
					case f.Value.Type() == "bool":
						args = append(args, "--"+f.Name)
					default:
						args = append(args, "--"+f.Name, shellQuote(f.Value.String()))
					}
				})
				fmt.Fprintf(g.stderr, "more events may follow (%d scanned); next page: %s\n", page.Scanned, strings.Join(args, " "))
			}
			return nil
		},
	}
	logCmd.Flags().Int64Var(&from, "from", 0, "first event index to look at")
	logCmd.Flags().IntVar(&limit, "limit", 1000, "at most this many events (1 to 100000)")
	logCmd.Flags().BoolVar(&newestFirst, "newest-first", false, "list the newest events first (down to --from)")
	logCmd.Flags().Int64Var(&before, "before", 0, "with --newest-first: only events below this index (the next page's start)")
	logCmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	logCmd.Flags().BoolVar(&asCSV, "csv", false, "print CSV")
	logCmd.Flags().StringVar(&since, "since", "", "only events at or after this time (RFC 3339 or YYYY-MM-DD)")
	logCmd.Flags().StringVar(&until, "until", "", "only events before this time (RFC 3339), or on or before this date (YYYY-MM-DD)")
	logCmd.Flags().StringVar(&q.Actor, "actor", "", "only events by this person (account name, or system:...)")
	logCmd.Flags().StringVar(&q.Dataset, "dataset", "", "only events of this dataset ID")
	logCmd.Flags().StringVar(&q.Type, "type", "", "only event types starting with this (e.g. dataset. or access.refused)")
	logCmd.Flags().StringVar(&q.Purpose, "purpose", "", "only events whose details or dataset name this purpose")
	logCmd.Flags().StringVar(&q.Unit, "unit", "", "only events whose details name this unit")

	c.AddCommand(verify, export, checkpoint, logCmd)
	c.AddCommand(newProveCmd(g), newConsistencyCmd(g), newCheckProofCmd(g), newCheckpointsCmd(g), newKeygenCmd(g), newCosignCmd(g))
	c.AddCommand(newArchiveCmd(g), newCheckArchiveCmd(g), newPruneCmd(g))
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

// shellQuote quotes a flag value for the next-page hint when needed.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// runVerifyCosigned is audit verify --cosigned: offline on --db, else
// through the daemon (or the ledger file when no daemon runs).
func (g *globals) runVerifyCosigned(cmd *cobra.Command, db string, files []string, cosignerKey, ledgerKey string) error {
	if len(files) == 0 || cosignerKey == "" {
		return usageError{errors.New("--cosigned FILE and --cosigner-key KEY go together")}
	}
	ck, err := readKeyArg(cosignerKey)
	if err != nil {
		return err
	}
	var verify func(audit.VerifyOptions) (*audit.Report, error)
	var keyOf func() (string, error)
	switch {
	case db != "":
		verify = func(o audit.VerifyOptions) (*audit.Report, error) { return verifyFile(db, o) }
		keyOf = func() (string, error) {
			l, err := openLedgerFile(db)
			if err != nil {
				return "", err
			}
			defer l.Close()
			return l.VerifierKey()
		}
	case g.configPath != "":
		verify = func(o audit.VerifyOptions) (*audit.Report, error) { return g.verifyInstalled(cmd.Context(), o) }
		keyOf = func() (string, error) {
			cfg, err := g.config()
			if err != nil {
				return "", err
			}
			cl, err := g.client()
			if err != nil {
				return "", err
			}
			_, vk, err := cl.Checkpoint(cmd.Context())
			if errors.Is(err, daemon.ErrNotRunning) {
				b, rerr := os.ReadFile(cfg.VerifierKeyPath())
				return strings.TrimSpace(string(b)), rerr
			}
			return vk, err
		}
	default:
		return usageError{errors.New("give --config FILE (the installation) or --db FILE (an exported copy)")}
	}
	fromLedger := ledgerKey == ""
	if fromLedger {
		if ledgerKey, err = keyOf(); err != nil {
			return err
		}
	}
	ok, err := g.verifyCosigned(files, ck, ledgerKey, fromLedger, verify)
	if err != nil {
		return err
	}
	if !ok {
		return errFailed
	}
	return nil
}
