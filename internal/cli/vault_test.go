package cli

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"custodian/audit"
	"custodian/configs"
	"custodian/daemon"
	"custodian/service"
)

// demoInstall keeps a demo installation and returns its config and
// passphrase files.
func demoInstall(t *testing.T) (cfgPath, passPath string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	if out, err := runCLI(t, "demo", "--records", "300", "--dir", dir); err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	return filepath.Join(dir, "etc", "custodian.yaml"), filepath.Join(dir, "etc", "vault.pass")
}

// TestVaultVerifyRecordsAReportByThePerson: with a daemon running, `vault
// verify` records its outcome as a report by the person who ran it, with
// the number of objects, the failed object IDs and the digest of what was
// checked.
func TestVaultVerifyRecordsAReportByThePerson(t *testing.T) {
	cfgPath, pass := demoInstall(t)
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	dm, err := daemon.Open(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- dm.Serve(ctx) }()
	t.Cleanup(func() {
		stop()
		<-served
		dm.Close()
	})
	if err := waitForDaemon(context.Background(), daemon.NewClient(cfg.SocketPath())); err != nil {
		t.Fatal(err)
	}
	demoLogin(t, cfgPath, "demo.officer")
	cl := demoClient(t, cfgPath, "demo.officer")
	plan, err := cl.ScrubPlan(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	out, err := runCLI(t, "vault", "verify", "--config", cfgPath, "--passphrase-file", pass)
	if err != nil || !strings.Contains(out, "as your report") {
		t.Fatalf("vault verify: %v\n%s", err, out)
	}
	objs, _ := filepath.Glob(filepath.Join(cfg.VaultDir(), "objects", "*", "*.age"))
	b, err := os.ReadFile(objs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x80
	if err := os.WriteFile(objs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	tampered := strings.TrimSuffix(filepath.Base(objs[0]), ".age")
	if out, err := runCLI(t, "vault", "verify", "--config", cfgPath, "--passphrase-file", pass); !errors.Is(err, errFailed) || !strings.Contains(out, "as your report") {
		t.Fatalf("a failed scrub is recorded and exits 1: %v\n%s", err, out)
	}

	evs, err := demoClient(t, cfgPath, "demo.auditor").Log(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var reports []service.EventView
	for _, e := range evs {
		if e.Type == string(audit.EvVaultScrubReported) {
			reports = append(reports, e)
		}
	}
	if len(reports) != 3 {
		t.Fatalf("want three scrub reports (the demo's and these two), got %d", len(reports))
	}
	reports = reports[1:]
	for i, wantFailed := range []string{"", tampered} {
		d := reports[i].Details
		if reports[i].Actor != "demo.officer" || d["reported_by"] != "demo.officer" || d["host_user"] != currentUser() || d["objects_checked"] != strconv.Itoa(len(plan.Items)) ||
			d["failed_objects"] != wantFailed || len(d["checked_digest"]) != 64 {
			t.Errorf("report %d: %+v", i, reports[i])
		}
	}
}

// TestVaultVerifyRefusedExitsOne: when the daemon refuses the report, `vault
// verify` fails (exit 1, not a usage error) with the daemon's rule.
func TestVaultVerifyRefusedExitsOne(t *testing.T) {
	cfgPath, pass := demoInstall(t)
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// A stand-in daemon that hands out an empty plan and refuses the report.
	ln, err := net.Listen("unix", cfg.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/vault/scrub-plan", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"ledger_size": 1, "items": []}`))
	})
	mux.HandleFunc("POST /v1/vault/verified", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		w.Write([]byte(`{"type": "urn:custodian:error:refused", "title": "refused", "status": 422, "code": "refused", "detail": "scrub report refused: the rule"}`))
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	out, err := runCLI(t, "vault", "verify", "--config", cfgPath, "--passphrase-file", pass)
	if err == nil || errors.Is(err, errFailed) || errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "scrub report refused: the rule") {
		t.Fatalf("want the refusal as an error (exit 1) naming the rule, got %v\n%s", err, out)
	}
}
