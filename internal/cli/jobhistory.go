package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"custodian/service"
)

// newJobHistoryCmd makes job history: a job's configuration history from
// the ledger's job.configured events, each version with its diff.
func newJobHistoryCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "history NAME [--json]",
		Short: "Show a job's configuration history, each version with its differences",
		Long: `history lists the versions of a job's settings, newest first, as the daemon
recorded them on the ledger (job.configured) when it started or reloaded its
configuration and the settings differed from the last recorded ones: when, by
whom, the change (added, changed, removed), the occasion (start, reload), the
ledger event and the lines removed (-) and added (+) against the version before,
with two unchanged lines around each. --json prints every version whole, with
its settings and full diff. Officers and contractors of the job's unit,
supervisors and auditors may read it.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			hs, err := cl.JobHistory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				if hs == nil {
					hs = []service.JobChange{}
				}
				return printJSON(g.stdout, hs)
			}
			printJobHistory(g.stdout, args[0], hs)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// diffContext is how many unchanged lines are shown around a change.
const diffContext = 2

func printJobHistory(w io.Writer, job string, hs []service.JobChange) {
	if len(hs) == 0 {
		fmt.Fprintf(w, "%s: no settings recorded yet\n", job)
		return
	}
	fmt.Fprintf(w, "%s: %d version(s), newest first\n", job, len(hs))
	for _, h := range hs {
		fmt.Fprintf(w, "\n#%d  %s  %s  by %s", h.Index, h.Time.Local().Format("2006-01-02 15:04:05"), h.Change, h.Actor)
		if h.Trigger != "" {
			fmt.Fprintf(w, "  on %s", h.Trigger)
		}
		fmt.Fprintln(w)
		if h.SHA256 != "" {
			fmt.Fprintf(w, "    sha256 %s\n", h.SHA256)
		}
		printDiff(w, h.Diff)
	}
}

// printDiff writes the removed and added lines with diffContext kept
// lines around them (service.TrimDiff); "..." stands for kept lines left
// out. A diff with nothing but kept lines (no change) prints nothing.
func printDiff(w io.Writer, d []service.DiffLine) {
	for _, l := range service.TrimDiff(d, diffContext) {
		if l.Op == service.DiffGap {
			fmt.Fprintln(w, "    ...")
			continue
		}
		fmt.Fprintf(w, "  %s %s\n", l.Op, l.Text)
	}
}
