package daemon

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"custodian/audit"
	"custodian/configs"
	"custodian/internal/failpoint"
)

// testConfig is a valid configuration whose data_dir is a short path (the
// API socket's limit) that does not exist yet.
func testConfig(t *testing.T, unit string) *configs.Config {
	t.Helper()
	etc := t.TempDir()
	y := `data_dir: data
sources:
  moi: {address: "127.0.0.1:2222", user: hbxfer, key_file: id, known_hosts: kh}
jobs:
  - name: extract
    source: moi
    remote_dir: /outbox
    pattern: "HR_*.txt"
    purpose: vaccination
`
	cfg, err := configs.Parse([]byte(y), etc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Unit = unit
	short, err := os.MkdirTemp("", "ci")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(short) })
	cfg.DataDir = filepath.Join(short, "data")
	return cfg
}

func testInit(cfg *configs.Config) error {
	_, err := Init(cfg, InitOptions{Passphrase: []byte("a long test passphrase"), ScryptWorkFactor: 10, Actor: "installer"})
	return err
}

// TestInitUnitNames: any unit a person would type works; the ledger's first
// event keeps it as typed, and the signing key's name is derived from it.
func TestInitUnitNames(t *testing.T) {
	for _, tc := range []struct{ unit, key string }{
		{"", "custodian-ledger"},
		{"test-unit", "custodian-ledger/test-unit"},
		{"Health Bureau", "custodian-ledger/Health-Bureau"},
		{"連江縣衛生局", "custodian-ledger/連江縣衛生局"},
		{"連江縣 衛生局\u3000南竿衛生所", "custodian-ledger/連江縣-衛生局-南竿衛生所"},
		{" Health+Bureau\t\n", "custodian-ledger/Health-Bureau"},
	} {
		t.Run(tc.unit, func(t *testing.T) {
			if got := LedgerKeyName(tc.unit); got != tc.key {
				t.Errorf("LedgerKeyName(%q) = %q, want %q", tc.unit, got, tc.key)
			}
			cfg := testConfig(t, tc.unit)
			if err := testInit(cfg); err != nil {
				t.Fatalf("init with unit %q: %v", tc.unit, err)
			}
			d, err := Open(cfg, zerolog.Nop())
			if err != nil {
				t.Fatalf("open after init: %v", err)
			}
			defer d.Close()
			evs, err := d.Ledger.Events(0, 1)
			if err != nil || len(evs) != 1 {
				t.Fatalf("first event: %v %v", evs, err)
			}
			if got := evs[0].Details["unit"]; got != tc.unit {
				t.Errorf("first event keeps unit %q, want %q as typed", got, tc.unit)
			}
			cp, err := d.Ledger.Checkpoint()
			if err != nil {
				t.Fatal(err)
			}
			vkey, err := os.ReadFile(cfg.VerifierKeyPath())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := audit.ParseCheckpoint(cp, strings.TrimSpace(string(vkey))); err != nil {
				t.Errorf("checkpoint does not verify with %s: %v", cfg.VerifierKeyPath(), err)
			}
			if !strings.HasPrefix(string(cp), tc.key+"\n") {
				t.Errorf("checkpoint origin: %q", cp)
			}
		})
	}
}

// TestLedgerKeyNameAlwaysValid: whatever the unit, the derived name is one
// the note format accepts (no white space, no '+', no control character).
func TestLedgerKeyNameAlwaysValid(t *testing.T) {
	for _, unit := range []string{" ", "+", "\x00\x01", "a\u00a0b", "a\u200bb", "\xff\xfe", strings.Repeat("x", 300), "a/b"} {
		name := LedgerKeyName(unit)
		if _, _, err := audit.GenerateSigningKey(name); err != nil {
			t.Errorf("unit %q: key name %q refused: %v", unit, name, err)
		}
		if strings.ContainsAny(name, "+\n\x00\x01") {
			t.Errorf("unit %q: key name %q", unit, name)
		}
	}
	if LedgerKeyName(" ") == LedgerKeyName("+") {
		t.Error("units that sanitize to nothing must still get distinct names")
	}
}

// snapshot lists every path under dir with its mode, to compare "as it was".
func snapshot(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == dir {
			return filepath.SkipAll
		}
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel+" "+fi.Mode().String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestInitFailureLeavesNothing injects a failure after each step of init:
// data_dir is left as it was (absent, or present and empty), and a second
// init succeeds.
func TestInitFailureLeavesNothing(t *testing.T) {
	injected := errors.New("injected failure")
	for _, step := range initSteps {
		for _, precreate := range []bool{false, true} {
			name := step + "/absent"
			if precreate {
				name = step + "/empty"
			}
			t.Run(name, func(t *testing.T) {
				cfg := testConfig(t, "Health Bureau")
				if precreate {
					if err := os.Mkdir(cfg.DataDir, 0o700); err != nil {
						t.Fatal(err)
					}
				}
				parent := filepath.Dir(cfg.DataDir)
				before := snapshot(t, parent)
				reached := false
				initHook = func(s string) error {
					if s == step {
						reached = true
						return injected
					}
					return nil
				}
				err := testInit(cfg)
				initHook = func(string) error { return nil }
				if !reached || !errors.Is(err, injected) {
					t.Fatalf("step %s: want the injected failure, got %v (reached %v)", step, err, reached)
				}
				if after := snapshot(t, parent); strings.Join(after, "\n") != strings.Join(before, "\n") {
					t.Fatalf("a failed init changed %s:\nbefore %q\nafter  %q", parent, before, after)
				}
				if err := testInit(cfg); err != nil {
					t.Fatalf("second init: %v", err)
				}
				d, err := Open(cfg, zerolog.Nop())
				if err != nil {
					t.Fatalf("open after the second init: %v", err)
				}
				d.Close()
			})
		}
	}
}

// TestInitKilledMidway kills an init (SIGKILL, as a power cut would: no
// clean-up runs) after each step, in a child process, then runs init again:
// it removes what the killed one left and succeeds, and the daemon opens.
func TestInitKilledMidway(t *testing.T) {
	if dir := os.Getenv("CUSTODIAN_TEST_INIT_DATA_DIR"); dir != "" {
		cfg := testConfig(t, "Health Bureau")
		cfg.DataDir = dir
		err := testInit(cfg)
		t.Fatalf("the failpoint did not kill init (err %v)", err)
	}
	for _, step := range initSteps {
		t.Run(step, func(t *testing.T) {
			cfg := testConfig(t, "Health Bureau")
			cmd := exec.Command(os.Args[0], "-test.run=^TestInitKilledMidway$", "-test.count=1")
			cmd.Env = append(os.Environ(), "CUSTODIAN_TEST_INIT_DATA_DIR="+cfg.DataDir, failpoint.Env+"=init."+step)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child init was not killed at %s: %v\n%s", step, err, out)
			}
			if _, err := os.Stat(cfg.LedgerPath()); err == nil && step != "moved-ledger" {
				t.Fatalf("killed at %s, yet %s exists", step, cfg.LedgerPath())
			}
			if d, err := Open(cfg, zerolog.Nop()); err == nil {
				d.Close()
				if step != "moved-ledger" {
					t.Fatalf("killed at %s, yet the daemon opened", step)
				}
			}
			err = testInit(cfg)
			if step == "moved-ledger" {
				// Killed after the commit point: the installation is complete.
				if !errors.Is(err, ErrAlreadyInitialized) {
					t.Fatalf("init after a kill past the commit point: %v", err)
				}
			} else if err != nil {
				t.Fatalf("init after a kill at %s: %v", step, err)
			}
			leftovers, _ := filepath.Glob(filepath.Join(cfg.DataDir, initPrefix+"*"))
			if len(leftovers) > 0 {
				t.Errorf("left behind: %v", leftovers)
			}
			d, err := Open(cfg, zerolog.Nop())
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			d.Close()
		})
	}
}
