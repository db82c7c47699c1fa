package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"filippo.io/age"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"custodian/accounts"
	"custodian/audit"
	"custodian/configs"
	"custodian/daemon"
	"custodian/service"
)

// DefaultConsoleAddr is where `custodian demo --console` serves the console.
const DefaultConsoleAddr = "127.0.0.1:8443"

// consoleTLS writes the demo console's self-signed certificate and key
// under etc and returns the listen: block for the configuration, the
// certificate's path (the --ca to trust) and its SHA-256 fingerprint.
func consoleTLS(etc, addr string) (block, caPath, fingerprint string, err error) {
	der, keyDER, err := selfSigned([]string{"127.0.0.1", "localhost"}, 30*24*time.Hour)
	if err != nil {
		return "", "", "", err
	}
	caPath, keyPath := filepath.Join(etc, "console-cert.pem"), filepath.Join(etc, "console-key.pem")
	if err := writeNew(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", "", err
	}
	if err := writeNew(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", "", err
	}
	sum := sha256.Sum256(der)
	block = fmt.Sprintf("listen:\n  address: %q\n  cert_file: %q\n  key_file: %q\n", addr, caPath, keyPath)
	return block, caPath, hex.EncodeToString(sum[:]), nil
}

// consoleDemo is the end of `custodian demo --console`: it brings the
// installation's data into every state (verified, quarantined, held,
// released, destroyed with its certificate, a destruction waiting for
// approval, an open review with a sample, training), makes one account per
// role for the console with a one-time password, prints how to reach the
// console, and serves until ctx ends (Ctrl-C).
type consoleDemo struct {
	d          *demo
	cfg        *configs.Config
	anon       *daemon.Client
	admin, sup *daemon.Client
	officer    *daemon.Client
	auditor    *daemon.Client
	passphrase []byte
	changes    string
	day        time.Time
	pwDir      string
	login      func(user, pw string) (*daemon.Client, string, error)
	addr       string
	caPath     string
	print      string // the certificate's fingerprint
	daemon     *daemon.Daemon
}

func (c *consoleDemo) run(ctx context.Context) error {
	d := c.d
	d.section("The web console: data in every state, one account per role")
	// A held file: 0007 arrives, 0006 never did.
	if err := writeChange(c.changes, c.day, 7); err != nil {
		return err
	}
	res, err := c.officer.Run(ctx, "registry-changes", nil)
	if err != nil {
		return err
	}
	printRun(d.w, res)
	newAccount := func(user, name string, role accounts.Role) (*service.Issued, error) {
		spec := &accounts.AccountSpec{FullName: name, EmployeeID: "E-" + strings.ReplaceAll(user, ".", "-"), Unit: c.cfg.Unit, Roles: []accounts.Role{role}}
		if role == accounts.RoleContractor {
			spec.Contractor = &accounts.Agreement{Reference: "NDA-DEMO-1", Ends: time.Now().AddDate(0, 6, 0)}
		}
		q, err := c.admin.FileAccountRequest(ctx, service.AccountRequest{Kind: accounts.KindAccountCreate, Username: user, Account: spec,
			Reason: "demo account for the web console"})
		if err != nil {
			return nil, err
		}
		if _, err := c.sup.Approve(ctx, q.ID, "demo: appointment letter checked"); err != nil {
			return nil, err
		}
		x, err := c.admin.ExecuteRequest(ctx, q.ID)
		if err != nil {
			return nil, err
		}
		return x.Issued, nil
	}
	// A second supervisor for the executed destruction (two approve).
	iss, err := newAccount("demo.supervisor2", "Demo Supervisor Two", accounts.RoleSupervisor)
	if err != nil {
		return err
	}
	sup2, _, err := c.login(iss.Username, iss.Password)
	if err != nil {
		return err
	}
	ds, err := c.officer.Datasets(ctx)
	if err != nil {
		return err
	}
	var changes []string
	for _, x := range ds {
		if x.State == string(audit.StateVerified) && strings.Contains(x.RemotePath, "HR_CHG_") {
			changes = append(changes, x.ID)
		}
	}
	if len(changes) < 3 {
		return fmt.Errorf("demo: want 3 verified change files, have %d", len(changes))
	}
	// The officer unseals the vault (the console never asks for the
	// passphrase), reads a file twice for the review to sample.
	if _, err := c.officer.Unseal(ctx, c.passphrase); err != nil {
		return err
	}
	for i := range 2 {
		if _, err := c.officer.ReadDataset(ctx, changes[0], service.ReadRequest{Purpose: "vaccination", Case: "CASE-" + strconv.Itoa(i+1)}, &bytes.Buffer{}); err != nil {
			return err
		}
	}
	// A destruction carried out, with its certificate.
	q, err := c.officer.FileDestruction(ctx, service.DestructionRequest{Datasets: []string{changes[1]}, Reason: "demo: retention period ended"})
	if err != nil {
		return err
	}
	for _, s := range []*daemon.Client{c.sup, sup2} {
		if _, err := s.Approve(ctx, q.ID, "demo: retention schedule checked"); err != nil {
			return err
		}
	}
	if _, err := c.officer.RunDestruction(ctx, q.ID, service.DestroyOptions{}); err != nil {
		return err
	}
	d.say("destruction %s carried out by demo.officer; its certificate: /certificates/%s", q.ID, q.ID)
	// One waiting for the supervisors.
	pending, err := c.officer.FileDestruction(ctx, service.DestructionRequest{Datasets: []string{changes[2]}, Reason: "demo: retention period ended for this change file"})
	if err != nil {
		return err
	}
	d.say("destruction %s filed by demo.officer, waiting for two supervisors (web.supervisor and demo.supervisor2)", pending.ID)
	// An export waiting for a supervisor, to a recipient whose key the
	// demo keeps, so the copy can be opened with the age tool.
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	keyFile := filepath.Join(filepath.Dir(c.pwDir), "export-recipient.key")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		return err
	}
	exp, err := c.officer.FileExport(ctx, service.ExportRequest{Dataset: changes[0], Recipient: id.Recipient().String(), Purpose: "vaccination",
		Case: "CASE-EXPORT-1", Reason: "demo: the vaccination team needs this change file"})
	if err != nil {
		return err
	}
	d.say("export %s filed by demo.officer, waiting for a supervisor (its recipient's key: %s)", exp.ID, keyFile)
	// An emergency use outside the legal basis, waiting for the director.
	emg, err := c.officer.FileDataRequest(ctx, service.DataRequest{Kind: accounts.KindEmergencyUse, Dataset: changes[0], Purpose: "communicable-disease",
		Case: "CASE-EMERGENCY-1", Reason: "demo: an outbreak needs the addresses of this change file"})
	if err != nil {
		return err
	}
	d.say("emergency use %s filed by demo.officer, waiting for the director (web.director)", emg.ID)
	rv, err := c.auditor.StartReview(ctx, service.ReviewStart{Period: strconv.Itoa(time.Now().In(service.ReportZone).Year()), Rate: "100%"})
	if err != nil {
		return err
	}
	// A configuration change, as the officer's team would make it: the
	// change files are pulled every 15 minutes instead of 30. The reload
	// records the job's new settings; the jobs page shows the diff.
	b, err := os.ReadFile(c.daemon.Config.Path)
	if err != nil {
		return err
	}
	edited := strings.Replace(string(b), `"CRON_TZ=Asia/Taipei */30 * * * *"`, `"CRON_TZ=Asia/Taipei */15 * * * *"`, 1)
	if edited == string(b) {
		return fmt.Errorf("demo: the registry-changes schedule is not in %s", c.daemon.Config.Path)
	}
	if err := os.WriteFile(c.daemon.Config.Path, []byte(edited), 0o600); err != nil {
		return err
	}
	if err := c.daemon.Reload(); err != nil {
		return err
	}
	d.say("registry-changes now runs every 15 minutes (configuration reloaded; its history is on the jobs page)")
	d.say("review %s started by demo.auditor with %d sampled access records", rv.ID, len(rv.Sample))
	if _, err := c.sup.RecordTraining(ctx, service.TrainingRecord{Username: "demo.officer", Hours: "2", Date: time.Now().In(service.ReportZone).Format(time.DateOnly),
		Course: "personal data protection (demo)"}); err != nil {
		return err
	}
	// The console's people: one per role, each with a one-time password.
	type person struct {
		user, name string
		role       accounts.Role
	}
	var lines []string
	for _, p := range []person{{"web.supervisor", "Web Supervisor", accounts.RoleSupervisor}, {"web.auditor", "Web Auditor", accounts.RoleAuditor},
		{"web.admin", "Web Admin", accounts.RoleAdmin}, {"web.director", "Web Director", accounts.RoleDirector},
		{"web.contractor", "Web Contractor", accounts.RoleContractor}, {"web.officer", "Web Officer", accounts.RoleOfficer}} {
		iss, err := newAccount(p.user, p.name, p.role)
		if err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("  %-16s %-11s %s   (one-time: set a new one at the first login)", p.user, p.role, iss.Password))
	}
	// A hand-over of demo.officer's custody to web.officer, waiting for a
	// supervisor; then web.officer accepts it.
	ho, err := c.sup.FileHandover(ctx, service.HandoverRequest{From: "demo.officer", To: "web.officer", Reason: "demo: demo.officer moves to another unit"})
	if err != nil {
		return err
	}
	d.say("hand-over %s from demo.officer to web.officer filed by demo.supervisor: another supervisor approves, then web.officer accepts", ho.ID)
	offPW, _ := os.ReadFile(filepath.Join(c.pwDir, "demo.officer"))
	sup2PW, _ := os.ReadFile(filepath.Join(c.pwDir, "demo.supervisor2"))
	lines = append(lines,
		fmt.Sprintf("  %-16s %-11s %s   (set by the demo; it filed %s and runs it once approved)", "demo.officer", "officer", strings.TrimSpace(string(offPW)), pending.ID),
		fmt.Sprintf("  %-16s %-11s %s   (set by the demo; the second approval of %s)", "demo.supervisor2", "supervisor", strings.TrimSpace(string(sup2PW)), pending.ID))

	d.section("The console is running")
	d.say("URL:         https://%s/", c.addr)
	d.say("Certificate: self-signed, SHA-256 fingerprint %s", c.print)
	d.say("Trust it with --ca %s (curl --cacert, or import it into the browser)", c.caPath)
	d.say("Accounts (username, role, password):")
	for _, l := range lines {
		d.say("%s", l)
	}
	d.say("Try: log in as web.supervisor, open %s from the inbox and approve it; then demo.supervisor2;", pending.ID)
	d.say("then demo.officer runs it and prints the certificate. web.auditor searches the log and downloads proofs.")
	d.say("Also waiting: export %s (a supervisor), emergency use %s (web.director), hand-over %s (web.supervisor, then web.officer accepts).", exp.ID, emg.ID, ho.ID)
	d.say("The vault stays unsealed for vault.unseal_idle; if it seals, unseal it as demo.officer:")
	d.say("  custodian vault unseal --config %s --passphrase-file %s", filepath.Join(filepath.Dir(c.pwDir), "custodian.yaml"), filepath.Join(filepath.Dir(c.pwDir), "vault.pass"))
	d.say("Console ready. Press Ctrl-C to stop.")
	<-ctx.Done()
	d.say("Stopping.")
	return nil
}
