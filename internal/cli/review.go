package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"custodian/proof"
	"custodian/service"
)

// The sampling review (clause 六), co-signed access records (五(一)),
// training (四(四)) and the ledger's retention (三(五)): archives and
// prune requests.

func parseIndexArg(name, s string) (int64, error) {
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil || i < 0 {
		return 0, usageError{fmt.Errorf("%s: %q is not a ledger index (0 or more)", name, s)}
	}
	return i, nil
}

func printReview(w io.Writer, v service.Review) {
	fmt.Fprintf(w, "review %s (%s): period %s, %s to %s (UTC+8)\n", v.ID, v.State(), v.Period,
		v.From.In(service.ReportZone).Format(time.DateOnly), v.Until.In(service.ReportZone).Format(time.DateOnly))
	fmt.Fprintf(w, "method %s, rate %s, at least %d per person, seed %s\n", v.Method, v.Rate, v.MinPerPerson, v.Seed)
	fmt.Fprintf(w, "population %d access records of %d people among ledger events 0 to %d; sample %d (SHA-256 of indexes %s)\n",
		v.Population, v.Persons, v.LedgerSize-1, len(v.Sample), v.SampleSHA256)
	fmt.Fprintf(w, "started by %s at %s (event %d)", v.Started.By, v.Started.At.Format(time.RFC3339), v.Started.Event)
	if v.Closed != nil {
		fmt.Fprintf(w, "; closed by %s at %s (event %d)", v.Closed.By, v.Closed.At.Format(time.RFC3339), v.Closed.Event)
	}
	fmt.Fprintln(w)
	if len(v.Sample) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INDEX\tTIME\tPERSON\tTYPE\tDATASET\tPURPOSE\tCASE\tFINDING\tINVESTIGATION")
	for _, s := range v.Sample {
		finding, inv := "-", ""
		if f := s.Finding; f != nil {
			finding = f.Verdict + ": " + f.Note
			if i := f.Investigation; i != nil {
				inv = "open"
				if i.Closed != nil {
					inv = "closed: " + i.Outcome
				}
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Index, s.Time.In(service.ReportZone).Format("2006-01-02 15:04"),
			s.Person, s.Type, s.Dataset, s.Purpose, s.Case, finding, inv)
	}
	tw.Flush()
}

func newReviewCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "review", Short: "The sampling review of access records (clause 六): sample, findings, investigations, report"}

	var st service.ReviewStart
	var startJSON bool
	start := &cobra.Command{
		Use:   "start --period 2026|2026H1|2026-03 [--rate 1%] [--min-per-person 1] [--seed S] [--json]",
		Short: "Draw a reproducible random sample of each person's access records in a period",
		Long: `start draws, for each person, a random sample of their access records
(dataset.read and dataset.exported events) in the period: a year (2026), a half
(2026H1, 2026H2) or a month (2026-03), in Taiwan time. Each person's records are
ordered by SHA-256(seed ‖ ledger index) and the first max(ceil(rate × n),
min(min-per-person, n)) are drawn (method custodian-sample/v1,
docs/auditing.md). The seed is random unless given, and printed: the same
period and seed always redraw the same sample from the ledger. The review and
its sample are recorded (review.started). Defaults come from the review: block
(1%, at least 1 per person, the last complete year). Auditors only. The
review's ID is the last line printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			v, err := cl.StartReview(cmd.Context(), st)
			if err != nil {
				return err
			}
			if startJSON {
				return printJSON(g.stdout, v)
			}
			fmt.Fprintf(g.stdout, "sampled %d of %d access records (%d people) in %s with seed %s\n", len(v.Sample), v.Population, v.Persons, v.Period, v.Seed)
			fmt.Fprintf(g.stdout, "list them with: custodian review show %s\n%s\n", v.ID, v.ID)
			return nil
		},
	}
	start.Flags().StringVar(&st.Period, "period", "", "the period: 2026, 2026H1, 2026H2 or 2026-03 (default: the last complete one of review.period)")
	start.Flags().StringVar(&st.Rate, "rate", "", "the share of each person's records drawn, e.g. 1% (default: review.rate)")
	start.Flags().IntVar(&st.MinPerPerson, "min-per-person", 0, "at least this many records per person (default: review.min_per_person)")
	start.Flags().StringVar(&st.Seed, "seed", "", "the seed (default: random, printed)")
	start.Flags().BoolVar(&startJSON, "json", false, "print JSON")

	var listJSON bool
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the reviews",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			vs, err := cl.Reviews(cmd.Context())
			if err != nil {
				return err
			}
			if listJSON {
				return printJSON(g.stdout, vs)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPERIOD\tSTATE\tPOPULATION\tRATE\tSEED\tSTARTED BY")
			for _, v := range vs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", v.ID, v.Period, v.State(), v.Population, v.Rate, v.Seed, v.Started.By)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")

	var showJSON bool
	show := &cobra.Command{
		Use:   "show ID [--json]",
		Short: "Show a review: its scope, method, seed and the sampled records with their ledger indexes and findings",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			v, err := cl.ShowReview(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if showJSON {
				return printJSON(g.stdout, v)
			}
			printReview(g.stdout, v)
			return nil
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")

	var justified, anomaly, findingJSON bool
	var note string
	finding := &cobra.Command{
		Use:   "finding ID RECORD_INDEX --justified|--anomaly --note TEXT [--json]",
		Short: "Record the finding on one sampled record; an anomaly opens an investigation",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			idx, err := parseIndexArg("RECORD_INDEX", args[1])
			if err != nil {
				return err
			}
			if justified == anomaly {
				return usageError{errors.New("give exactly one of --justified and --anomaly")}
			}
			verdict := service.VerdictJustified
			if anomaly {
				verdict = service.VerdictAnomaly
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			v, err := cl.RecordFinding(cmd.Context(), args[0], service.ReviewStep{Record: idx, Verdict: verdict, Note: note})
			if err != nil {
				return err
			}
			id := fmt.Sprintf("%s/%d", v.ID, idx)
			if findingJSON {
				return printJSON(g.stdout, map[string]any{"id": id, "review": v.ID, "record": idx, "verdict": verdict})
			}
			if anomaly {
				fmt.Fprintf(g.stdout, "anomaly recorded; an investigation is open until: custodian review investigation close %s %d --outcome TEXT\n", v.ID, idx)
			} else {
				fmt.Fprintln(g.stdout, "finding recorded")
			}
			fmt.Fprintln(g.stdout, id)
			return nil
		},
	}
	finding.Flags().BoolVar(&justified, "justified", false, "the access was justified")
	finding.Flags().BoolVar(&anomaly, "anomaly", false, "the access is an anomaly (opens an investigation)")
	finding.Flags().StringVar(&note, "note", "", "what was checked and found (required)")
	finding.Flags().BoolVar(&findingJSON, "json", false, "print JSON")

	investigation := &cobra.Command{Use: "investigation", Short: "Investigations opened by anomalies"}
	var outcome string
	var invJSON bool
	invClose := &cobra.Command{
		Use:   "close ID RECORD_INDEX --outcome TEXT [--json]",
		Short: "Close the investigation of an anomaly with its outcome",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			idx, err := parseIndexArg("RECORD_INDEX", args[1])
			if err != nil {
				return err
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			v, err := cl.CloseInvestigation(cmd.Context(), args[0], service.ReviewStep{Record: idx, Note: outcome})
			if err != nil {
				return err
			}
			if invJSON {
				return printJSON(g.stdout, v)
			}
			fmt.Fprintf(g.stdout, "investigation of record %d closed; %d still open in %s\n", idx, len(v.OpenInvestigations()), v.ID)
			return nil
		},
	}
	invClose.Flags().StringVar(&outcome, "outcome", "", "what the investigation found and did (required)")
	invClose.Flags().BoolVar(&invJSON, "json", false, "print JSON")
	investigation.AddCommand(invClose)

	var closeJSON bool
	closeCmd := &cobra.Command{
		Use:   "close ID [--json]",
		Short: "Close a review; refused while a sampled record has no finding or an investigation is open",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			v, err := cl.CloseReview(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if closeJSON {
				return printJSON(g.stdout, v)
			}
			fmt.Fprintf(g.stdout, "review %s closed by %s\nwrite its report with: custodian review report %s --format html --out FILE\n", v.ID, v.Closed.By, v.ID)
			return nil
		},
	}
	closeCmd.Flags().BoolVar(&closeJSON, "json", false, "print JSON")

	var format, lang, out string
	report := &cobra.Command{
		Use:   "report ID --format html|csv [--lang zh-TW|en] --out FILE",
		Short: "Write a review's report for the head of agency (HTML for A4 printing, or CSV)",
		Long: `report writes the review's report: scope, method and seed, the sample,
findings, investigations and signatures. Traditional Chinese with Republic of
China dates is the default (--lang en for English). HTML prints on A4 and has
no external resources; CSV is the sample with its findings, one row per record.
The file's path is the last line printed (- writes to stdout).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{errors.New("--out FILE is required (- for stdout)")}
			}
			if format != service.FormatHTML && format != service.FormatCSV {
				return usageError{fmt.Errorf("--format: %q; use html or csv", format)}
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			b, err := cl.ReviewReport(cmd.Context(), args[0], format, lang)
			if err != nil {
				return err
			}
			if err := g.writeOut(out, b, 0o644); err != nil {
				return err
			}
			if out != "-" {
				fmt.Fprintf(g.stdout, "wrote the report of %s\n%s\n", args[0], out)
			}
			return nil
		},
	}
	report.Flags().StringVar(&format, "format", "html", "html or csv")
	report.Flags().StringVar(&lang, "lang", service.LangZhTW, "zh-TW or en")
	report.Flags().StringVar(&out, "out", "", "the file to write (- for stdout)")

	c.AddCommand(start, list, show, finding, investigation, closeCmd, report)
	return c
}

func newAccessCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "access", Short: "Access records (the query record sheet of 五(一)) and their co-signatures"}
	var q service.AccessQuery
	var cosignJSON bool
	cosign := &cobra.Command{
		Use:   "cosign --period P [--user U] [--json]",
		Short: "Co-sign the period's access records that have no co-signature yet (supervisors)",
		Long: `cosign co-signs, as the supervisor logged in, every access record of the period
(of --user only, if given) that has no co-signature yet, except the
supervisor's own, which another supervisor co-signs. The set is recorded as one
access.cosigned event with the count and a SHA-256 of the ledger indexes. The
event's index is the last line printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			out, err := cl.CosignAccess(cmd.Context(), q)
			if err != nil {
				return err
			}
			if cosignJSON {
				return printJSON(g.stdout, map[string]any{"id": strconv.FormatInt(out.Event, 10), "cosigned": out})
			}
			fmt.Fprintf(g.stdout, "co-signed %d access records (indexes SHA-256 %s)", out.Count, out.IndexesSHA256)
			if out.SkippedOwn > 0 {
				fmt.Fprintf(g.stdout, "; %d of your own are left for another supervisor", out.SkippedOwn)
			}
			fmt.Fprintf(g.stdout, "\n%d\n", out.Event)
			return nil
		},
	}
	cosign.Flags().StringVar(&q.Period, "period", "", "the period: 2026, 2026H1 or 2026-03 (required)")
	cosign.Flags().StringVar(&q.User, "user", "", "only this person's records")
	cosign.Flags().BoolVar(&cosignJSON, "json", false, "print JSON")

	var lq service.AccessQuery
	var listJSON bool
	list := &cobra.Command{
		Use:   "list --period P [--user U] [--uncosigned] [--json]",
		Short: "List the period's access records with their co-signatures",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			recs, err := cl.AccessRecords(cmd.Context(), lq)
			if err != nil {
				return err
			}
			if listJSON {
				return printJSON(g.stdout, recs)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "INDEX\tTIME\tPERSON\tTYPE\tDATASET\tPURPOSE\tCASE\tCO-SIGNED BY")
			for _, r := range recs {
				by := "-"
				if r.Cosigned != nil {
					by = r.Cosigned.By
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Index, r.Time.In(service.ReportZone).Format("2006-01-02 15:04"), r.Person, r.Type, r.Dataset, r.Purpose, r.Case, by)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&lq.Period, "period", "", "the period: 2026, 2026H1 or 2026-03 (required)")
	list.Flags().StringVar(&lq.User, "user", "", "only this person's records")
	list.Flags().BoolVar(&lq.Uncosigned, "uncosigned", false, "only records without a co-signature")
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	c.AddCommand(cosign, list)
	return c
}

func newTrainingCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "training", Short: "Training hours of designated staff (clause 四(四))"}
	var req service.TrainingRecord
	var recJSON bool
	record := &cobra.Command{
		Use:   "record --user U --hours H --date YYYY-MM-DD --course C [--certificate-sha256 X] [--json]",
		Short: "Record hours of training a person attended (supervisors and admins)",
		Long: `record records training a person attended: hours (up to two decimals), the date,
the course and, optionally, the SHA-256 of the certificate file. It is recorded
on the ledger (training.recorded). The record's ID is the last line printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			t, err := cl.RecordTraining(cmd.Context(), req)
			if err != nil {
				return err
			}
			if recJSON {
				return printJSON(g.stdout, t)
			}
			fmt.Fprintf(g.stdout, "recorded %s hour(s) of %q for %s on %s\n%s\n", t.Hours, t.Course, t.Username, t.Date, t.ID)
			return nil
		},
	}
	record.Flags().StringVar(&req.Username, "user", "", "the person (username)")
	record.Flags().StringVar(&req.Hours, "hours", "", "hours attended, e.g. 3 or 1.5")
	record.Flags().StringVar(&req.Date, "date", "", "the date attended, YYYY-MM-DD")
	record.Flags().StringVar(&req.Course, "course", "", "the course")
	record.Flags().StringVar(&req.CertificateSHA256, "certificate-sha256", "", "SHA-256 (hex) of the certificate file")
	record.Flags().BoolVar(&recJSON, "json", false, "print JSON")

	var year int
	var repJSON bool
	report := &cobra.Command{
		Use:   "report --year Y [--json]",
		Short: "List designated staff (officers, contractors, supervisors) with fewer than 3 hours of training in a year",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if year == 0 {
				return usageError{errors.New("--year is required, e.g. --year 2026")}
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			l, err := cl.TrainingReport(cmd.Context(), year)
			if err != nil {
				return err
			}
			if repJSON {
				return printJSON(g.stdout, l)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USERNAME\tNAME\tROLES\tHOURS\tMISSING")
			for _, x := range l {
				roles := make([]string, len(x.Roles))
				for i, r := range x.Roles {
					roles[i] = string(r)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.Username, x.FullName, strings.Join(roles, ","), x.Hours, x.Missing)
			}
			return tw.Flush()
		},
	}
	report.Flags().IntVar(&year, "year", 0, "the year, e.g. 2026")
	report.Flags().BoolVar(&repJSON, "json", false, "print JSON")
	c.AddCommand(record, report)
	return c
}

// parseDate reads YYYY-MM-DD as the start of that day in Taiwan time.
func parseDate(flag, s string) (time.Time, error) {
	t, err := time.ParseInLocation(time.DateOnly, s, service.ReportZone)
	if err != nil {
		return time.Time{}, usageError{fmt.Errorf("%s: %q is not a date; use YYYY-MM-DD", flag, s)}
	}
	return t, nil
}

func newArchiveCmd(g *globals) *cobra.Command {
	var before, out string
	var asJSON bool
	c := &cobra.Command{
		Use:   "archive --before DATE --out FILE [--json]",
		Short: "Export the ledger's events before DATE as a self-contained archive with proofs",
		Long: `archive writes every event before DATE (YYYY-MM-DD, Taiwan time; the segment
ends at the first event dated at or after it) as a custodian-ledger-archive/v1
file: the exact leaf bytes with an RFC 6962 consistency proof from their tree
to the ledger's current signed checkpoint. Check it offline with custodian
audit check-archive FILE --verifier-key KEY. The archive is recorded
(ledger.archived, with its SHA-256), which a prune request must name. The
file's path is the last line printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{errors.New("--out FILE is required")}
			}
			b, err := parseDate("--before", before)
			if err != nil {
				return err
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			a, err := cl.ArchiveLedger(cmd.Context(), b)
			if err != nil {
				return err
			}
			if err := g.writeOut(out, a.Archive, 0o644); err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, map[string]any{"id": out, "count": a.Count, "sha256": a.SHA256, "checkpoint_size": a.CheckpointSize, "event": a.Event})
			}
			fmt.Fprintf(g.stdout, "archived events 0 to %d against the checkpoint of size %d; SHA-256 %s\n%s\n", a.Count-1, a.CheckpointSize, a.SHA256, out)
			return nil
		},
	}
	c.Flags().StringVar(&before, "before", "", "archive the events before this date (YYYY-MM-DD)")
	c.Flags().StringVar(&out, "out", "", "the archive file to write")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newCheckArchiveCmd(g *globals) *cobra.Command {
	var vkey string
	var cosigners []string
	var asJSON bool
	c := &cobra.Command{
		Use:   "check-archive FILE [--verifier-key KEY|FILE] [--cosigner-key KEY|FILE]... [--json]",
		Short: "Check a ledger archive offline (no daemon, no ledger)",
		Long: `check-archive verifies an archive written by custodian audit archive, offline:
the checkpoint's signature, the RFC 6962 consistency proof from the archived
events' own tree to the signed tree, and that each leaf is the event of its
index dated before the archive's date. Any changed byte fails (exit 1). Give
--verifier-key with the ledger key you hold.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readArgFile("FILE", args[0])
			if err != nil {
				return err
			}
			opts, err := checkOptions(vkey, cosigners)
			if err != nil {
				return err
			}
			r, err := proof.CheckArchive(data, opts)
			if err != nil {
				return g.checkFailed("archive", asJSON, err)
			}
			if asJSON {
				return writeJSON(g.stdout, map[string]any{"ok": true, "count": r.Count, "before": r.Before, "tree_size": r.Tree.N,
					"key_trusted": r.KeyTrusted, "verifier_key": r.VerifierKey, "cosigners": r.Cosigners})
			}
			fmt.Fprint(g.stdout, r.String())
			return nil
		},
	}
	c.Flags().StringVar(&vkey, "verifier-key", "", "the ledger's verifier key as you hold it (or a file holding it)")
	c.Flags().StringArrayVar(&cosigners, "cosigner-key", nil, "a cosigner's verifier key (or file), repeatable")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newPruneCmd(g *globals) *cobra.Command {
	var before, sum, reason string
	var asJSON bool
	c := &cobra.Command{
		Use:   "prune --before DATE --archive-sha256 X --reason TEXT [--json]",
		Short: "Ask for the ledger's events before DATE to be pruned (a request two supervisors approve)",
		Long: `prune files a prune request for the ledger's events before DATE. Nothing on the
ledger may be removed before five years: a DATE less than five years ago is
refused, and the refusal recorded; so is a segment no recorded archive (custodian
audit archive, named by its SHA-256) holds. Two supervisors approve the
request. Carrying it out (removing the event bodies) is not implemented yet;
see docs/auditing.md, "Retention". The request's ID is the last line printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := parseDate("--before", before)
			if err != nil {
				return err
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			q, err := cl.FilePruneRequest(cmd.Context(), service.PruneRequest{Before: b, ArchiveSHA256: sum, Reason: reason})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, q)
			}
			fmt.Fprintf(g.stdout, "filed prune request %s; it needs %d supervisors' approval\n%s\n", q.ID, q.Approvers, q.ID)
			return nil
		},
	}
	c.Flags().StringVar(&before, "before", "", "prune the events before this date (YYYY-MM-DD)")
	c.Flags().StringVar(&sum, "archive-sha256", "", "SHA-256 of the archive holding them (printed by custodian audit archive)")
	c.Flags().StringVar(&reason, "reason", "", "why")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
