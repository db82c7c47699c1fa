package cli

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"custodian/configs"
	"custodian/daemon"
)

// writeKeyConfig writes a valid configuration whose source key and
// passphrase files exist with the given modes, and returns its path and
// the key file's.
func writeKeyConfig(t *testing.T, keyMode, passMode os.FileMode) (cfgPath, keyPath, passPath string) {
	t.Helper()
	dir := t.TempDir()
	keyPath = filepath.Join(dir, "id_ed25519")
	passPath = filepath.Join(dir, "id.pass")
	for p, m := range map[string]os.FileMode{keyPath: keyMode, passPath: passMode} {
		if err := os.WriteFile(p, []byte("not really a key\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, m); err != nil {
			t.Fatal(err)
		}
	}
	y := bytes.Replace(configs.Example, []byte("key_file: /etc/custodian/id_ed25519"),
		[]byte("key_file: "+keyPath+"\n    key_passphrase_file: "+passPath), 1)
	if bytes.Equal(y, configs.Example) {
		t.Fatal("the example configuration no longer has the key_file line this test edits")
	}
	cfgPath = filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfgPath, y, 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, keyPath, passPath
}

// TestConfigCheckRefusesReadableKeys: `config check` refuses a source's SSH
// private key or key passphrase file that group or others can read (exit
// status 1, the rule and the fix on stderr), and accepts 0600 files.
func TestConfigCheckRefusesReadableKeys(t *testing.T) {
	cfg, _, _ := writeKeyConfig(t, 0o600, 0o600)
	if out, err := runCLI(t, "config", "check", "--config", cfg); err != nil {
		t.Fatalf("0600 key files: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		field          string
		keyMode, pMode os.FileMode
	}{
		{"key_file", 0o644, 0o600},
		{"key_passphrase_file", 0o600, 0o640},
	} {
		cfg, key, pass := writeKeyConfig(t, tc.keyMode, tc.pMode)
		path := key
		if tc.field == "key_passphrase_file" {
			path = pass
		}
		_, err := runCLI(t, "config", "check", "--config", cfg)
		if !errors.Is(err, daemon.ErrInsecure) || errors.As(err, new(usageError)) || errors.Is(err, configs.ErrInvalid) ||
			!strings.Contains(err.Error(), "sources.moi."+tc.field+" "+path) || !strings.Contains(err.Error(), "chmod go-rwx "+path) {
			t.Errorf("%s readable by others: want a refusal naming the field, the file and the fix, got %v", tc.field, err)
		}
	}
	// Exit status 1 and the rule on stderr, from the real command.
	cfg, key, _ := writeKeyConfig(t, 0o644, 0o600)
	cmd := exec.Command(os.Args[0], "config", "check", "--config", cfg)
	cmd.Env = append(os.Environ(), "CUSTODIAN_TEST_AS_CLI=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), key) || !strings.Contains(stderr.String(), "mode 0644") {
		t.Fatalf("want exit status 1 naming %s on stderr, got %v: %s", key, err, stderr.String())
	}
}

// TestPassphraseFileMustBePrivate: init and vault verify refuse a vault
// passphrase file that group or others can read, and init creates nothing.
func TestPassphraseFileMustBePrivate(t *testing.T) {
	dir, err := os.MkdirTemp("", "cp") // short: the API socket's path limit
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "c.yaml")
	y := bytes.Replace(configs.Example, []byte("data_dir: /var/lib/custodian"), []byte("data_dir: data"), 1)
	if err := os.WriteFile(cfg, y, 0o600); err != nil {
		t.Fatal(err)
	}
	pass := filepath.Join(dir, "vault.pass")
	if err := os.WriteFile(pass, []byte("a long enough passphrase\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	refused := func(args ...string) {
		t.Helper()
		_, err := runCLI(t, args...)
		if !errors.Is(err, daemon.ErrInsecure) || !strings.Contains(err.Error(), "--passphrase-file "+pass) || !strings.Contains(err.Error(), "chmod go-rwx "+pass) {
			t.Fatalf("%s with a world-readable passphrase file: want a refusal naming it and the fix, got %v", args[0], err)
		}
	}
	setMode := func(m os.FileMode) {
		t.Helper()
		if err := os.Chmod(pass, m); err != nil {
			t.Fatal(err)
		}
	}
	refused("init", "--config", cfg, "--passphrase-file", pass, "--admin", "adam", "--supervisor", "sue")
	if _, err := os.Stat(filepath.Join(dir, "data")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused init created data_dir: %v", err)
	}
	setMode(0o600)
	if out, err := runCLI(t, "init", "--config", cfg, "--passphrase-file", pass, "--admin", "adam", "--supervisor", "sue", "--issued-passwords", filepath.Join(dir, "issued")); err != nil {
		t.Fatalf("init with a 0600 passphrase file: %v\n%s", err, out)
	}
	setMode(0o644)
	refused("vault", "verify", "--config", cfg, "--passphrase-file", pass)
	setMode(0o600)
	if out, err := runCLI(t, "vault", "verify", "--config", cfg, "--passphrase-file", pass); err != nil || !strings.Contains(out, "0 object(s) checked") {
		t.Fatalf("vault verify with a 0600 passphrase file: %v\n%s", err, out)
	}
}

// TestSwappedVaultRefused: with vault/ replaced by one from another
// `custodian init`, `serve` refuses to start (so no `job run` can store a
// file under the foreign key) and `vault verify` refuses to read it.
func TestSwappedVaultRefused(t *testing.T) {
	var cfgs [2]string
	for i := range cfgs {
		dir, err := os.MkdirTemp("", "cs") // short: the API socket's path limit
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		cfgs[i] = filepath.Join(dir, "c.yaml")
		y := bytes.Replace(configs.Example, []byte("data_dir: /var/lib/custodian"), []byte("data_dir: data"), 1)
		if err := os.WriteFile(cfgs[i], y, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := configs.Load(cfgs[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := daemon.Init(cfg, daemon.InitOptions{Passphrase: []byte("the same long passphrase"), ScryptWorkFactor: 10}); err != nil {
			t.Fatal(err)
		}
	}
	mine, theirs := filepath.Join(filepath.Dir(cfgs[0]), "data", "vault"), filepath.Join(filepath.Dir(cfgs[1]), "data", "vault")
	if err := os.RemoveAll(mine); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(theirs, mine); err != nil {
		t.Fatal(err)
	}
	pass := filepath.Join(filepath.Dir(cfgs[0]), "vault.pass")
	if err := os.WriteFile(pass, []byte("the same long passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"serve", "--config", cfgs[0]},
		{"vault", "verify", "--config", cfgs[0], "--passphrase-file", pass},
	} {
		_, err := runCLI(t, args...)
		if !errors.Is(err, daemon.ErrSubstituted) || !strings.Contains(err.Error(), filepath.Join(mine, "master.pub")) {
			t.Errorf("%s on a swapped vault: want a refusal naming master.pub, got %v", args[0], err)
		}
	}
}
