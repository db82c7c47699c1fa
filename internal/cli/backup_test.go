package cli

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"custodian/configs"
	"custodian/daemon"
)

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// TestBackupVerifyRestoreCLI: `backup` prints the backup's ID last, `backup
// verify` passes (and decrypts with the passphrase), a flipped byte makes
// it exit 1 naming the file, `restore` rebuilds the installation elsewhere,
// and `audit verify` passes on it.
func TestBackupVerifyRestoreCLI(t *testing.T) {
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
	stopped := false
	stopDaemon := func() {
		if !stopped {
			stopped = true
			stop()
			<-served
			dm.Close()
		}
	}
	t.Cleanup(stopDaemon)
	if err := waitForDaemon(context.Background(), daemon.NewClient(cfg.SocketPath())); err != nil {
		t.Fatal(err)
	}
	demoLogin(t, cfgPath, "demo.admin") // backups are an admin's

	dir := filepath.Join(t.TempDir(), "backup")
	out, err := runCLI(t, "backup", "--config", cfgPath, "--out", dir)
	id := lastLine(out)
	if err != nil || !regexp.MustCompile(`^bk-\d+-[0-9a-f]{12}$`).MatchString(id) || !strings.Contains(out, "already present") {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	out, err = runCLI(t, "backup", "--config", cfgPath, "--out", dir, "--json")
	var res struct {
		ID            string `json:"id"`
		ObjectsCopied int    `json:"objects_copied"`
	}
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res.ID == "" || res.ID == id || res.ObjectsCopied != 0 {
		t.Fatalf("second backup --json: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "doctor", "--config", cfgPath, "--json"); !strings.Contains(out, `"check": "permissions"`) || !strings.Contains(out, res.ID) ||
		!strings.Contains(out, `"check": "job officers"`) {
		t.Fatalf("doctor with the daemon running: %v\n%s", err, out)
	}
	stopDaemon()

	if out, err := runCLI(t, "backup", "verify", dir, "--passphrase-file", pass); err != nil || !strings.Contains(out, "backup OK: "+res.ID) || !strings.Contains(out, "decrypted") {
		t.Fatalf("backup verify: %v\n%s", err, out)
	}
	objs, _ := filepath.Glob(filepath.Join(dir, "vault", "objects", "*", "*.age"))
	tampered := filepath.Join(t.TempDir(), "tampered")
	if err := os.CopyFS(tampered, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(dir, objs[0])
	b, _ := os.ReadFile(filepath.Join(tampered, rel))
	b[len(b)/2] ^= 0x80
	os.WriteFile(filepath.Join(tampered, rel), b, 0o600)
	if out, err := runCLI(t, "backup", "verify", tampered); !errors.Is(err, errFailed) || !strings.Contains(out, rel) {
		t.Fatalf("a tampered backup must exit 1 naming %s: %v\n%s", rel, err, out)
	}
	if _, err := runCLI(t, "backup", "verify"); !errors.As(err, new(usageError)) {
		t.Fatalf("backup verify without DIR is a usage error: %v", err)
	}

	// Restore on a "fresh host": the same configuration with another data_dir.
	y, _ := os.ReadFile(cfgPath)
	fresh := filepath.Join(t.TempDir(), "fresh")
	y = regexp.MustCompile(`(?m)^data_dir:.*$`).ReplaceAll(y, []byte("data_dir: "+fresh))
	newCfg := filepath.Join(filepath.Dir(cfgPath), "restored.yaml")
	if err := os.WriteFile(newCfg, y, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, "restore", "--from", dir, "--config", newCfg, "--passphrase-file", pass)
	if err != nil || lastLine(out) != res.ID {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "audit", "verify", "--config", newCfg); err != nil || !strings.Contains(out, "ledger OK") {
		t.Fatalf("audit verify after restore: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "vault", "verify", "--config", newCfg, "--passphrase-file", pass); err != nil || !strings.Contains(out, " 0 failed") {
		t.Fatalf("vault verify after restore: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "restore", "--from", dir, "--config", newCfg, "--passphrase-file", pass); err == nil || !strings.Contains(out+err.Error(), "already initialized") {
		t.Fatalf("restore over an installation: %v\n%s", err, out)
	}
}
