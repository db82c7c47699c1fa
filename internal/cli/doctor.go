package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"custodian/internal/doctor"
)

func newDoctorCmd(g *globals) *cobra.Command {
	var asJSON, reach bool
	c := &cobra.Command{
		Use:   "doctor --config FILE [--json] [--reach]",
		Short: "Check the host: permissions, accounts, disk encryption, space, clock, verification, backups, sources",
		Long: `doctor checks the host custodian runs on and says, for each finding, how to fix
it. Run it as the service account. Each finding is ok, warn or fail:
  permissions          data_dir, its parents, the keys, the source keys and the
                       configuration file (the checks serve applies)
  service account      the owner of data_dir and its login shell
  dedicated host       other accounts with a login shell (/etc/passwd)
  disk encryption      whether data_dir is on dm-crypt (reported)
  free space           with the days left at the last 30 days' ingest rate
  clock                time synchronisation (timedatectl, systemd-timesyncd)
  ledger verification  the age of data_dir/verified.checkpoint
  backup               the age of the last backup (data_dir/last-backup.json)
  job officers         each job's officer is an active officer or contractor
                       account of the unit (asked of the running daemon)
  source NAME          the host key is pinned in known_hosts; with --reach, its
                       SSH server answers (doctor dials only the configured
                       source addresses)
It works with the daemon running or stopped and never opens the ledger for
writing; what needs the ledger while the daemon holds it comes from the
daemon's API. Exit status 1 on any failure.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			fs := doctor.Run(cmd.Context(), doctor.Options{Config: cfg, Reach: reach, Datasets: cl.Datasets, Status: cl.Status})
			if asJSON {
				if err := writeJSON(g.stdout, fs); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
				for _, f := range fs {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Severity, f.Check, f.Message)
					if f.Fix != "" && f.Severity != doctor.OK {
						fmt.Fprintf(tw, "\t\tfix: %s\n", f.Fix)
					}
				}
				tw.Flush()
			}
			if doctor.Failed(fs) {
				return errFailed
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the findings as JSON")
	c.Flags().BoolVar(&reach, "reach", false, "also connect to each source's address to see that its SSH server answers")
	return c
}
