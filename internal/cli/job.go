package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"custodian/service"
	"custodian/transfer"
)

func newJobCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "job", Short: "Run and list pull jobs"}
	var asJSON bool
	run := &cobra.Command{
		Use:   "run NAME --config FILE",
		Short: "Ask the running daemon to run a job now and report each file's outcome",
		Long: `run asks the daemon to run the job now (it fails if the job is already running),
shows progress on a terminal, and prints each file's outcome:
  verified     checksum and record count match what the provider declared
  quarantined  stored encrypted but NOT verified; the reason is shown
  held         a change file out of sequence; held for the officer
  unverified   stored under checksum: none (allow_unverified)
  failed       not stored (transfer fault after all retries, missing sidecar...)
  refused      a remote name that is not a plain file name
  waiting      not complete on the server yet (ready marker or settle time)
Exit status 1 if any file failed, was quarantined, held or refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			var prog func(transfer.Progress)
			if !asJSON && isTerminal(g.stderr) {
				prog = newProgressPrinter(g.stderr)
			}
			res, err := cl.Run(cmd.Context(), args[0], prog)
			if prog != nil {
				fmt.Fprint(g.stderr, "\r\033[K")
			}
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return err
				}
			} else {
				printRun(g.stdout, res)
			}
			if res.Failed() {
				return errFailed
			}
			return nil
		},
	}
	run.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	list := &cobra.Command{
		Use:   "list --config FILE",
		Short: "List configured jobs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKIND\tSOURCE\tSCHEDULE\tREMOTE\tPURPOSE")
			for _, j := range cfg.Jobs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s/%s\t%s\n", j.Name, j.Kind, j.Source, j.Schedule, j.RemoteDir, j.Pattern, j.Purpose)
			}
			return tw.Flush()
		},
	}
	c.AddCommand(run, list, newPauseCmd(g, true), newPauseCmd(g, false), newJobHistoryCmd(g))
	return c
}

// newProgressPrinter draws one status line, at most ten times a second.
func newProgressPrinter(w io.Writer) func(transfer.Progress) {
	var mu sync.Mutex
	var last time.Time
	return func(p transfer.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < 100*time.Millisecond && p.Done != p.Total {
			return
		}
		last = time.Now()
		pct := 100.0
		if p.Total > 0 {
			pct = float64(p.Done) * 100 / float64(p.Total)
		}
		fmt.Fprintf(w, "\r\033[K  %s  %s / %s  %3.0f%%", p.File, humanBytes(p.Done), humanBytes(p.Total), pct)
	}
}

func printRun(w io.Writer, r *transfer.RunResult) {
	fmt.Fprintf(w, "Job %s (by %s): %d file(s), %d already on the ledger, %s\n",
		r.Job, r.Actor, len(r.Files), r.Skipped, r.Finished.Sub(r.Started).Round(time.Millisecond))
	if r.Error != "" {
		fmt.Fprintf(w, "  run failed: %s\n", r.Error)
	}
	for _, f := range r.Files {
		fmt.Fprintf(w, "  %-11s  %-32s  %9s  %8d records  %s\n", strings.ToUpper(f.Outcome), f.Name, humanBytes(f.Size), f.Records, f.DatasetID)
		if f.Reason != "" {
			fmt.Fprintf(w, "  %-11s  reason: %s\n", "", f.Reason)
		}
		if f.Supersedes != "" {
			fmt.Fprintf(w, "  %-11s  re-sent with other bytes (%s): a new delivery superseding %s\n", "", f.Resent, f.Supersedes)
		}
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func newDatasetCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "dataset", Short: "List and show datasets (metadata only, never contents)"}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list --config FILE [--json]",
		Short: "List datasets: state, records, size, SHA-256, remote path, purpose, received time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			ds, err := cl.Datasets(cmd.Context())
			if err != nil {
				return err
			}
			g.warnLedger(cl)
			if asJSON {
				return writeJSON(g.stdout, ds)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tRECORDS\tSIZE\tRECEIVED\tJOB\tPURPOSE\tREMOTE\tSHA-256")
			for _, d := range ds {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.State, d.Records, humanBytes(d.Size),
					d.ReceivedAt.Local().Format("2006-01-02 15:04:05"), d.Job, d.Purpose, d.RemotePath, d.SHA256[:16]+"…")
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:   "show ID --config FILE [--json]",
		Short: "Show one dataset's metadata and custody timeline",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			d, err := cl.Dataset(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			g.warnLedger(cl)
			if asJSON {
				return writeJSON(g.stdout, d)
			}
			printDataset(g.stdout, d.Dataset)
			fmt.Fprintln(g.stdout, "Custody timeline:")
			printEvents(g.stdout, d.Timeline)
			return nil
		},
	}
	for _, s := range []*cobra.Command{list, show} {
		s.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	}
	var reason string
	release := &cobra.Command{
		Use:   "release ID --reason TEXT --config FILE",
		Short: "Accept a held or quarantined dataset, with a reason recorded on the ledger",
		Long: `release accepts a dataset the daemon set aside. A held change file (complete,
but out of sequence) becomes verified. A quarantined file becomes released:
accepted by you, with your reason on the ledger, but never called verified.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			d, err := cl.Release(cmd.Context(), args[0], reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s is now %s\n", d.ID, d.State)
			return nil
		},
	}
	repull := &cobra.Command{
		Use:   "repull ID --reason TEXT --config FILE",
		Short: "Pull a quarantined dataset's file again and verify it anew",
		Long: `repull fetches the remote file of a quarantined dataset again, in the same
single verified pass, and records the new receipt as the dataset's new state.
The earlier copy stays encrypted in the vault until destroyed with approval.
Exit status 1 if the new copy fails verification too.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			o, err := cl.Repull(cmd.Context(), args[0], reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s: %s", o.DatasetID, strings.ToUpper(o.Outcome))
			if o.Reason != "" {
				fmt.Fprintf(g.stdout, " (%s)", o.Reason)
			}
			fmt.Fprintln(g.stdout)
			if o.Failed() {
				return errFailed
			}
			return nil
		},
	}
	for _, s := range []*cobra.Command{release, repull} {
		s.Flags().StringVar(&reason, "reason", "", "why (required; recorded on the ledger)")
	}
	c.AddCommand(list, show, release, repull, newTimelineCmd(g), newDatasetReadCmd(g), newDatasetRequestCmd(g), newExpiringCmd(g))
	return c
}

func printDataset(w io.Writer, d service.DatasetView) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("ID", d.ID)
	row("State", d.State)
	if d.Reason != "" {
		row("Reason", d.Reason)
	}
	row("Job / kind", d.Job+" / "+d.Kind)
	row("Purpose", d.Purpose)
	row("Custodian", d.Custodian)
	row("Remote", d.Source+":"+d.RemotePath)
	row("Size", fmt.Sprintf("%d bytes (server reported %d)", d.Size, d.RemoteSize))
	row("SHA-256", d.SHA256)
	declared := "none"
	if d.DeclaredRecords >= 0 {
		declared = fmt.Sprint(d.DeclaredRecords)
	}
	row("Records", fmt.Sprintf("%d counted, %s declared", d.Records, declared))
	row("Received", d.ReceivedAt.Local().Format(time.RFC3339))
	row("Vault object", d.ObjectID)
	tw.Flush()
}

func printEvents(w io.Writer, evs []service.EventView) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range evs {
		var det []string
		for k, v := range e.Details {
			det = append(det, k+"="+v)
		}
		slices.Sort(det)
		target := e.Job
		if e.DatasetID != "" {
			target = e.DatasetID
		}
		fmt.Fprintf(tw, "  #%d\t%s\t%s\t%s\t%s\t%s\n", e.Index, e.Time.Local().Format("2006-01-02 15:04:05"), e.Actor, e.Type, target, strings.Join(det, " "))
	}
	tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newPauseCmd makes job pause (with a reason) and job resume.
func newPauseCmd(g *globals, pause bool) *cobra.Command {
	var reason string
	var asJSON bool
	c := &cobra.Command{
		Use:   "pause NAME --reason R",
		Short: "Stop a job's runs, scheduled and manual, until it is resumed",
		Long: `pause stops every run of the job, scheduled or manual, until custodian job
resume NAME. The pause, the person and the reason are on the ledger (job.paused);
status shows it. Officers and supervisors may pause.`,
		Args: cobra.ExactArgs(1),
	}
	if !pause {
		c.Use, c.Short = "resume NAME [--reason R]", "Let a paused job run again"
		c.Long = "resume lets a paused job run again on its schedule and on demand; recorded as job.resumed (with the reason, if given)."
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if pause && strings.TrimSpace(reason) == "" {
			return usageError{errors.New("--reason is required: say why the job is paused")}
		}
		cl, err := g.client()
		if err != nil {
			return err
		}
		var p service.Pause
		if pause {
			p, err = cl.PauseJob(cmd.Context(), args[0], reason)
		} else {
			p, err = cl.ResumeJob(cmd.Context(), args[0], reason)
		}
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(g.stdout, p)
		}
		if pause {
			fmt.Fprintf(g.stdout, "%s is paused (by %s: %s); resume with custodian job resume %s\n", args[0], p.By, p.Reason, args[0])
		} else {
			fmt.Fprintf(g.stdout, "%s runs again\n", args[0])
		}
		return nil
	}
	c.Flags().StringVar(&reason, "reason", "", "why (at least 8 characters; on the ledger)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
