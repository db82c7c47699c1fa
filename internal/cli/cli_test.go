package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"custodian/configs"
	"custodian/daemon"
	"custodian/service"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String() + errOut.String(), err
}

// demoLogin logs a person of a kept demo installation in for the CLI
// commands that follow, with the test's own session file.
func demoLogin(t *testing.T, cfgPath, user string) {
	t.Helper()
	t.Setenv("CUSTODIAN_SESSION_FILE", filepath.Join(t.TempDir(), "session"))
	pw := filepath.Join(filepath.Dir(cfgPath), "passwords", user)
	if out, err := runCLI(t, "login", "--config", cfgPath, "--user", user, "--password-file", pw); err != nil {
		t.Fatalf("login %s: %v\n%s", user, err, out)
	}
}

// demoClient is an API client logged in as a person of a kept demo
// installation.
func demoClient(t *testing.T, cfgPath, user string) *daemon.Client {
	t.Helper()
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := os.ReadFile(filepath.Join(filepath.Dir(cfgPath), "passwords", user))
	if err != nil {
		t.Fatal(err)
	}
	cl := daemon.NewClient(cfg.SocketPath())
	res, err := cl.Login(context.Background(), service.LoginRequest{Username: user, Password: strings.TrimSpace(string(pw))})
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return cl.WithToken(res.Token)
}

// TestDemo runs the README's first command end to end and checks that it
// shows what it claims: verified, quarantined and held files, no double
// ingest, a verifying ledger and vault, no plaintext, and detected tampering.
func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	out, err := runCLI(t, "demo", "--records", "3000", "--dir", dir)
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"VERIFIED     HR_FULL_20261130.txt",
		"QUARANTINED  HR_FULL_20261129.txt",
		"trailer: declares 1001 records, counted 1000",
		"HELD         HR_CHG_20261130_0005.txt",
		"0 file(s), 2 already on the ledger",
		"is now verified; the release, its reason",
		"VERIFIED     HR_FULL_20261129.txt",
		"re-sent with other bytes",
		"ledger OK",
		"0 failed, 0 unreferenced",
		"as a report by ",
		"found anywhere in the vault: false",
		"ledger FAILED verification",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, configs.Example, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "config", "check", "--config", good)
	if err != nil || !strings.Contains(out, "valid (1 source(s), 2 job(s))") {
		t.Fatalf("example config: %v %s", err, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, bytes.Replace(configs.Example, []byte("purpose: vaccination"), []byte("purpose: marketing"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = runCLI(t, "config", "check", "--config", bad)
	if !errors.Is(err, configs.ErrInvalid) || !strings.Contains(err.Error(), `jobs[0].purpose: "marketing"`) {
		t.Fatalf("bad config must name the field: %v", err)
	}
	if _, err := runCLI(t, "config", "check"); !errors.As(err, new(usageError)) {
		t.Fatalf("missing --config is a usage error: %v", err)
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Short == "" {
			t.Errorf("%q has no help text", c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRoot(&bytes.Buffer{}, &bytes.Buffer{}))
}

func TestCommandsNeedADaemon(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfg, configs.Example, 0o600); err != nil {
		t.Fatal(err)
	}
	// data_dir of the example is /var/lib/custodian: nothing runs there in tests.
	_, err := runCLI(t, "dataset", "list", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "not running") || !strings.Contains(err.Error(), "custodian serve") {
		t.Fatalf("want a clear 'daemon not running' error, got %v", err)
	}
}

// TestVaultVerifyNamesTamperedObject keeps a demo installation, flips one
// byte of one vault object, and expects `vault verify` to name it and fail;
// and `audit verify --db` to pass on the untouched ledger.
func TestVaultVerifyNamesTamperedObject(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	if out, err := runCLI(t, "demo", "--records", "500", "--dir", dir); err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "etc", "custodian.yaml")
	pass := filepath.Join(dir, "etc", "vault.pass")
	out, err := runCLI(t, "vault", "verify", "--config", cfg, "--passphrase-file", pass)
	if err != nil || !strings.Contains(out, "0 failed") {
		t.Fatalf("clean vault: %v\n%s", err, out)
	}
	objs, _ := filepath.Glob(filepath.Join(dir, "etc", "data", "vault", "objects", "*", "*.age"))
	if len(objs) == 0 {
		t.Fatal("no objects")
	}
	b, err := os.ReadFile(objs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x80
	if err := os.WriteFile(objs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSuffix(filepath.Base(objs[0]), ".age")
	out, err = runCLI(t, "vault", "verify", "--config", cfg, "--passphrase-file", pass)
	if !errors.Is(err, errFailed) || !strings.Contains(out, "FAIL") || !strings.Contains(out, id) {
		t.Fatalf("a flipped byte must fail verification and name object %s: %v\n%s", id, err, out)
	}
	out, err = runCLI(t, "audit", "verify", "--config", cfg)
	if err != nil || !strings.Contains(out, "ledger OK") {
		t.Fatalf("offline ledger verification: %v\n%s", err, out)
	}
}
