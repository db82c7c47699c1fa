package daemon

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"custodian/audit"
	"custodian/backup"
	"custodian/configs"
	"custodian/internal/sftpd"
	"custodian/internal/synth"
	"custodian/service"
	"custodian/transfer"
	"custodian/vault"
)

const testPassphrase = "a long test passphrase"

// gate blocks reads of one remote file until opened.
type gate struct {
	path    string
	reached chan struct{}
	open    chan struct{}
	once    sync.Once
}

func newGate(path string) *gate {
	return &gate{path: path, reached: make(chan struct{}), open: make(chan struct{})}
}

// release opens the gate if it is still closed (a test that fails midway
// must not leave the server's readers blocked).
func (g *gate) release() {
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

func (g *gate) hooks() *sftpd.Hooks {
	return &sftpd.Hooks{ReadAt: func(p string, b []byte, off int64, n int, err error) (int, error) {
		if p == g.path && off > 0 {
			g.once.Do(func() { close(g.reached) })
			<-g.open
		}
		return n, err
	}}
}

// otherInstallation is cfg with a new, empty data_dir (a fresh host).
func otherInstallation(t *testing.T, cfg *configs.Config) *configs.Config {
	t.Helper()
	short, err := os.MkdirTemp("", "cr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(short) })
	c := *cfg
	c.DataDir = filepath.Join(short, "data")
	return &c
}

// scrubAll decrypts every object the ledger at cfg names and checks it, as
// vault verify does.
func scrubAll(t *testing.T, cfg *configs.Config) int {
	t.Helper()
	l, err := audit.Open(cfg.LedgerPath(), audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n, _ := l.Size()
	plan, err := transfer.PlanScrub(l, n)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(cfg.VaultDir())
	if err != nil {
		t.Fatal(err)
	}
	ident, err := v.Unlock([]byte(testPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range plan.Items {
		if err := v.CheckObject(context.Background(), ident, it.Dataset); err != nil {
			t.Errorf("restored object: %v", err)
		}
	}
	return len(plan.Items)
}

// TestBackupDuringIngestRestores is the first "done when": a
// backup taken while a job is in the middle of a file restores, on a fresh
// data_dir, to an installation that starts, whose ledger and vault verify,
// and whose next run pulls only what the backup did not hold: no remote
// file is received twice.
func TestBackupDuringIngestRestores(t *testing.T) {
	g := newGate("/outbox/HR_3.txt")
	f := newFixture(t, g.hooks())
	t.Cleanup(g.release)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 300, Seed: 1}},
		synth.FileSpec{Name: "HR_2.txt", Options: synth.Options{Records: 200, Seed: 2}},
		synth.FileSpec{Name: "HR_3.txt", Options: synth.Options{Records: 4000, Seed: 3}})
	cl, _, stop := f.serve(t)
	ctx := context.Background()

	ran := make(chan error, 1)
	go func() { _, err := cl.Run(ctx, "extract", nil); ran <- err }()
	<-g.reached
	waitFor(t, "HR_1 and HR_2 to be committed", func() bool {
		ds, err := cl.Datasets(ctx)
		return err == nil && len(ds) == 2
	})
	out := filepath.Join(t.TempDir(), "backup")
	res, err := f.as(t, "adam").Backup(ctx, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects != 2 || res.ObjectsCopied != 2 || !strings.HasPrefix(res.ID, "bk-") {
		t.Fatalf("backup during ingest: %+v", res)
	}
	g.release()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if evs := eventsOfType(t, f.as(t, "auditor.a"), audit.EvBackupCreated); len(evs) != 1 || evs[0].Details["manifest_sha256"] != res.ManifestSHA256 ||
		evs[0].Details["objects_copied"] != "2" || evs[0].Details["backup_id"] != res.ID {
		t.Fatalf("backup.created: %+v", evs)
	}
	if b, err := os.ReadFile(filepath.Join(f.cfg.DataDir, backup.LastFile)); err != nil || !strings.Contains(string(b), res.ID) {
		t.Fatalf("last-backup.json: %s %v", b, err)
	}
	stop()

	// The backup holds no plaintext and no unencrypted private key.
	src := string(mustRead(t, filepath.Join(f.root, "outbox", "HR_1.txt")))
	record := strings.Split(src, "\n")[1]
	skey := strings.TrimSpace(string(mustRead(t, f.cfg.SigningKeyPath())))
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b := string(mustRead(t, p))
		for _, needle := range []string{record, skey, "PRIVATE+KEY", "AGE-SECRET-KEY"} {
			if strings.Contains(b, needle) {
				t.Errorf("%s contains %.20q", p, needle)
			}
		}
		return nil
	})

	cfg2 := otherInstallation(t, f.cfg)
	rr, err := Restore(ctx, cfg2, RestoreOptions{From: out, Passphrase: []byte(testPassphrase), Actor: "restorer"})
	if err != nil {
		t.Fatal(err)
	}
	if rr.Objects != 2 || rr.Backup.LedgerSize != res.LedgerSize || rr.EventIndex != res.LedgerSize {
		t.Fatalf("restore: %+v (backup %+v)", rr, res)
	}
	checkModes(t, cfg2)
	if n := scrubAll(t, cfg2); n != 2 {
		t.Fatalf("restored vault: %d objects", n)
	}

	f2 := &fixture{cfg: cfg2, srv: f.srv, root: f.root, pw: f.pw} // the same people, restored
	cl2, _, _ := f2.serve(t)
	rep, err := f2.as(t, "auditor.a").Verify(ctx, audit.VerifyOptions{})
	if err != nil || !rep.OK {
		t.Fatalf("audit verify of the restored ledger: %v %v", rep, err)
	}
	if evs := eventsOfType(t, f2.as(t, "auditor.a"), audit.EvBackupRestored); len(evs) != 1 || evs[0].Actor != "restorer" || evs[0].Details["backup_id"] != res.ID {
		t.Fatalf("backup.restored: %+v", evs)
	}
	run, err := cl2.Run(ctx, "extract", nil)
	if err != nil {
		t.Fatal(err)
	}
	var received []string
	for _, o := range run.Files {
		if o.DatasetID != "" {
			received = append(received, o.Remote)
		}
	}
	if len(received) != 1 || received[0] != "/outbox/HR_3.txt" {
		t.Fatalf("the run after the restore must pull only HR_3 (in flight at the backup), got %v: %+v", received, run.Files)
	}
	ds, err := cl2.Datasets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, d := range ds {
		per[d.RemotePath]++
	}
	if len(per) != 3 {
		t.Fatalf("datasets after the restore and the run: %v", per)
	}
	for p, n := range per {
		if n != 1 {
			t.Errorf("%s received %d times", p, n)
		}
	}
}

// checkModes: the restored installation has the modes the daemon requires.
func checkModes(t *testing.T, cfg *configs.Config) {
	t.Helper()
	if err := checkDataDir(cfg); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(cfg.DataDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := d.Info()
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		return nil
	})
}

// TestSecondBackupCopiesOnlyNew: a second backup to the same directory
// copies only the objects received since; the older snapshot is replaced.
func TestSecondBackupCopiesOnlyNew(t *testing.T) {
	f := newFixture(t, nil)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 100, Seed: 1}},
		synth.FileSpec{Name: "HR_2.txt", Options: synth.Options{Records: 100, Seed: 2}})
	cl, _, _ := f.serve(t)
	ctx := context.Background()
	if _, err := cl.Run(ctx, "extract", nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "backup")
	first, err := f.as(t, "adam").Backup(ctx, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.put(t, synth.FileSpec{Name: "HR_3.txt", Options: synth.Options{Records: 100, Seed: 3}})
	if _, err := cl.Run(ctx, "extract", nil); err != nil {
		t.Fatal(err)
	}
	var progress []backup.Progress
	second, err := f.as(t, "adam").Backup(ctx, out, func(p backup.Progress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	if first.ObjectsCopied != 2 || second.Objects != 3 || second.ObjectsCopied != 1 || second.ObjectsPresent != 2 ||
		second.BytesCopied >= second.Bytes || second.LedgerSize <= first.LedgerSize {
		t.Fatalf("first %+v, second %+v", first, second)
	}
	if len(progress) == 0 || progress[len(progress)-1].Objects != 3 {
		t.Fatalf("progress: %+v", progress)
	}
	snaps, _ := filepath.Glob(filepath.Join(out, "snapshot-*"))
	if len(snaps) != 1 {
		t.Fatalf("snapshots left: %v", snaps)
	}
	rep, err := backup.Verify(ctx, out, backup.VerifyOptions{Passphrase: []byte(testPassphrase)})
	if err != nil || !rep.OK || rep.Decrypted != 3 || rep.ID != second.ID {
		t.Fatalf("verify: %v %v", rep, err)
	}
	// Another installation's backup directory is refused.
	g := newFixture(t, nil)
	g.serve(t)
	if _, err := g.as(t, "adam").Backup(ctx, out, nil); !errors.Is(err, service.ErrRefused) || !strings.Contains(err.Error(), "another installation") {
		t.Fatalf("another installation's backup directory: %v", err)
	}
	if _, err := g.as(t, "adam").Backup(ctx, "relative/dir", nil); !errors.Is(err, service.ErrInvalid) {
		t.Fatalf("a relative directory: %v", err)
	}
}

// copyTree copies a backup directory for a tampering trial.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(filepath.Join(dst, rel), os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer out.Close()
		_, err = io.Copy(out, in)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func flipByte(t *testing.T, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// backedUp returns a fixture with two datasets, stopped, and a backup of it.
func backedUp(t *testing.T) (*fixture, string, *backup.Result, string) {
	t.Helper()
	f := newFixture(t, nil)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 100, Seed: 1}},
		synth.FileSpec{Name: "HR_2.txt", Options: synth.Options{Records: 100, Seed: 2}})
	cl, _, stop := f.serve(t)
	ctx := context.Background()
	if _, err := cl.Run(ctx, "extract", nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "backup")
	res, err := f.as(t, "adam").Backup(ctx, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, vk, err := f.as(t, "auditor.a").Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	return f, out, res, vk
}

// TestTamperedBackupFails: one changed byte in any file, a removed file or
// an edited manifest fails verification, naming the file; the intact
// backup passes (also against the auditors' key).
func TestTamperedBackupFails(t *testing.T) {
	_, out, res, vk := backedUp(t)
	ctx := context.Background()
	if rep, err := backup.Verify(ctx, out, backup.VerifyOptions{VerifierKey: vk}); err != nil || !rep.OK {
		t.Fatalf("intact backup: %v %v", rep, err)
	}
	text, _, _ := strings.Cut(string(mustRead(t, filepath.Join(out, backup.ManifestFile))), "\n\n")
	m, err := backup.ParseManifest(text + "\n")
	if err != nil {
		t.Fatal(err)
	}
	obj := ""
	for _, e := range m.Files {
		if strings.HasPrefix(e.Path, backup.ObjectsDir) {
			obj = e.Path
		}
	}
	type trial struct {
		name, file string
		do         func(dir string)
	}
	var trials []trial
	for _, e := range m.Files {
		trials = append(trials, trial{"flip " + e.Path, e.Path, func(dir string) { flipByte(t, filepath.Join(dir, e.Path)) }})
	}
	trials = append(trials,
		trial{"remove object", obj, func(dir string) { os.Remove(filepath.Join(dir, obj)) }},
		trial{"remove ledger", m.LedgerPath(), func(dir string) { os.Remove(filepath.Join(dir, m.LedgerPath())) }},
		trial{"edit manifest", backup.ManifestFile, func(dir string) {
			p := filepath.Join(dir, backup.ManifestFile)
			b := mustRead(t, p)
			// Drop an object's line: the manifest no longer names it.
			i := strings.Index(string(b), obj)
			j := strings.LastIndex(string(b[:i]), "\n")
			os.WriteFile(p, append(b[:j+1:j+1], b[i+len(obj)+1:]...), 0o600)
		}},
		trial{"flip manifest", backup.ManifestFile, func(dir string) { flipByte(t, filepath.Join(dir, backup.ManifestFile)) }},
	)
	for _, tr := range trials {
		dir := copyTree(t, out)
		tr.do(dir)
		rep, err := backup.Verify(ctx, dir, backup.VerifyOptions{VerifierKey: vk})
		if err != nil {
			t.Errorf("%s: %v", tr.name, err)
			continue
		}
		if rep.OK || !strings.Contains(rep.String(), tr.file) {
			t.Errorf("%s: want a failure naming %s, got\n%s", tr.name, tr.file, rep)
		}
	}
	_ = res
}

// TestRolledBackRestoreDetected: against a checkpoint the auditor kept
// after the backup was taken, the older backup is a rollback: verify fails
// and restore refuses, leaving data_dir empty; an older kept checkpoint
// passes.
func TestRolledBackRestoreDetected(t *testing.T) {
	f, out, _, _ := backedUp(t)
	ctx := context.Background()
	cl, _, stop := f.serve(t)
	f.put(t, synth.FileSpec{Name: "HR_3.txt", Options: synth.Options{Records: 10, Seed: 3}})
	if _, err := cl.Run(ctx, "extract", nil); err != nil {
		t.Fatal(err)
	}
	kept, vk, err := f.as(t, "auditor.a").Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stop()

	rep, err := backup.Verify(ctx, out, backup.VerifyOptions{Checkpoint: []byte(kept), VerifierKey: vk})
	if err != nil || rep.OK || !rep.Rollback {
		t.Fatalf("verify against a later kept checkpoint: want a rollback, got %v %v", rep, err)
	}
	cfg2 := otherInstallation(t, f.cfg)
	_, err = Restore(ctx, cfg2, RestoreOptions{From: out, Passphrase: []byte(testPassphrase), Checkpoint: []byte(kept), VerifierKey: vk})
	if !errors.Is(err, ErrBadBackup) || !strings.Contains(err.Error(), "ROLLBACK") {
		t.Fatalf("restore of a rolled-back backup: %v", err)
	}
	if _, err := os.Stat(cfg2.LedgerPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused restore left a ledger: %v", err)
	}

	// The checkpoint of the ledger as first backed up is older: it passes.
	l, err := audit.Open(filepath.Join(out, "snapshot-"+strconv.FormatInt(rep.LedgerSize, 10), backup.LedgerName), audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := l.Checkpoint()
	l.Close()
	if _, err := Restore(ctx, cfg2, RestoreOptions{From: out, Passphrase: []byte(testPassphrase), Checkpoint: cp, VerifierKey: vk}); err != nil {
		t.Fatalf("restore against the backup's own checkpoint: %v", err)
	}
	if _, err := Restore(ctx, cfg2, RestoreOptions{From: out, Passphrase: []byte(testPassphrase)}); !errors.Is(err, ErrAlreadyInitialized) {
		t.Fatalf("restore over an installation: %v", err)
	}
	if _, err := Open(cfg2, zerolog.Nop()); err != nil {
		t.Fatalf("the restored installation does not open: %v", err)
	}
}
