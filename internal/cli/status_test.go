package cli

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"custodian/audit"
	"custodian/configs"
	"custodian/daemon"
)

// serveInProcess starts the daemon of an installation and returns a stop
// function.
func serveInProcess(t *testing.T, cfgPath string) func() {
	t.Helper()
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.Open(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	if err := waitForDaemon(ctx, daemon.NewClient(cfg.SocketPath())); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		d.Close()
	}
	t.Cleanup(stop)
	return stop
}

// TestStatusShowsLedgerDamage: `status` reports a healthy ledger and exits
// 0; after a dataset's state is changed in the ledger file, `status` shows
// the damage and exits 1 with the rule on stderr, `dataset list` still
// lists but warns, and `job run` is refused with the rule.
func TestStatusShowsLedgerDamage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	if out, err := runCLI(t, "demo", "--records", "200", "--dir", dir); err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "etc", "custodian.yaml")
	stop := serveInProcess(t, cfg)
	demoLogin(t, cfg, "demo.officer")
	out, err := runCLI(t, "status", "--config", cfg)
	if err != nil || !strings.Contains(out, "Ledger:") || !strings.Contains(out, "OK") || !strings.Contains(out, "last verified") {
		t.Fatalf("status of a sound ledger: %v\n%s", err, out)
	}
	stop()

	// A quarantined dataset becomes "verified" in the file.
	ledger := filepath.Join(dir, "etc", "data", "ledger.db")
	l, err := audit.Open(ledger, audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := l.Datasets()
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.State != audit.StateQuarantined {
			continue
		}
		if err := audit.TamperDataset(ledger, d.ID, func(v []byte) []byte {
			return bytes.Replace(v, []byte(`"state":"quarantined"`), []byte(`"state":"verified"`), 1)
		}); err != nil {
			t.Fatal(err)
		}
	}

	serveInProcess(t, cfg)
	demoLogin(t, cfg, "demo.officer") // a restart ends every session
	out, err = runCLI(t, "status", "--config", cfg)
	if !errors.Is(err, errFailed) || !strings.Contains(out, "DAMAGED") || !strings.Contains(out, "custodian audit verify") || !strings.Contains(out, "incidents") {
		t.Errorf("status of a damaged ledger must say so and fail: %v\n%s", err, out)
	}
	out, err = runCLI(t, "dataset", "list", "--config", cfg)
	if err != nil || !strings.Contains(out, "WARNING") || !strings.Contains(out, "failed verification") || !strings.Contains(out, "HR_FULL_20261130.txt") {
		t.Errorf("dataset list on a damaged ledger: %v\n%s", err, out)
	}
	_, err = runCLI(t, "job", "run", "registry-extract", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "failed verification") {
		t.Errorf("job run on a damaged ledger: %v", err)
	}
}
