package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"custodian/audit"
	"custodian/configs"
	"custodian/daemon"
	"custodian/internal/sftpd/sftpdtest"
	"custodian/service"
)

// install creates an installation whose one source is an in-process SFTP
// server on 127.0.0.1.
func install(t *testing.T) (*configs.Config, *sftpdtest.Server) {
	t.Helper()
	s := sftpdtest.Start(t, sftpdtest.Options{Dirs: []string{"outbox"}})
	y := `data_dir: data
sources:
  moi: {address: "` + s.Addr() + `", user: hbxfer, key_file: id, known_hosts: known_hosts}
jobs:
  - {name: extract, source: moi, officer: o, remote_dir: /outbox, pattern: "*.txt", purpose: vaccination}
`
	cfgPath := filepath.Join(s.Etc, "custodian.yaml")
	if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := daemon.Init(cfg, daemon.InitOptions{Passphrase: []byte("a long test passphrase"), ScryptWorkFactor: 10}); err != nil {
		t.Fatal(err)
	}
	return cfg, s
}

func find(fs []Finding, check string) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Check == check {
			out = append(out, f)
		}
	}
	return out
}

// TestDoctorFindsWorldReadableKey is the "done when": a signing
// key others can read is a failure, naming the file and the fix.
func TestDoctorFindsWorldReadableKey(t *testing.T) {
	cfg, _ := install(t)
	ctx := context.Background()
	fs := Run(ctx, Options{Config: cfg, Root: t.TempDir()})
	if Failed(fs) {
		t.Fatalf("a sound installation fails: %+v", fs)
	}
	if err := os.Chmod(cfg.SigningKeyPath(), 0o644); err != nil {
		t.Fatal(err)
	}
	fs = Run(ctx, Options{Config: cfg, Root: t.TempDir()})
	perms := find(fs, "permissions")
	if !Failed(fs) || len(perms) == 0 || perms[0].Severity != Fail ||
		!strings.Contains(perms[0].Message, cfg.SigningKeyPath()) || !strings.Contains(perms[0].Fix, "chmod go-rwx") {
		t.Fatalf("a world-readable signing key: %+v", perms)
	}
}

// TestDoctorHost: findings from the host's files (passwd, mountinfo, sys),
// the last verification and backup, and the sources (pinned, reachable on
// 127.0.0.1; an unpinned one fails).
func TestDoctorHost(t *testing.T) {
	cfg, srv := install(t)
	ctx := context.Background()
	root := t.TempDir()
	write := func(p, s string) {
		p = filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dataDir, _ := filepath.EvalSymlinks(cfg.DataDir)
	write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"+
		"me:x:"+itoa(os.Geteuid())+":1000::/home/me:/usr/sbin/nologin\n"+
		"alice:x:1001:1001::/home/alice:/bin/bash\n"+
		"daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n")
	write("proc/self/mountinfo", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"+
		"30 22 253:0 / "+filepath.Dir(dataDir)+" rw - ext4 /dev/mapper/vg-data rw\n")
	// An LVM volume (253:0) on a LUKS device (253:1).
	write("sys/dev/block/253:0/dm/uuid", "LVM-abc\n")
	os.MkdirAll(filepath.Join(root, "sys/dev/block/253:0/slaves/dm-1"), 0o755)
	write("sys/class/block/dm-1/dev", "253:1\n")
	write("sys/dev/block/253:1/dm/uuid", "CRYPT-LUKS2-0123-luks\n")
	write("sys/dev/block/253:1/dm/name", "luks-data\n")
	write("run/systemd/timesync/synchronized", "")

	o := Options{Config: cfg, Root: root, Reach: true, Timedatectl: "custodian-no-such-command"}
	fs := Run(ctx, o)
	expect := func(check string, sev Severity, substr string) {
		t.Helper()
		got := find(fs, check)
		if len(got) == 0 || got[0].Severity != sev || !strings.Contains(got[0].Message, substr) {
			t.Errorf("%s: want %s containing %q, got %+v", check, sev, substr, got)
		}
	}
	if os.Geteuid() == 0 {
		expect("service account", Warn, "data_dir is root's") // as in CI containers
	} else {
		expect("service account", OK, "no login shell")
	}
	expect("dedicated host", Warn, "alice (/bin/bash)")
	expect("disk encryption", OK, "luks-data")
	expect("clock", OK, "synchronised")
	expect("ledger verification", Warn, "not been verified")
	expect("backup", Warn, "no backup")
	expect("source moi", OK, "its SSH server answers")
	expect("free space", OK, "nothing received")

	// Recent verification and backup; an encrypted device no more.
	os.WriteFile(filepath.Join(cfg.DataDir, "verified.checkpoint"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(cfg.DataDir, "last-backup.json"), []byte(`{"id":"bk-9-0123456789ab","time":"`+time.Now().UTC().Format(time.RFC3339)+`","dir":"/b"}`), 0o600)
	write("sys/dev/block/253:1/dm/uuid", "LVM-plain\n")
	write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\nme:x:"+itoa(os.Geteuid())+":1000::/home/me:/bin/sh\n")
	// A second source whose host key is not pinned.
	kh := filepath.Join(t.TempDir(), "kh")
	os.WriteFile(kh, nil, 0o600)
	cfg.Sources["other"] = &configs.Source{Address: "127.0.0.1:1", User: "u", KeyFile: srv.KeyFile, KnownHosts: kh}
	fs = Run(ctx, Options{Config: cfg, Root: root, Timedatectl: "custodian-no-such-command"})
	expect("ledger verification", OK, "last verified")
	expect("backup", OK, "bk-9-0123456789ab")
	expect("disk encryption", Warn, "not on dm-crypt")
	if os.Geteuid() != 0 {
		expect("service account", Warn, "login shell /bin/sh")
	}
	expect("dedicated host", OK, "no interactive accounts")
	expect("source other", Fail, "no host key")
	if !Failed(fs) {
		t.Error("an unpinned source must fail")
	}
}

// TestDoctorWithDaemonHoldingLedger: while another handle holds the
// ledger's lock and no API answers, doctor skips the ingest rate and says
// so, without waiting or failing.
func TestDoctorWithDaemonHoldingLedger(t *testing.T) {
	cfg, _ := install(t)
	skey, _ := os.ReadFile(cfg.SigningKeyPath())
	signer, err := audit.NewSigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(cfg.LedgerPath(), audit.Options{Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fs := Run(context.Background(), Options{Config: cfg, Root: t.TempDir()})
	got := find(fs, "free space")
	if len(got) != 1 || !strings.Contains(got[0].Message, "skipped: the daemon holds the ledger") {
		t.Fatalf("free space with the ledger locked: %+v", got)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestDoctorJobOfficers: a job whose officer cannot hold custody (as the
// daemon's status says) is a warning with its fix; good officers are one
// OK line; a daemon that does not answer leaves the check undone, not
// failed.
func TestDoctorJobOfficers(t *testing.T) {
	cfg, _ := install(t)
	status := func(jobs ...service.JobStatus) func(context.Context) (service.Status, error) {
		return func(context.Context) (service.Status, error) {
			return service.Status{Daemon: &service.DaemonStatus{Jobs: jobs}}, nil
		}
	}
	fs := Run(context.Background(), Options{Config: cfg, Root: t.TempDir(), Status: status(
		service.JobStatus{Name: "extract", Officer: "olga"},
		service.JobStatus{Name: "changes", Officer: "nobody", OfficerProblem: "no account nobody: create it"})})
	if got := find(fs, "job changes"); len(got) != 1 || got[0].Severity != Warn || !strings.Contains(got[0].Message, "nobody") || got[0].Fix == "" {
		t.Fatalf("a bad officer: %+v", got)
	}
	if got := find(fs, "job extract"); len(got) != 0 {
		t.Fatalf("a good officer reported: %+v", got)
	}
	fs = Run(context.Background(), Options{Config: cfg, Root: t.TempDir(), Status: status(service.JobStatus{Name: "extract", Officer: "olga"})})
	if got := find(fs, "job officers"); len(got) != 1 || got[0].Severity != OK {
		t.Fatalf("good officers: %+v", got)
	}
	fs = Run(context.Background(), Options{Config: cfg, Root: t.TempDir(), Status: func(context.Context) (service.Status, error) {
		return service.Status{}, daemon.ErrNotRunning
	}})
	if got := find(fs, "job officers"); len(got) != 1 || got[0].Severity != OK || !strings.Contains(got[0].Message, "not checked") {
		t.Fatalf("no daemon: %+v", got)
	}
}
