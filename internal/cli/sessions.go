package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// newSessionCmd is `custodian session list|revoke`: a person's own live
// sessions (the CLI's, the console's, a metrics scraper's), and ending one
// left open elsewhere. The console's "my account" page shows the same.
func newSessionCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "session",
		Short: "List and end your own sessions",
		Long: `session lists the logged-in person's live sessions (command line and web
console alike) and ends one by its ID, for example a console session left
open on another computer. Only your own sessions are shown and ended; an
admin ends another person's sessions by locking, disabling or changing the
account. The daemon keeps sessions in memory: a restart ends them all.`,
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List your live sessions, newest first (* marks this one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			ss, err := cl.Sessions(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, ss)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tVIA\tFROM\tSTARTED\tLAST USED\tIDLE ENDS\tENDS\t")
			for _, s := range ss {
				from := s.Remote
				if from == "" {
					from = s.HostUser
				}
				mark := ""
				if s.Current {
					mark = "*"
				}
				if s.Restricted != "" {
					mark += " (" + s.Restricted + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Via, from, localTime(&s.Created), localTime(&s.LastSeen),
					localTime(&s.IdleEnds), localTime(&s.Ends), mark)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "End one of your sessions by its ID (from session list)",
		Long: `revoke ends one of your own live sessions at once, by the ID that
'custodian session list' shows, and records session.revoked on the ledger.
Ending the session this command runs with is a logout.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			if err := cl.RevokeSession(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "session %s ended\n", args[0])
			return nil
		},
	}
	c.AddCommand(list, revoke)
	return c
}
