package cli

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"custodian/accounts"
	"custodian/configs"
	"custodian/daemon"
	"custodian/service"
)

func newInitCmd(g *globals) *cobra.Command {
	var passFile, admin, supervisor, issuedFile string
	c := &cobra.Command{
		Use:   "init --config FILE [--passphrase-file FILE] --admin USER --supervisor USER [--issued-passwords FILE]",
		Short: "Create data_dir, the ledger, the vault master key and the ledger signing key",
		Long: `init creates a new installation under the configuration's data_dir:
  ledger.db          the custody ledger (bbolt)
  vault/master.pub   the vault's public key: ingest needs only this
  vault/master.key.age  the vault's private key, encrypted with your passphrase
  keys/ledger.sign   the key that signs ledger checkpoints (keep the host secure)
  keys/ledger.vkey   its verifier key: give a copy to the auditors
It refuses to overwrite an existing installation. The passphrase is read from
--passphrase-file (- for stdin), CUSTODIAN_PASSPHRASE_FILE, or a prompt.

It also creates the first two accounts: the first admin (--admin) and the first
supervisor (--supervisor), two different people, each with an issued password
that must be changed at the first login (custodian login --new-password-file).
The passwords are written as "USER PASSWORD" lines to --issued-passwords FILE
(a new 0600 file) or printed once. The ledger records this bootstrap by the host
account that ran init; every later account comes through an approved request.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			if admin == "" || supervisor == "" {
				return usageError{errors.New("--admin USER and --supervisor USER are required: the first admin and the first supervisor, two people")}
			}
			if admin == supervisor {
				return usageError{errors.New("--admin and --supervisor name the same person; the first day needs two (four eyes)")}
			}
			if issuedFile != "" {
				if _, err := os.Lstat(issuedFile); err == nil {
					return usageError{fmt.Errorf("--issued-passwords: %s exists; choose a new file", issuedFile)}
				}
			}
			pass, err := readPassphrase(passFile, "Vault passphrase: ", true, g.stderr)
			if err != nil {
				return err
			}
			issued, err := daemon.Init(cfg, daemon.InitOptions{Passphrase: pass, Actor: currentUser(), Accounts: []service.BootstrapAccount{
				{Username: admin, Unit: cfg.Unit, Roles: []accounts.Role{accounts.RoleAdmin}},
				{Username: supervisor, Unit: cfg.Unit, Roles: []accounts.Role{accounts.RoleSupervisor}},
			}})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Initialized custodian in %s\n", cfg.DataDir)
			fmt.Fprintf(g.stdout, "  ledger:        %s\n  vault:         %s\n  verifier key:  %s (give a copy to the auditors)\n",
				cfg.LedgerPath(), cfg.VaultDir(), cfg.VerifierKeyPath())
			lines := make([]string, len(issued))
			for i, x := range issued {
				lines[i] = x.Username + " " + x.Password
			}
			if issuedFile != "" {
				if err := writeIssued(issuedFile, lines); err != nil {
					return fmt.Errorf("initialized, but the issued passwords could not be written (%v); use `custodian account recover`", err)
				}
				fmt.Fprintf(g.stdout, "  accounts:      %s (admin), %s (supervisor); issued passwords in %s\n", admin, supervisor, issuedFile)
			} else {
				fmt.Fprintf(g.stdout, "  accounts:      issued passwords (shown once; change them at the first login):\n")
				for _, l := range lines {
					fmt.Fprintf(g.stdout, "                 %s\n", l)
				}
			}
			fmt.Fprintf(g.stdout, "Next: custodian serve --config %s, then custodian login --user %s --new-password-file FILE\n", cfg.Path, admin)
			return nil
		},
	}
	c.Flags().StringVar(&passFile, "passphrase-file", "", "file holding the vault passphrase (- for stdin; env CUSTODIAN_PASSPHRASE_FILE)")
	c.Flags().StringVar(&admin, "admin", "", "username of the first admin")
	c.Flags().StringVar(&supervisor, "supervisor", "", "username of the first supervisor")
	c.Flags().StringVar(&issuedFile, "issued-passwords", "", "write the issued passwords, one \"USER PASSWORD\" line each, to this new 0600 file")
	return c
}

func newServeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the daemon: schedule, local API socket, crash recovery",
		Long: `serve owns the ledger, runs each job on its schedule (runs of one job never
overlap), and answers the other commands on a Unix socket in data_dir
(mode 0600). It recovers from an earlier crash on start and shuts down cleanly
on SIGTERM or SIGINT. SIGHUP re-reads the configuration file: jobs, sources and
schedules change for runs that start afterwards (data_dir cannot change). Logs
are JSON lines on stdout (journald keeps them under systemd), with the stable
field names listed in docs/operations.md; they never contain record contents,
passphrases or keys. Under systemd (Type=notify) it sends READY=1 once it
listens, WATCHDOG=1 at half of WatchdogSec, and STOPPING=1 when it stops.
With metrics.listen it serves Prometheus metrics on that loopback address.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			log := newLogger(g.stdout, cfg.LogLevel)
			if path := os.Getenv("CUSTODIAN_CPUPROFILE"); path != "" {
				// For performance work (docs/benchmarks.md): a CPU profile
				// of the daemon's whole life, written on a clean shutdown.
				// %p in the path is the process ID (one file per daemon).
				path = strings.ReplaceAll(path, "%p", strconv.Itoa(os.Getpid()))
				f, err := os.Create(path)
				if err != nil {
					return err
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
			d, err := daemon.Open(cfg, log)
			if err != nil {
				return err
			}
			defer d.Close()
			// SIGHUP reloads the configuration file.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer func() { signal.Stop(hup); close(hup) }()
			go func() {
				for range hup {
					_ = d.Reload() // logged and recorded on the ledger either way
				}
			}()
			return d.Serve(cmd.Context())
		},
	}
}

func newConfigCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Check or print configuration"}
	c.AddCommand(&cobra.Command{
		Use:   "check --config FILE",
		Short: "Validate a configuration file and report every problem with its path",
		Long: `check validates the configuration and reports every problem with its path
(exit status 2). It also refuses (exit status 1) a source's key_file or
key_passphrase_file that group or others can read or another account owns:
make them 0600 and owned by the service account.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			// Valid, but unsafe to use: a refusal (exit 1), not a usage error.
			if err := daemon.CheckSourceSecrets(cfg); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s: valid (%d source(s), %d job(s))\n", cfg.Path, len(cfg.Sources), len(cfg.Jobs))
			return nil
		},
	}, &cobra.Command{
		Use:   "example",
		Short: "Print the commented example configuration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := g.stdout.Write(configs.Example)
			return err
		},
	})
	return c
}
