package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"custodian/accounts"
	"custodian/daemon"
	"custodian/service"
)

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newLoginCmd(g *globals) *cobra.Command {
	var user, pwFile, newFile, code string
	c := &cobra.Command{
		Use:   "login [--user U] [--password-file F] [--new-password-file N] [--totp CODE]",
		Short: "Log in and keep a session for the other commands",
		Long: `login authenticates one person and keeps the session token in
$XDG_CONFIG_HOME/custodian/session (mode 0600), or in the file named by
CUSTODIAN_SESSION_FILE. Every other command acts through it.

With an issued password (a new account) or an expired one, login succeeds only
together with a new password (--new-password-file, or the prompt), set in the
same step. Accounts whose roles require a second factor give --totp CODE; one
not yet enrolled gets a session limited to enrolling it.

A session ends after the idle and absolute limits (accounts.session), at
logout, and when the password, roles or state of the account change. Five
wrong passwords in a row (accounts.lockout) lock the account until an approved
unlock request. The session's ID is printed on the last line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.anonClient()
			if err != nil {
				return err
			}
			if user == "" {
				if !isTerminal(os.Stdin) {
					return usageError{errors.New("--user is required")}
				}
				fmt.Fprint(g.stderr, "Username: ")
				line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
				user = strings.TrimSpace(line)
			}
			pw, err := readSecret(pwFile, "--password-file", "Password: ", false, g.stderr)
			if err != nil {
				return err
			}
			req := service.LoginRequest{Username: user, Password: pw, TOTP: code}
			if newFile != "" {
				if req.NewPassword, err = readSecret(newFile, "--new-password-file", "", false, g.stderr); err != nil {
					return err
				}
			}
			res, err := cl.Login(cmd.Context(), req)
			if errors.Is(err, service.ErrPasswordChange) && newFile == "" && isTerminal(os.Stdin) {
				fmt.Fprintln(g.stderr, err)
				if req.NewPassword, err = readSecret("", "--new-password-file", "New password: ", true, g.stderr); err != nil {
					return err
				}
				res, err = cl.Login(cmd.Context(), req)
			}
			if err != nil {
				return err
			}
			path, err := saveSession(savedSession{Token: res.Token, Username: res.Account.Username, Server: g.server})
			if err != nil {
				return fmt.Errorf("logged in, but the session cannot be saved: %w", err)
			}
			if res.PasswordChanged {
				fmt.Fprintln(g.stdout, "Password changed.")
			}
			fmt.Fprintf(g.stdout, "Logged in as %s (%s), roles %s; the session ends after %s idle or at %s.\n",
				res.Account.Username, res.Account.FullName, roleList(res.Account.Roles), res.Idle, res.Expires.Local().Format("2006-01-02 15:04"))
			if res.Restricted != "" {
				fmt.Fprintf(g.stdout, "This session is limited: %s.\n", res.Restricted)
			}
			fmt.Fprintf(g.stdout, "Session saved in %s\n%s\n", path, res.Session)
			return nil
		},
	}
	c.Flags().StringVar(&user, "user", "", "username")
	c.Flags().StringVar(&pwFile, "password-file", "", "file holding the password (- for stdin; mode 0600); else a prompt")
	c.Flags().StringVar(&newFile, "new-password-file", "", "file holding a new password, to replace an issued or expired one at this login")
	c.Flags().StringVar(&code, "totp", "", "the one-time code from your authenticator app")
	return c
}

func roleList(rs []accounts.Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}

func newLogoutCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "End the saved session",
		Long:  "logout ends the session on the daemon and removes the session file.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			err = cl.Logout(cmd.Context())
			if rerr := removeSession(); rerr != nil && err == nil {
				err = rerr
			}
			if errors.Is(err, service.ErrUnauthenticated) {
				fmt.Fprintln(g.stdout, "No session was open.")
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "Logged out.")
			return nil
		},
	}
}

func newWhoamiCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "whoami [--json]",
		Short: "Show the account and session the commands act as",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			me, err := cl.Whoami(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, me)
			}
			a := me.Account
			fmt.Fprintf(g.stdout, "%s (%s), employee %s, unit %s\nroles: %s\nsession: %s via %s", a.Username, a.FullName, a.EmployeeID, a.Unit, roleList(a.Roles), me.Session, me.Via)
			if me.HostUser != "" {
				fmt.Fprintf(g.stdout, " (host account %s)", me.HostUser)
			}
			fmt.Fprintln(g.stdout)
			if me.Restricted != "" {
				fmt.Fprintf(g.stdout, "limited: %s\n", me.Restricted)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newPasswdCmd(g *globals) *cobra.Command {
	var oldFile, newFile string
	c := &cobra.Command{
		Use:   "passwd [--password-file OLD] [--new-password-file NEW]",
		Short: "Change your password",
		Long: `passwd changes the logged-in person's password after checking the current
one. The new password must meet the policy (accounts.password: at least 12
characters with upper and lower case and a digit, none of the last 5, not a
common password, not containing the username or name); the message names the
rule that failed. Every session of the account ends: log in again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			old, err := readSecret(oldFile, "--password-file", "Current password: ", false, g.stderr)
			if err != nil {
				return err
			}
			pw, err := readSecret(newFile, "--new-password-file", "New password: ", true, g.stderr)
			if err != nil {
				return err
			}
			if err := cl.ChangePassword(cmd.Context(), old, pw); err != nil {
				return err
			}
			_ = removeSession()
			fmt.Fprintln(g.stdout, "Password changed; every session of your account has ended. Log in again with `custodian login`.")
			return nil
		},
	}
	c.Flags().StringVar(&oldFile, "password-file", "", "file holding the current password (- for stdin; mode 0600)")
	c.Flags().StringVar(&newFile, "new-password-file", "", "file holding the new password (mode 0600)")
	return c
}

func newAccountCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "account",
		Short: "Accounts: list, show, request changes, second factor, recovery",
		Long: `Every person has one account: a username (never reused), full name, employee
id, unit and roles (officer, supervisor, auditor, admin, director,
contractor). After the first day (custodian init --admin --supervisor), every
change follows clause 五(九): a request, a supervisor's approval, and an
admin's execution (custodian request execute).`,
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List every account",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			l, err := cl.Accounts(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, l)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USERNAME\tNAME\tEMPLOYEE\tUNIT\tROLES\tSTATE\tTOTP\tLAST LOGIN")
			for _, a := range l {
				last := "never"
				if !a.LastLogin.IsZero() {
					last = a.LastLogin.Local().Format("2006-01-02 15:04")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%t\t%s\n", a.Username, a.FullName, a.EmployeeID, a.Unit, roleList(a.Roles), a.State, a.TOTP, last)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var showJSON bool
	show := &cobra.Command{
		Use:   "show USERNAME [--json]",
		Short: "Show one account",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			a, err := cl.Account(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if showJSON {
				return printJSON(g.stdout, a)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
			row("username", a.Username)
			row("name", a.FullName)
			row("employee id", a.EmployeeID)
			row("unit", a.Unit)
			row("roles", roleList(a.Roles))
			row("state", a.State)
			if a.Contractor != nil {
				row("agreement", fmt.Sprintf("%s, ends %s", a.Contractor.Reference, a.Contractor.Ends.Format(time.DateOnly)))
			}
			row("created", a.Created.Local().Format(time.RFC3339))
			row("password set", a.PasswordSetAt.Local().Format(time.RFC3339))
			row("second factor", fmt.Sprint(a.TOTP))
			row("failed logins", fmt.Sprint(a.FailedLogins))
			return tw.Flush()
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")
	c.AddCommand(list, show, newAccountRequestCmd(g), newTOTPCmd(g), newRecoverCmd(g))
	return c
}

func newAccountRequestCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "request",
		Short: "File a request to create, change, disable or unlock an account",
		Long: `Each subcommand files a request (clause 五(九)). A supervisor approves it
(custodian approve ID --reason R), then an admin carries it out (custodian
request execute ID). The request's ID is printed on the last line.`,
	}
	type fields struct {
		user, name, employee, unit, roles, agreement, ends, reason string
		asJSON                                                     bool
	}
	mk := func(kind accounts.Kind, use, short string, spec bool) *cobra.Command {
		var f fields
		sc := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if f.user == "" {
					return usageError{errors.New("--user is required")}
				}
				req := service.AccountRequest{Kind: kind, Username: f.user, Reason: f.reason}
				if spec {
					s := &accounts.AccountSpec{FullName: f.name, EmployeeID: f.employee, Unit: f.unit}
					if f.roles != "" {
						for _, r := range strings.Split(f.roles, ",") {
							s.Roles = append(s.Roles, accounts.Role(strings.TrimSpace(r)))
						}
					}
					if f.agreement != "" || f.ends != "" {
						t, err := time.ParseInLocation(time.DateOnly, f.ends, time.Local)
						if err != nil || f.agreement == "" {
							return usageError{errors.New("--agreement REF and --agreement-ends YYYY-MM-DD go together (a contractor's confidentiality agreement)")}
						}
						s.Contractor = &accounts.Agreement{Reference: f.agreement, Ends: t.UTC()}
					}
					req.Account = s
				}
				cl, err := g.client()
				if err != nil {
					return err
				}
				q, err := cl.FileAccountRequest(cmd.Context(), req)
				if err != nil {
					return err
				}
				if f.asJSON {
					return printJSON(g.stdout, struct {
						ID string `json:"id"`
						service.RequestView
					}{q.ID, q})
				}
				fmt.Fprintf(g.stdout, "Filed %s request for %s; it expires %s.\nNext: a supervisor approves (custodian approve %s --reason R), then an admin runs custodian request execute %s\n%s\n",
					q.Kind, q.Subject, q.Expires.Local().Format("2006-01-02 15:04"), q.ID, q.ID, q.ID)
				return nil
			},
		}
		sc.Flags().StringVar(&f.user, "user", "", "the account's username (3 to 64 lower-case letters, digits, '.', '_', '-')")
		sc.Flags().StringVar(&f.reason, "reason", "", "why (at least 8 characters; on the ledger)")
		sc.Flags().BoolVar(&f.asJSON, "json", false, "print the request as JSON, with \"id\"")
		if spec {
			sc.Flags().StringVar(&f.name, "name", "", "the person's full name")
			sc.Flags().StringVar(&f.employee, "employee-id", "", "the person's employee id")
			sc.Flags().StringVar(&f.unit, "unit", "", "the person's unit (default: the installation's)")
			sc.Flags().StringVar(&f.roles, "roles", "", "comma-separated roles: officer, supervisor, auditor, admin, director, contractor")
			sc.Flags().StringVar(&f.agreement, "agreement", "", "a contractor's confidentiality agreement reference")
			sc.Flags().StringVar(&f.ends, "agreement-ends", "", "the agreement's end date, YYYY-MM-DD (the account is disabled on it)")
		}
		return sc
	}
	c.AddCommand(
		mk(accounts.KindAccountCreate, "create --user U --name NAME --employee-id E --unit UNIT --roles r1,r2 --reason R", "Request a new account", true),
		mk(accounts.KindAccountChange, "change --user U [--roles ...] [--name ...] [--unit ...] --reason R", "Request a change of roles, name, unit or agreement", true),
		mk(accounts.KindAccountDisable, "disable --user U --reason R", "Request that an account be disabled (its username is never reused)", false),
		mk(accounts.KindUnlock, "unlock --user U --reason R", "Request that a locked account be unlocked", false),
	)
	return c
}

func newTOTPCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "totp", Short: "Enrol a second factor (one-time codes, RFC 6238)"}
	var asJSON bool
	enroll := &cobra.Command{
		Use:   "enroll [--json]",
		Short: "Start enrolment: print a new secret and its otpauth:// URI",
		Long: `enroll creates a new one-time-code secret for your account and prints it with
its otpauth:// URI, to put in an authenticator app. It takes effect once
confirmed with the app's first code: custodian account totp confirm CODE.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			e, err := cl.EnrollTOTP(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, e)
			}
			fmt.Fprintf(g.stdout, "Secret: %s\nURI:    %s\nPut it in your authenticator app, then: custodian account totp confirm CODE\n", e.Secret, e.URI)
			return nil
		},
	}
	enroll.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	confirm := &cobra.Command{
		Use:   "confirm CODE",
		Short: "Finish enrolment with the app's first code",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			if err := cl.ConfirmTOTP(cmd.Context(), args[0]); err != nil {
				return err
			}
			_ = removeSession()
			fmt.Fprintln(g.stdout, "Second factor enrolled; your sessions have ended. Log in again with --totp CODE.")
			return nil
		},
	}
	c.AddCommand(enroll, confirm)
	return c
}

func newRequestCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "request",
		Short: "Requests (four eyes): list, show, cancel, execute",
		Long: `Every sensitive action is a request that another person approves: account
changes and unlocks (approved by a supervisor, carried out by an admin), and
the lifecycle's destruction, export, hand-over and emergency use. The
requester can never approve. A request expires after 7 days and executes once;
each step is a ledger event.`,
	}
	var asJSON, pending bool
	var kind string
	list := &cobra.Command{
		Use:   "list [--pending] [--kind KIND] [--json]",
		Short: "List requests, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if kind != "" && !slices.Contains(accounts.Kinds, accounts.Kind(kind)) {
				var names []string
				for _, k := range accounts.Kinds {
					names = append(names, string(k))
				}
				return usageError{fmt.Errorf("--kind %q: not a kind of request; use one of %s", kind, strings.Join(names, ", "))}
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			l, err := cl.Requests(cmd.Context(), pending)
			if err != nil {
				return err
			}
			if kind != "" {
				l = slices.DeleteFunc(l, func(q service.RequestView) bool { return string(q.Kind) != kind })
			}
			if l == nil {
				l = []service.RequestView{}
			}
			if asJSON {
				return printJSON(g.stdout, l)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tSUBJECT\tSTATE\tREQUESTER\tFILED\tEXPIRES\tREASON")
			for _, q := range l {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", q.ID, q.Kind, q.Subject, q.State, q.Requester,
					q.Created.Local().Format("2006-01-02 15:04"), q.Expires.Local().Format("2006-01-02 15:04"), q.Reason)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&pending, "pending", false, "only requests still waiting for approval or execution")
	list.Flags().StringVar(&kind, "kind", "", "only requests of this kind (account-create, destruction, export, handover, …)")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var showJSON bool
	show := &cobra.Command{
		Use:   "show ID [--json]",
		Short: "Show one request and each step taken on it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			q, err := cl.Request(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if showJSON {
				return printJSON(g.stdout, q)
			}
			printRequest(g.stdout, q)
			return nil
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")
	cancel := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel your own request",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			q, err := cl.CancelRequest(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s is %s\n", q.ID, q.State)
			return nil
		},
	}
	var issuedFile string
	var execJSON bool
	execute := &cobra.Command{
		Use:   "execute ID [--issued-password-file F]",
		Short: "Carry out an approved account request (an admin)",
		Long: `execute carries out an approved account request: creates, changes, disables
or unlocks the account, in one ledger transaction with the request's
execution. The admin who executes cannot be one who approved it. Creating an
account issues a one-time password, written as "USER PASSWORD" to
--issued-password-file (a new 0600 file) or printed; the person must change
it at the first login. The account's username is printed on the last line.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if issuedFile != "" {
				if _, err := os.Lstat(issuedFile); err == nil {
					return usageError{fmt.Errorf("--issued-password-file: %s exists; choose a new file", issuedFile)}
				}
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			x, err := cl.ExecuteRequest(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if x.Issued != nil && issuedFile != "" {
				if err := writeIssued(issuedFile, []string{x.Issued.Username + " " + x.Issued.Password}); err != nil {
					return fmt.Errorf("the account was created, but the issued password could not be written (%v): file an unlock-free reset by a new account-change request, or use `custodian account recover`", err)
				}
			}
			if execJSON {
				out := struct {
					ID string `json:"id"`
					service.Executed
				}{x.Account.Username, x}
				if issuedFile != "" {
					out.Issued = nil
				}
				return printJSON(g.stdout, out)
			}
			fmt.Fprintf(g.stdout, "Executed %s %s: %s is %s, roles %s\n", x.Request.Kind, x.Request.ID, x.Account.Username, x.Account.State, roleList(x.Account.Roles))
			if x.Issued != nil {
				if issuedFile != "" {
					fmt.Fprintf(g.stdout, "Issued password written to %s; hand it over in person. It must be changed at the first login.\n", issuedFile)
				} else {
					fmt.Fprintf(g.stdout, "Issued password (shown once; it must be changed at the first login): %s\n", x.Issued.Password)
				}
			}
			fmt.Fprintln(g.stdout, x.Account.Username)
			return nil
		},
	}
	execute.Flags().StringVar(&issuedFile, "issued-password-file", "", "write the issued password of a created account to this new 0600 file instead of printing it")
	execute.Flags().BoolVar(&execJSON, "json", false, "print JSON, with \"id\" (the username)")
	c.AddCommand(list, show, cancel, execute)
	return c
}

func printRequest(w io.Writer, q service.RequestView) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("request", q.ID)
	row("kind", string(q.Kind))
	row("subject", q.Subject)
	row("state", q.State)
	row("reason", q.Reason)
	row("requester", q.Requester)
	row("filed", q.Created.Local().Format(time.RFC3339))
	row("expires", q.Expires.Local().Format(time.RFC3339))
	if a := q.Account; a != nil {
		if a.FullName != "" {
			row("name", a.FullName)
		}
		if a.EmployeeID != "" {
			row("employee id", a.EmployeeID)
		}
		if a.Unit != "" {
			row("unit", a.Unit)
		}
		if len(a.Roles) > 0 {
			row("roles", roleList(a.Roles))
		}
		if a.Contractor != nil {
			row("agreement", a.Contractor.Reference+", ends "+a.Contractor.Ends.Format(time.DateOnly))
		}
	}
	for _, d := range q.Approvals {
		row("approved", fmt.Sprintf("%s by %s (%s): %s", d.At.Local().Format(time.RFC3339), d.By, d.Role, d.Reason))
	}
	if d := q.Rejection; d != nil {
		row("rejected", fmt.Sprintf("%s by %s: %s", d.At.Local().Format(time.RFC3339), d.By, d.Reason))
	}
	if d := q.Cancelled; d != nil {
		row("cancelled", fmt.Sprintf("%s by %s", d.At.Local().Format(time.RFC3339), d.By))
	}
	if d := q.Executed; d != nil {
		row("executed", fmt.Sprintf("%s by %s", d.At.Local().Format(time.RFC3339), d.By))
	}
	tw.Flush()
}

// newDecideCmd makes approve or reject.
func newDecideCmd(g *globals, approve bool) *cobra.Command {
	verb, short := "approve", "Approve a request (a supervisor; a director for emergency use)"
	if !approve {
		verb, short = "reject", "Reject a request, with the reason"
	}
	var reason string
	var asJSON bool
	c := &cobra.Command{
		Use:   verb + " ID --reason R",
		Short: short,
		Long: short + `. The requester can never decide their own request, nor
anyone their own account's. The decision and its reason go on the ledger.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			var q service.RequestView
			if approve {
				q, err = cl.Approve(cmd.Context(), args[0], reason)
			} else {
				q, err = cl.Reject(cmd.Context(), args[0], reason)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, q)
			}
			fmt.Fprintf(g.stdout, "%s (%s for %s) is %s\n", q.ID, q.Kind, q.Subject, q.State)
			return nil
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why (at least 8 characters; on the ledger)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the request as JSON")
	return c
}

func newRecoverCmd(g *globals) *cobra.Command {
	var user, passFile, issuedFile string
	c := &cobra.Command{
		Use:   "recover --user U [--passphrase-file P] [--issued-password-file F]",
		Short: "Reopen an admin or supervisor when all of them are locked (root, daemon stopped)",
		Long: `recover is the way back when every admin or every supervisor is locked or
disabled, so that no unlock request can be approved and carried out. It needs
root on the host, the daemon stopped, and the vault passphrase. It reopens the
named account (which must hold the missing role) with a new issued password,
to be changed at the first login, and records account.recovered on the ledger
with the host account that ran it. Use it only in that situation: in any other
it is refused. The username is printed on the last line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user == "" {
				return usageError{errors.New("--user is required")}
			}
			if issuedFile != "" {
				if _, err := os.Lstat(issuedFile); err == nil {
					return usageError{fmt.Errorf("--issued-password-file: %s exists; choose a new file", issuedFile)}
				}
			}
			cfg, err := g.config()
			if err != nil {
				return err
			}
			pass, err := readPassphrase(passFile, "Vault passphrase: ", false, g.stderr)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "WARNING: recovering account %s outside the four-eyes procedure; this is recorded on the ledger with host account %s.\n", user, currentUser())
			iss, err := daemon.RecoverAccount(cfg, pass, currentUser(), user)
			if err != nil {
				return err
			}
			if issuedFile != "" {
				if err := writeIssued(issuedFile, []string{iss.Username + " " + iss.Password}); err != nil {
					return fmt.Errorf("recovered, but the issued password could not be written (%v); run recover again", err)
				}
				fmt.Fprintf(g.stdout, "Recovered %s; issued password written to %s (change it at the first login)\n", iss.Username, issuedFile)
			} else {
				fmt.Fprintf(g.stdout, "Recovered %s; issued password (shown once, change it at the first login): %s\n", iss.Username, iss.Password)
			}
			fmt.Fprintln(g.stdout, iss.Username)
			return nil
		},
	}
	c.Flags().StringVar(&user, "user", "", "the admin or supervisor account to reopen")
	c.Flags().StringVar(&passFile, "passphrase-file", "", "file holding the vault passphrase (- for stdin; env CUSTODIAN_PASSPHRASE_FILE)")
	c.Flags().StringVar(&issuedFile, "issued-password-file", "", "write the issued password to this new 0600 file instead of printing it")
	return c
}
