package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"custodian/accounts"
	"custodian/audit"
	"custodian/configs"
	"custodian/daemon"
	"custodian/internal/sftpd"
	"custodian/internal/synth"
	"custodian/service"
	"custodian/vault"
)

type demoOptions struct {
	dir     string
	records int
	verbose bool
	// console leaves the installation running with the web console on
	// consoleAddr (a hidden flag, for tests) until Ctrl-C.
	console     bool
	consoleAddr string
}

func newDemoCmd(g *globals) *cobra.Command {
	var o demoOptions
	c := &cobra.Command{
		Use:   "demo [--dir DIR] [--records N]",
		Short: "Run the whole pull → verify → encrypt → ledger → verify path on synthetic data, in one process",
		Long: `demo needs nothing but this binary. It starts an SFTP server inside this process
on 127.0.0.1 serving synthetic registry files (fake people with valid-looking
IDs, a trailer count and a sha256 sidecar), initializes an installation, starts
the daemon, and then, explaining each step: pulls an extract and a series of
change files, quarantines a file whose record count is wrong, holds a change
file that skips a sequence number, refuses to pull anything twice, verifies the
ledger and every vault object, shows that the vault holds no plaintext, and
shows that a single flipped byte in a copy of the ledger is detected.
Everything stays under --dir (default: a temporary directory, removed at the end).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), g, o)
		},
	}
	c.Flags().StringVar(&o.dir, "dir", "", "keep the demo installation in this (new or empty) directory instead of a temporary one")
	c.Flags().IntVar(&o.records, "records", 50000, "records in the synthetic extract")
	c.Flags().BoolVar(&o.verbose, "verbose", false, "show the daemon's JSON log on stderr")
	c.Flags().BoolVar(&o.console, "console", false, "then leave the installation running with the web console on https://"+DefaultConsoleAddr+" (self-signed certificate, one account per role) until Ctrl-C")
	c.Flags().StringVar(&o.consoleAddr, "console-addr", DefaultConsoleAddr, "the console's address (for tests)")
	_ = c.Flags().MarkHidden("console-addr")
	return c
}

type demo struct {
	w    io.Writer
	step int
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.w, format+"\n", args...)
}

func (d *demo) section(title string) {
	d.step++
	fmt.Fprintf(d.w, "\n== %d. %s\n", d.step, title)
}

func runDemo(ctx context.Context, g *globals, o demoOptions) (err error) {
	if o.records < 1 {
		return usageError{errors.New("--records must be at least 1")}
	}
	d := &demo{w: g.stdout}
	dir := o.dir
	if dir == "" {
		dir, err = os.MkdirTemp("", "custodian-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else {
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			return usageError{fmt.Errorf("--dir %s is not empty; give a new or empty directory", dir)}
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	dir, _ = filepath.Abs(dir)
	d.say("custodian demo: everything below runs in this one process, on 127.0.0.1 only,")
	d.say("with synthetic people. Working directory: %s", dir)

	// 1. The provider's side.
	d.section("The provider: an SFTP server with synthetic registry files")
	root := filepath.Join(dir, "provider")
	outbox := filepath.Join(root, "outbox")
	changes := filepath.Join(outbox, "changes")
	for _, p := range []string{changes, filepath.Join(root, "archive")} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return err
		}
	}
	day := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	good := synth.FileSpec{Name: "HR_FULL_20261130.txt", Options: synth.Options{Records: o.records, Seed: 1, Feed: "HR_FULL", Date: day}}
	// A file that lost a record before the provider computed its checksum:
	// the digest matches, the trailer's count does not.
	short := synth.FileSpec{Name: "HR_FULL_20261129.txt", Options: synth.Options{Records: 1000, Seed: 2, Feed: "HR_FULL", Date: day.AddDate(0, 0, -1), TrailerDelta: 1}}
	if err := synth.GenerateTree(outbox, []synth.FileSpec{good, short}); err != nil {
		return err
	}
	for seq := 1; seq <= 3; seq++ {
		if err := writeChange(changes, day, seq); err != nil {
			return err
		}
	}
	// The agency's side of the connection (section 2) is written with the
	// server: the client key and a known_hosts file pinning the host key.
	etc := filepath.Join(dir, "etc")
	if err := os.MkdirAll(etc, 0o700); err != nil {
		return err
	}
	srv, _, err := sftpd.StartWithClient(ctx, sftpd.Config{Root: root, User: "hbxfer"},
		filepath.Join(etc, "id_ed25519"), filepath.Join(etc, "known_hosts"))
	if err != nil {
		return err
	}
	defer srv.Close()
	d.say("SFTP server on %s, host key %s", srv.Addr(), ssh.FingerprintSHA256(srv.HostKey()))
	d.say("  /outbox/HR_FULL_20261130.txt   %d records, trailer TRL%d, sidecar .sha256", o.records, o.records)
	d.say("  /outbox/HR_FULL_20261129.txt   1000 records, but its trailer declares 1001")
	d.say("  /outbox/changes/HR_CHG_20261130_0001..0003.txt   change files with .done markers")

	// 2. Configuration and init.
	d.section("The agency: configuration, then `custodian init`")
	cfgPath := filepath.Join(etc, "custodian.yaml")
	cfgText := demoConfig(srv.Addr())
	var caPath, fingerprint string
	if o.console {
		var block string
		if block, caPath, fingerprint, err = consoleTLS(etc, o.consoleAddr); err != nil {
			return err
		}
		cfgText += block
	}
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return err
	}
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	pass := make([]byte, 16)
	rand.Read(pass)
	passphrase := []byte(hex.EncodeToString(pass))
	if err := os.WriteFile(filepath.Join(etc, "vault.pass"), passphrase, 0o600); err != nil {
		return err
	}
	issued, err := daemon.Init(cfg, daemon.InitOptions{Passphrase: passphrase, Actor: currentUser(), Accounts: []service.BootstrapAccount{
		{Username: "demo.admin", FullName: "Demo Admin", EmployeeID: "E-0001", Unit: cfg.Unit, Roles: []accounts.Role{accounts.RoleAdmin}},
		{Username: "demo.supervisor", FullName: "Demo Supervisor", EmployeeID: "E-0002", Unit: cfg.Unit, Roles: []accounts.Role{accounts.RoleSupervisor}},
	}})
	if err != nil {
		return err
	}
	d.say("config %s (host key pinned in known_hosts; public-key auth only)", cfgPath)
	d.say("data_dir %s: ledger.db, vault/ (master key encrypted with a passphrase), keys/ (ledger signing key)", cfg.DataDir)
	d.say("`custodian init --admin demo.admin --supervisor demo.supervisor`: the first two accounts, with issued")
	d.say("passwords that must be changed at the first login; the ledger records the bootstrap by %s.", currentUser())

	// 3. The daemon.
	d.section("`custodian serve`: the daemon owns the ledger and answers on a Unix socket")
	logw := io.Discard
	if o.verbose {
		logw = g.stderr
	}
	dm, err := daemon.Open(cfg, newLogger(logw, "info"))
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- dm.Serve(sctx) }()
	defer func() {
		stop()
		if serr := <-served; serr != nil && err == nil {
			err = serr
		}
		dm.Close()
	}()
	anon := daemon.NewClient(cfg.SocketPath())
	if err := waitForDaemon(ctx, anon); err != nil {
		return err
	}
	d.say("socket %s (mode 0600); every request is made by one logged-in person, with the host account (%s) kept too", cfg.SocketPath(), currentUser())

	// 3b. The first day: people, not sockets.
	d.section("The first day: logins, and an officer's account through request → approval → execution")
	pwDir := filepath.Join(etc, "passwords")
	if err := os.Mkdir(pwDir, 0o700); err != nil {
		return err
	}
	login := func(user, pw string) (*daemon.Client, string, error) {
		np := demoPassword()
		res, err := anon.Login(ctx, service.LoginRequest{Username: user, Password: pw, NewPassword: np})
		if err != nil {
			return nil, "", err
		}
		// Kept so that the installation can be explored after the demo
		// (custodian login --password-file etc/passwords/USER).
		if err := os.WriteFile(filepath.Join(pwDir, user), []byte(np+"\n"), 0o600); err != nil {
			return nil, "", err
		}
		d.say("`custodian login --user %s --new-password-file F`: issued password replaced; session %s", user, res.Session)
		return anon.WithToken(res.Token), np, nil
	}
	if _, err := anon.Status(ctx); errors.Is(err, service.ErrUnauthenticated) {
		d.say("Without a session the daemon refuses: %v", err)
	}
	admin, _, err := login(issued[0].Username, issued[0].Password)
	if err != nil {
		return err
	}
	sup, _, err := login(issued[1].Username, issued[1].Password)
	if err != nil {
		return err
	}
	var people []*daemon.Client
	for _, p := range []struct {
		user, name string
		role       accounts.Role
	}{{"demo.officer", "Demo Officer", accounts.RoleOfficer}, {"demo.auditor", "Demo Auditor", accounts.RoleAuditor}} {
		q, err := admin.FileAccountRequest(ctx, service.AccountRequest{Kind: accounts.KindAccountCreate, Username: p.user, Reason: "new staff member starts today",
			Account: &accounts.AccountSpec{FullName: p.name, EmployeeID: "E-" + p.user[5:], Unit: cfg.Unit, Roles: []accounts.Role{p.role}}})
		if err != nil {
			return err
		}
		d.say("demo.admin: `custodian account request create --user %s --roles %s ...` → request %s", p.user, p.role, q.ID)
		if _, err := admin.Approve(ctx, q.ID, "approving my own request"); err != nil {
			d.say("  demo.admin tries to approve it: refused (%v)", err)
		}
		if _, err := sup.Approve(ctx, q.ID, "identity and appointment letter checked"); err != nil {
			return err
		}
		d.say("  demo.supervisor: `custodian approve %s --reason ...` → approved", q.ID)
		x, err := admin.ExecuteRequest(ctx, q.ID)
		if err != nil {
			return err
		}
		d.say("  demo.admin: `custodian request execute %s` → %s created with a one-time password", q.ID, x.Account.Username)
		c, _, err := login(x.Issued.Username, x.Issued.Password)
		if err != nil {
			return err
		}
		people = append(people, c)
	}
	cl, auditor := people[0], people[1]
	if _, err := cl.Export(ctx, io.Discard); err != nil {
		d.say("demo.officer tries `custodian audit export`: refused (%v)", err)
	}
	d.say("Every login, request, approval, execution and refusal above is a ledger event with its person.")

	// 4. Extract.
	d.section("`custodian job run registry-extract`: one streaming pass per file")
	d.say("download (concurrent SFTP reads) → SHA-256 + record count + age encryption → durable on disk → ledger")
	res, err := cl.Run(ctx, "registry-extract", nil)
	if err != nil {
		return err
	}
	printRun(d.w, res)
	d.say("The short file is stored encrypted but QUARANTINED with its reason, never as verified.")

	// 5. Change files.
	d.section("`custodian job run registry-changes`: sequence numbers are checked")
	res, err = cl.Run(ctx, "registry-changes", nil)
	if err != nil {
		return err
	}
	printRun(d.w, res)
	d.say("The provider now publishes 0005 — 0004 is missing:")
	if err := writeChange(changes, day, 5); err != nil {
		return err
	}
	res, err = cl.Run(ctx, "registry-changes", nil)
	if err != nil {
		return err
	}
	printRun(d.w, res)
	d.say("Nothing after a gap is accepted silently: the file is HELD for the transfer officer.")
	held := ""
	for _, f := range res.Files {
		if f.Outcome == "held" {
			held = f.DatasetID
		}
	}
	if held != "" {
		reason := "provider confirmed 0004 was withdrawn (letter 2026-118)"
		rd, err := cl.Release(ctx, held, reason)
		if err != nil {
			return err
		}
		d.say("`custodian dataset release %s --reason %q`", held, reason)
		d.say("  → %s is now %s; the release, its reason and the officer are on the ledger.", rd.ID, rd.State)
	}

	// 6. No double ingest.
	d.section("Run the extract job again: nothing is ingested twice")
	res, err = cl.Run(ctx, "registry-extract", nil)
	if err != nil {
		return err
	}
	printRun(d.w, res)

	// 6b. A re-sent file.
	d.section("The provider re-sends the short extract, corrected, under the same name")
	fixed := short
	fixed.Options.TrailerDelta = 0
	if err := synth.GenerateTree(outbox, []synth.FileSpec{fixed}); err != nil {
		return err
	}
	res, err = cl.Run(ctx, "registry-extract", nil)
	if err != nil {
		return err
	}
	printRun(d.w, res)
	d.say("\"Already on the ledger\" means the same bytes, not the same name: the new file is a new")
	d.say("dataset that supersedes the quarantined one, which keeps its bytes and its history.")

	// 7. Datasets.
	d.section("`custodian dataset list`: metadata only, never contents")
	ds, err := cl.Datasets(ctx)
	if err != nil {
		return err
	}
	for _, x := range ds {
		d.say("  %s  %-11s  %6d records  %9s  %s", x.ID, x.State, x.Records, humanBytes(x.Size), x.RemotePath)
	}

	// 8. Ledger.
	d.section("`custodian audit verify`: recompute the Merkle tree and the signed checkpoint")
	d.say("(as demo.auditor: auditors verify; officers run jobs)")
	rep, err := auditor.Verify(ctx, audit.VerifyOptions{})
	if err != nil {
		return err
	}
	d.say("%s", rep.String())
	cp, vk, err := auditor.Checkpoint(ctx)
	if err != nil {
		return err
	}
	d.say("Latest signed checkpoint (an auditor keeps this; verifier key %s):", vk)
	for _, line := range strings.Split(strings.TrimRight(cp, "\n"), "\n") {
		d.say("  | %s", line)
	}

	// 9. Vault.
	d.section("`custodian vault verify`: decrypt every object in memory and compare with the ledger")
	plan, err := scrubPlan(ctx, cl)
	if err != nil {
		return err
	}
	srep, err := scrub(ctx, cfg, passphrase, plan, d.w)
	if err != nil {
		return err
	}
	idx, err := cl.RecordScrub(ctx, srep)
	if err != nil {
		return err
	}
	d.say("Recorded on the ledger (entry %d) as a report by demo.officer: the count, object IDs and digest match the ledger", idx)

	d.section("The vault holds no plaintext")
	needle, err := firstRecordID(filepath.Join(outbox, good.Name))
	if err != nil {
		return err
	}
	inProvider, err := containsBytes(filepath.Join(outbox, good.Name), needle)
	if err != nil {
		return err
	}
	v, err := vault.Open(cfg.VaultDir())
	if err != nil {
		return err
	}
	inVault, err := v.ContainsPlaintext(needle)
	if err != nil {
		return err
	}
	d.say("A national ID from the extract: found in the provider's plain file: %v; found anywhere in the vault: %v", inProvider, inVault)
	if inVault || !inProvider {
		return fmt.Errorf("demo: plaintext check failed (provider %v, vault %v)", inProvider, inVault)
	}

	// 10. Tamper evidence.
	d.section("Tamper evidence: flip one byte in an exported copy of the ledger")
	exp := filepath.Join(dir, "ledger-export.db")
	if _, err := exportTo(ctx, auditor, exp); err != nil {
		return err
	}
	ok, err := verifyFile(exp, audit.VerifyOptions{VerifierKey: vk})
	if err != nil {
		return err
	}
	d.say("export %s, offline verify: ok=%v", exp, ok.OK)
	if err := flipEventByte(exp, 3); err != nil {
		return err
	}
	bad, err := verifyFile(exp, audit.VerifyOptions{VerifierKey: vk})
	if err != nil {
		return err
	}
	d.say("after changing one letter of one event:")
	d.say("%s", bad.String())
	if bad.OK {
		return errors.New("demo: the tampered ledger verified; this is a bug")
	}

	d.section("Done")
	st, err := cl.Status(ctx)
	if err != nil {
		return err
	}
	d.say("Ledger: %d events; datasets: %d. Try it on a real server with the README's steps.", st.LedgerSize, st.Datasets)
	if o.console {
		c := &consoleDemo{d: d, cfg: cfg, anon: anon, admin: admin, sup: sup, officer: cl, auditor: auditor, passphrase: passphrase,
			changes: changes, day: day, pwDir: pwDir, addr: o.consoleAddr, caPath: caPath, print: fingerprint,
			login: login, daemon: dm}
		return c.run(ctx)
	}
	if o.dir != "" {
		d.say("Everything is kept under %s; run `custodian serve --config %s` to explore it,", dir, cfgPath)
		d.say("and log in as a demo person: custodian login --config %s --user demo.officer --password-file %s", cfgPath, filepath.Join(pwDir, "demo.officer"))
	}
	return nil
}

// demoPassword is a random password that meets the default policy.
func demoPassword() string {
	b := make([]byte, 9)
	rand.Read(b)
	return "Kx7-" + hex.EncodeToString(b) + "-Qr"
}

func demoConfig(addr string) string {
	return `# Written by custodian demo.
data_dir: data
unit: demo-health-bureau
# The demo logs in without a second factor; by default admins, supervisors
# and directors must use one-time codes (custodian account totp enroll).
accounts:
  require_totp: []
sources:
  moi:
    address: ` + addr + `
    user: hbxfer
    key_file: id_ed25519
    known_hosts: known_hosts
jobs:
  - name: registry-extract
    source: moi
    officer: demo.officer
    schedule: "CRON_TZ=Asia/Taipei 0 2 * * *"
    remote_dir: /outbox
    pattern: "HR_FULL_*.txt"
    kind: extract
    checksum: sidecar
    records:
      trailer: '^TRL(\d+)$'
      header: '^HDR\|'
    purpose: vaccination
    retry: {attempts: 2, initial: 1s, max: 2s}
  - name: registry-changes
    source: moi
    officer: demo.officer
    schedule: "CRON_TZ=Asia/Taipei */30 * * * *"
    remote_dir: /outbox/changes
    pattern: "HR_CHG_*.txt"
    kind: change
    sequence: '_(\d{4})\.txt$'
    checksum: sidecar
    records:
      trailer: '^TRL(\d+)$'
      header: '^HDR\|'
    purpose: vaccination
    ready_marker: .done
    after_pull: move:/archive
    retry: {attempts: 2, initial: 1s, max: 2s}
`
}

// waitForDaemon waits until the daemon answers (a refusal for want of a
// session is an answer).
func waitForDaemon(ctx context.Context, cl *daemon.Client) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := cl.Status(ctx)
		if err == nil || errors.Is(err, service.ErrUnauthenticated) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon did not answer: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeChange(dir string, day time.Time, seq int) error {
	name := fmt.Sprintf("HR_CHG_%s_%04d.txt", day.Format("20060102"), seq)
	spec := synth.FileSpec{Name: name, Options: synth.Options{Records: 200 + seq*7, Seed: uint64(100 + seq), Feed: "HR_CHG", Date: day, Seq: seq}}
	if err := synth.GenerateTree(dir, []synth.FileSpec{spec}); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".done"), nil, 0o600)
}

// firstRecordID returns the national ID of the file's first record.
func firstRecordID(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, _ := io.ReadFull(f, buf)
	lines := bytes.Split(buf[:n], []byte("\n"))
	if len(lines) < 2 {
		return nil, errors.New("demo file too short")
	}
	id, _, _ := bytes.Cut(lines[1], []byte("|"))
	return id, nil
}

func containsBytes(path string, needle []byte) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	return bytes.Contains(b, needle), nil
}

// flipEventByte changes one letter of event index's stored bytes, as
// someone editing the ledger file with a bbolt tool would. (Editing the raw
// file at a random place may hit a page bbolt no longer uses.)
func flipEventByte(path string, index uint64) error {
	found := false
	err := audit.TamperEvent(path, int64(index), func(v []byte) []byte {
		if i := bytes.Index(v, []byte(`"type":"`)); i >= 0 {
			v[i+len(`"type":"`)] ^= 0x01 // one bit of the event's type
			found = true
		}
		return v
	})
	if err == nil && !found {
		err = fmt.Errorf("demo: event %d has no type", index)
	}
	return err
}
