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
		Short: "Show the daemon's state: whether its ledger verified and can be written, jobs, counts",
		Long: `status asks the running daemon for its state. The ledger line says whether the
ledger passed its last check (at start: the events since the last verified
checkpoint and every dataset record served; on the verify.every schedule: the
whole ledger), and whether it can be written. A ledger that failed verification
("DAMAGED") or cannot be written makes the daemon refuse all work; the reason
and what to do are shown. Exit status 1 in either case, with the reason on
stderr.`,
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
	fmt.Fprintf(w, "Jobs:      %s\n", strings.Join(st.Jobs, ", "))
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
