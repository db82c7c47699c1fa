package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"custodian/daemon"
	"custodian/service"
)

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status --config FILE [--json]",
		Short: "Show the daemon's state: its ledger's last verification, uptime, each job's last and next run",
		Long: `status asks the running daemon for its state. The ledger line says whether the
ledger passed its last check (at start: the events since the last verified
checkpoint and every dataset record served; on the verify.every schedule: the
whole ledger), and whether it can be written. A ledger that failed verification
("DAMAGED") or cannot be written makes the daemon refuse all work; the reason
and what to do are shown. Exit status 1 in either case, with the reason on
stderr. It also shows the daemon's uptime and, for each job, its last run
(finished, success or failed), its last success and its next scheduled run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			st, err := cl.Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(g.stdout, st); err != nil {
					return err
				}
			} else {
				printStatus(g.stdout, st)
			}
			if st.Ledger.State != daemon.LedgerOK {
				fmt.Fprintln(g.stderr, "custodian:", st.Ledger.Problem)
				return errFailed
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printStatus(w io.Writer, st service.Status) {
	l := st.Ledger
	switch l.State {
	case daemon.LedgerDamaged:
		fmt.Fprintf(w, "Ledger:    DAMAGED: failed verification at %s; custodian accepts no work and writes nothing to the ledger\n", localTime(l.Since))
		if l.Incident != "" {
			fmt.Fprintf(w, "           report: %s\n", l.Incident)
		}
		fmt.Fprintln(w, "           next: custodian audit verify --config FILE (details); restore data_dir from a backup; restart serve")
	case daemon.LedgerUnwritable:
		fmt.Fprintf(w, "Ledger:    CANNOT BE WRITTEN since %s; custodian accepts no work until it can; %d event(s) waiting",
			localTime(l.Since), l.PendingEvents)
		if l.LostEvents > 0 {
			fmt.Fprintf(w, ", %d lost", l.LostEvents)
		}
		fmt.Fprintln(w)
	default:
		fmt.Fprintf(w, "Ledger:    OK, %d events", st.LedgerSize)
		if v := l.LastVerified; v != nil {
			when := v.Trigger
			switch {
			case when == "start":
				when = "at start"
			case when == "schedule":
				when = "on schedule"
			case strings.HasPrefix(when, "request by "):
				when = "requested by " + strings.TrimPrefix(when, "request by ")
			}
			fmt.Fprintf(w, "; last verified %s (%s, %s)", localTime(&v.Time), v.Mode, when)
		}
		if l.NextFullVerify != nil {
			fmt.Fprintf(w, "; next full verification %s", localTime(l.NextFullVerify))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Datasets:  %d\n", st.Datasets)
	if st.Vault != nil {
		fmt.Fprintln(w, vaultLine(st.Vault))
	}
	if d := st.Daemon; d != nil {
		fmt.Fprintf(w, "Daemon:    up %s (since %s)\n", time.Duration(d.UptimeSeconds)*time.Second, localTime(&d.StartedAt))
		fmt.Fprintf(w, "Requests:  %d waiting for approval; %d account(s) locked\n", d.PendingApprovals, d.AccountsLocked)
		if b := d.LastBackup; b != nil {
			fmt.Fprintf(w, "Backup:    last %s (%s) in %s\n", localTime(&b.Time), b.ID, b.Dir)
		} else {
			fmt.Fprintln(w, "Backup:    none yet (custodian backup --out DIR)")
		}
		fmt.Fprintln(w, "Jobs:")
		for _, j := range d.Jobs {
			last := "no run yet"
			if r := j.LastRun; r != nil {
				last = "last run " + localTime(&r.Finished) + " " + r.Outcome
			}
			next := "not scheduled"
			if j.NextRun != nil {
				next = "next " + localTime(j.NextRun)
			}
			fmt.Fprintf(w, "  %-20s %s; %s", j.Name, last, next)
			if j.LastSuccess != nil && (j.LastRun == nil || j.LastRun.Outcome != "success") {
				fmt.Fprintf(w, "; last success %s", localTime(j.LastSuccess))
			}
			if p := j.Paused; p != nil {
				fmt.Fprintf(w, "; PAUSED by %s since %s: %s", p.By, localTime(&p.At), p.Reason)
			}
			fmt.Fprintln(w)
			if j.OfficerProblem != "" {
				fmt.Fprintf(w, "  %-20s WARNING: officer %s: %s\n", "", j.Officer, j.OfficerProblem)
			}
		}
	} else {
		fmt.Fprintf(w, "Jobs:      %s\n", strings.Join(st.Jobs, ", "))
	}
	fmt.Fprintf(w, "Data dir:  %s\n", st.DataDir)
	fmt.Fprintf(w, "Caller:    %s\n", st.Caller.Name)
}

func localTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

// warnLedger repeats on stderr the daemon's notice that its ledger is not
// to be trusted or cannot be written, after commands that only read.
func (g *globals) warnLedger(cl *daemon.Client) {
	if w := cl.Warning(); w != "" {
		fmt.Fprintln(g.stderr, "WARNING:", w)
	}
}
