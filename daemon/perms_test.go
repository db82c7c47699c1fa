package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"custodian/configs"
)

// nobody is the uid that stands for "another user" in ownership tests.
const nobody = 65534

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create files owned by another user (CI runs as root)")
	}
}

func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Lchown(path, uid, -1); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// wantInsecure checks that err refuses path, says what was found and how
// to fix it.
func wantInsecure(t *testing.T, err error, path, found, fix string) {
	t.Helper()
	if !errors.Is(err, ErrInsecure) {
		t.Fatalf("want ErrInsecure for %s, got %v", path, err)
	}
	t.Logf("refused: %v", err)
	for _, s := range []string{path + " ", found, fix} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("the refusal lacks %q: %v", s, err)
		}
	}
}

// TestServeRefusesUnsafeDataDir: as sshd's StrictModes, serve refuses a
// data_dir, parent directory or content that someone other than root or
// the service account owns or could write, a key file others could read,
// and a symbolic link inside data_dir. A world-writable parent is accepted
// only when it is sticky and root's (like /tmp, where every test's data_dir
// lives).
func TestServeRefusesUnsafeDataDir(t *testing.T) {
	type mutation struct {
		name       string
		root       bool // needs root (chown)
		do         func(t *testing.T, cfg *configs.Config) string
		found, fix string
	}
	for _, m := range []mutation{
		{"data_dir-owner", true, func(t *testing.T, cfg *configs.Config) string {
			chown(t, cfg.DataDir, nobody)
			return cfg.DataDir
		}, "owned by uid 65534", "chown"},
		{"content-owner", true, func(t *testing.T, cfg *configs.Config) string {
			p := filepath.Join(cfg.VaultDir(), "objects")
			chown(t, p, nobody)
			return p
		}, "owned by uid 65534", "chown"},
		{"ledger-group-writable", false, func(t *testing.T, cfg *configs.Config) string {
			chmod(t, cfg.LedgerPath(), 0o620)
			return cfg.LedgerPath()
		}, "mode 0620", "chmod go-w"},
		{"signing-key-group-readable", false, func(t *testing.T, cfg *configs.Config) string {
			chmod(t, cfg.SigningKeyPath(), 0o640)
			return cfg.SigningKeyPath()
		}, "mode 0640", "chmod go-rwx"},
		{"data_dir-other-writable", false, func(t *testing.T, cfg *configs.Config) string {
			chmod(t, cfg.DataDir, 0o703)
			return cfg.DataDir
		}, "mode 0703", "chmod go-w"},
		{"parent-owner", true, func(t *testing.T, cfg *configs.Config) string {
			p := filepath.Dir(cfg.DataDir)
			chown(t, p, nobody)
			return p
		}, "owned by uid 65534", "chown"},
		{"parent-world-writable", false, func(t *testing.T, cfg *configs.Config) string {
			p := filepath.Dir(cfg.DataDir)
			chmod(t, p, 0o777)
			return p
		}, "mode 0777", "chmod go-w"},
		{"parent-sticky-not-root", true, func(t *testing.T, cfg *configs.Config) string {
			p := filepath.Dir(cfg.DataDir)
			chmod(t, p, 0o777|os.ModeSticky)
			chown(t, p, nobody)
			return p
		}, "owned by uid 65534", "chown"},
		{"symlink", false, func(t *testing.T, cfg *configs.Config) string {
			p := filepath.Join(cfg.DataDir, "elsewhere")
			if err := os.Symlink("/etc", p); err != nil {
				t.Fatal(err)
			}
			return p
		}, "symbolic link", "rm"},
	} {
		t.Run(m.name, func(t *testing.T) {
			if m.root {
				needRoot(t)
			}
			cfg := testConfig(t, "unit")
			if err := testInit(cfg); err != nil {
				t.Fatal(err)
			}
			path := m.do(t, cfg)
			_, err := Open(cfg, zerolog.Nop())
			wantInsecure(t, err, path, m.found, m.fix)
		})
	}
	t.Run("sticky-root-parent-accepted", func(t *testing.T) {
		cfg := testConfig(t, "unit")
		if err := testInit(cfg); err != nil {
			t.Fatal(err)
		}
		chmod(t, filepath.Dir(cfg.DataDir), 0o777|os.ModeSticky)
		if os.Geteuid() == 0 {
			chown(t, filepath.Dir(cfg.DataDir), 0)
		}
		d, err := Open(cfg, zerolog.Nop())
		if os.Geteuid() != 0 {
			// Not root: a sticky world-writable directory of this user is refused.
			wantInsecure(t, err, filepath.Dir(cfg.DataDir), "mode 1777", "chmod go-w")
			return
		}
		if err != nil {
			t.Fatalf("a root-owned sticky parent (like /tmp) is accepted: %v", err)
		}
		d.Close()
	})
}

// TestInitRefusesUnsafeDataDir: init refuses a pre-created data_dir that
// another user owns or could write, or one under such a parent, and leaves
// it untouched.
func TestInitRefusesUnsafeDataDir(t *testing.T) {
	for _, tc := range []struct {
		name       string
		root       bool
		do         func(t *testing.T, cfg *configs.Config) string
		found, fix string
	}{
		{"data_dir-owner", true, func(t *testing.T, cfg *configs.Config) string {
			chown(t, cfg.DataDir, nobody)
			return cfg.DataDir
		}, "owned by uid 65534", "chown"},
		{"data_dir-group-writable", false, func(t *testing.T, cfg *configs.Config) string {
			chmod(t, cfg.DataDir, 0o770)
			return cfg.DataDir
		}, "mode 0770", "chmod go-w"},
		{"content-owner", true, func(t *testing.T, cfg *configs.Config) string {
			p := filepath.Join(cfg.DataDir, "lost+found")
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			chown(t, p, nobody)
			return p
		}, "owned by uid 65534", "chown"},
		{"parent-owner", true, func(t *testing.T, cfg *configs.Config) string {
			p := filepath.Dir(cfg.DataDir)
			chown(t, p, nobody)
			return p
		}, "owned by uid 65534", "chown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				needRoot(t)
			}
			cfg := testConfig(t, "unit")
			if err := os.Mkdir(cfg.DataDir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := tc.do(t, cfg)
			before := snapshot(t, cfg.DataDir)
			wantInsecure(t, testInit(cfg), path, tc.found, tc.fix)
			if after := snapshot(t, cfg.DataDir); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Errorf("a refused init changed data_dir:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
	t.Run("missing-data_dir-under-foreign-parent", func(t *testing.T) {
		needRoot(t)
		cfg := testConfig(t, "unit")
		parent := filepath.Dir(cfg.DataDir)
		chown(t, parent, nobody)
		wantInsecure(t, testInit(cfg), parent, "owned by uid 65534", "chown")
		if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused init created data_dir: %v", err)
		}
	})
}

// TestServeRefusesUnprotectedSourceKeys: as ssh does with an "UNPROTECTED
// PRIVATE KEY FILE", serve refuses a source key_file or key_passphrase_file
// that group or others can read, or that another user owns.
func TestServeRefusesUnprotectedSourceKeys(t *testing.T) {
	for _, tc := range []struct {
		name       string
		root       bool
		field      string
		mode       os.FileMode
		owner      int
		found, fix string
	}{
		{"key_file-world-readable", false, "key_file", 0o644, -1, "mode 0644", "chmod go-rwx"},
		{"key_file-group-readable", false, "key_file", 0o640, -1, "mode 0640", "chmod go-rwx"},
		{"key_passphrase_file-group-readable", false, "key_passphrase_file", 0o640, -1, "mode 0640", "chmod go-rwx"},
		{"key_file-foreign-owner", true, "key_file", 0o600, nobody, "owned by uid 65534", "chown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				needRoot(t)
			}
			cfg := testConfig(t, "unit")
			if err := testInit(cfg); err != nil {
				t.Fatal(err)
			}
			src := cfg.Sources["moi"]
			src.KeyPassphraseFile = filepath.Join(filepath.Dir(src.KeyFile), "id.pass")
			for _, p := range []string{src.KeyFile, src.KeyPassphraseFile} {
				if err := os.WriteFile(p, []byte("secret\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			mustOpen(t, &fixture{cfg: cfg})
			path := src.KeyFile
			if tc.field == "key_passphrase_file" {
				path = src.KeyPassphraseFile
			}
			chmod(t, path, tc.mode)
			if tc.owner >= 0 {
				chown(t, path, tc.owner)
			}
			_, err := Open(cfg, zerolog.Nop())
			wantInsecure(t, err, path, tc.found, tc.fix)
			if !strings.Contains(err.Error(), "sources.moi."+tc.field) {
				t.Errorf("the refusal must name the field sources.moi.%s: %v", tc.field, err)
			}
		})
	}
}

// TestReloadRefusesReadableKey: a configuration reloaded on SIGHUP is held
// to the same rule as at start: a key file others can read is refused and
// the running configuration stays.
func TestReloadRefusesReadableKey(t *testing.T) {
	f := newFixture(t, nil)
	src := f.cfg.Sources["moi"]
	path := filepath.Join(t.TempDir(), "c.yaml")
	write := func(key string) {
		y := `data_dir: ` + f.cfg.DataDir + `
sources:
  moi: {address: "` + src.Address + `", user: hbxfer, key_file: ` + key + `, known_hosts: ` + src.KnownHosts + `}
jobs:
  - name: extract
    source: moi
    remote_dir: /outbox
    pattern: "HR_*.txt"
    purpose: vaccination
`
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(src.KeyFile)
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	_, d, _ := f.serve(t)
	readable := filepath.Join(t.TempDir(), "id_copy")
	if err := os.WriteFile(readable, mustRead(t, src.KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	write(readable)
	err = d.Reload()
	wantInsecure(t, err, readable, "mode 0644", "chmod go-rwx")
	if got := d.Runner.CurrentConfig().Sources["moi"].KeyFile; got != src.KeyFile {
		t.Fatalf("a refused reload changed key_file to %s", got)
	}
}
