// Package cli is custodian's command line: one file per command group, each a
// thin layer that parses flags and calls the daemon's API (or, for init, demo
// and offline audit verification, the packages directly).
//
// Output for people goes to stdout as short tables and sentences; --json gives
// the same data for scripts. Every prompt has a flag or environment
// alternative, so every command runs non-interactively. Exit status: 0 success,
// 1 a verification or job failure, 2 bad usage or configuration.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"syscall"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"custodian/configs"
	"custodian/daemon"
	"custodian/service"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // verification or job failure
	exitUsage   = 2 // bad flags or configuration
)

// errFailed marks a command that ran but found a failure; its details were
// already printed.
var errFailed = errors.New("failed")

// usageError marks bad input (exit 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// Execute runs the command line and returns the exit status.
func Execute() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(os.Stdout, os.Stderr)
	err := root.ExecuteContext(ctx)
	code := exitCode(err)
	if err != nil && !errors.Is(err, errFailed) {
		fmt.Fprintln(os.Stderr, "custodian:", err)
	}
	return code
}

// exitCode is the exit status of a command's outcome: 0 success, 1 a
// refusal or failure (the rule or failure on stderr), 2 bad usage.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errFailed):
		return exitFailure
	case errors.As(err, new(usageError)), errors.Is(err, configs.ErrInvalid), errors.Is(err, configs.ErrParse),
		errors.Is(err, service.ErrInvalid): // the daemon names the field and the fix
		return exitUsage
	default:
		return exitFailure
	}
}

type globals struct {
	configPath string
	server     string // the daemon's HTTPS URL; "" for the socket
	caFile     string // certificates trusted for server
	stdout     io.Writer
	stderr     io.Writer
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "custodian",
		Short: "Receive household-registry files over SFTP, prove them complete, keep them encrypted under a custody ledger",
		Long: `custodian pulls registry extracts and change files from SFTP sources on a schedule,
proves each file arrived whole (checksums, record counts, sequence numbers),
stores it encrypted, and records every receipt and action on a tamper-evident
custody ledger that auditors can verify offline.

Start with:  custodian demo        (everything in one process, on synthetic data)
Then:        custodian init, custodian serve, custodian job run NAME`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&g.configPath, "config", "c", os.Getenv("CUSTODIAN_CONFIG"),
		"configuration file (env CUSTODIAN_CONFIG)")
	root.PersistentFlags().StringVar(&g.server, "server", os.Getenv("CUSTODIAN_SERVER"),
		"the daemon's HTTPS address, https://HOST:PORT, instead of its local socket (env CUSTODIAN_SERVER)")
	root.PersistentFlags().StringVar(&g.caFile, "ca-file", os.Getenv("CUSTODIAN_CA_FILE"),
		"PEM certificate(s) to trust for --server, e.g. a self-signed one (env CUSTODIAN_CA_FILE)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\nrun `%s --help` for usage", err, c.CommandPath())}
	})
	root.AddCommand(
		newInitCmd(g), newServeCmd(g), newStatusCmd(g), newJobCmd(g), newDatasetCmd(g),
		newAuditCmd(g), newVaultCmd(g), newConfigCmd(g), newDemoCmd(g),
		newLoginCmd(g), newLogoutCmd(g), newWhoamiCmd(g), newPasswdCmd(g), newSessionCmd(g), newAccountCmd(g),
		newRequestCmd(g), newDecideCmd(g, true), newDecideCmd(g, false), newCertCmd(g),
		newBackupCmd(g), newRestoreCmd(g), newDoctorCmd(g),
		newReviewCmd(g), newAccessCmd(g), newTrainingCmd(g),
		newExportCmd(g), newHandoverCmd(g),
		newDestroyCmd(g),
	)
	return root
}

func (g *globals) config() (*configs.Config, error) {
	if g.configPath == "" {
		return nil, usageError{errors.New("--config is required (or set CUSTODIAN_CONFIG); see configs/custodian.example.yaml")}
	}
	return configs.Load(g.configPath)
}

func newLogger(w io.Writer, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

// readPassphrase reads a passphrase from a file ("-" is stdin), else from the
// file named by CUSTODIAN_PASSPHRASE_FILE, else prompts on the terminal.
// A passphrase file that group or others can read is refused.
func readPassphrase(file, prompt string, confirm bool, stderr io.Writer) ([]byte, error) {
	what := "--passphrase-file"
	if file == "" {
		file = os.Getenv("CUSTODIAN_PASSPHRASE_FILE")
		what = "CUSTODIAN_PASSPHRASE_FILE"
	}
	if file != "" {
		var b []byte
		var err error
		if file == "-" {
			b, err = io.ReadAll(io.LimitReader(os.Stdin, 4096))
		} else {
			if err := daemon.CheckSecretFile(what, file); err != nil {
				return nil, err
			}
			b, err = os.ReadFile(file)
		}
		if err != nil {
			return nil, fmt.Errorf("reading passphrase: %w", err)
		}
		return []byte(strings.TrimRight(string(b), "\r\n")), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, usageError{errors.New("no passphrase: use --passphrase-file FILE (or - for stdin) or set CUSTODIAN_PASSPHRASE_FILE")}
	}
	fmt.Fprint(stderr, prompt)
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return nil, err
	}
	if confirm {
		fmt.Fprint(stderr, "Repeat: ")
		q, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		if string(p) != string(q) {
			return nil, usageError{errors.New("the passphrases differ")}
		}
	}
	return p, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// currentUser names the local account running the command.
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return fmt.Sprintf("uid:%d", os.Getuid())
}
