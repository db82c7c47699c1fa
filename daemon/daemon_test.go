package daemon

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"custodian/accounts"
	"custodian/audit"
	"custodian/configs"
	"custodian/internal/sftpd"
	"custodian/internal/sftpd/sftpdtest"
	"custodian/internal/synth"
	"custodian/service"
	"custodian/transfer"
)

type fixture struct {
	cfg  *configs.Config
	srv  *sftpd.Server
	root string
	// pw are the test people's passwords (set at their first login), and
	// clients their sessions with the daemon that serves now.
	pw      map[string]string
	clients map[string]*Client
}

// The test people, made at init (a test-only bootstrap of four roles).
var testPeople = []service.BootstrapAccount{
	{Username: "adam", FullName: "Adam Admin", Unit: "test-unit", Roles: []accounts.Role{accounts.RoleAdmin}},
	{Username: "sue", FullName: "Sue Supervisor", Unit: "test-unit", Roles: []accounts.Role{accounts.RoleSupervisor}},
	{Username: "officer.a", FullName: "Olga Officer", Unit: "test-unit", Roles: []accounts.Role{accounts.RoleOfficer}},
	{Username: "auditor.a", FullName: "Audrey Auditor", Unit: "test-unit", Roles: []accounts.Role{accounts.RoleAuditor}},
	{Username: "dora", FullName: "Dora Director", Unit: "test-unit", Roles: []accounts.Role{accounts.RoleDirector}},
	{Username: "cora", FullName: "Cora Contractor", Unit: "test-unit", Roles: []accounts.Role{accounts.RoleContractor},
		Contractor: &accounts.Agreement{Reference: "NDA-2026-7", Ends: time.Now().AddDate(1, 0, 0)}},
}

// as returns the client of a test person logged in to the serving daemon.
func (f *fixture) as(t *testing.T, user string) *Client {
	t.Helper()
	cl, ok := f.clients[user]
	if !ok {
		t.Fatalf("%s is not logged in", user)
	}
	return cl
}

// loginAll logs every test person in (the first time with the issued
// password, setting a new one).
func (f *fixture) loginAll(t *testing.T) {
	t.Helper()
	anon := NewClient(f.cfg.SocketPath())
	f.clients = map[string]*Client{}
	for _, p := range testPeople {
		req := service.LoginRequest{Username: p.Username, Password: f.pw[p.Username]}
		if strings.HasPrefix(req.Password, "issued:") {
			req.Password, req.NewPassword = strings.TrimPrefix(req.Password, "issued:"), "Test-Password-"+strings.ToUpper(p.Username[:2])+"9"
		}
		res, err := anon.Login(context.Background(), req)
		if err != nil {
			t.Fatalf("login %s: %v", p.Username, err)
		}
		if req.NewPassword != "" {
			f.pw[p.Username] = req.NewPassword
		}
		f.clients[p.Username] = anon.WithToken(res.Token)
	}
}

func newFixture(t *testing.T, hooks *sftpd.Hooks, extraJobs ...string) *fixture {
	t.Helper()
	s := sftpdtest.Start(t, sftpdtest.Options{Dirs: []string{"outbox", "slow"}, KnownHostsFile: "kh", Hooks: hooks})
	srv, root, etc := s.Server, s.Root, s.Etc
	y := `data_dir: data
unit: test-unit
accounts: {require_totp: []}
sources:
  moi: {address: "` + srv.Addr() + `", user: hbxfer, key_file: id, known_hosts: kh}
jobs:
  - name: extract
    source: moi
    officer: officer.a
    remote_dir: /outbox
    pattern: "HR_*.txt"
    records: {trailer: '^TRL(\d+)$', header: '^HDR\|'}
    purpose: vaccination
    retry: {attempts: 1}
` + strings.Join(extraJobs, "")
	cfg, err := configs.Parse([]byte(y), etc)
	if err != nil {
		t.Fatal(err)
	}
	// Unix socket paths are limited to 108 bytes; keep data_dir short.
	short, err := os.MkdirTemp("", "cd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(short) })
	cfg.DataDir = filepath.Join(short, "data")
	issued, err := Init(cfg, InitOptions{Passphrase: []byte("a long test passphrase"), ScryptWorkFactor: 10, Actor: "installer",
		Accounts: testPeople, HashParams: accounts.TestParams})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{cfg: cfg, srv: srv, root: root, pw: map[string]string{}}
	for _, x := range issued {
		f.pw[x.Username] = "issued:" + x.Password
	}
	return f
}

func (f *fixture) put(t *testing.T, specs ...synth.FileSpec) {
	t.Helper()
	if err := synth.GenerateTree(filepath.Join(f.root, "outbox"), specs); err != nil {
		t.Fatal(err)
	}
}

// serve starts the daemon and returns a client and a stop function that
// waits for a clean shutdown.
func (f *fixture) serve(t *testing.T) (*Client, *Daemon, func()) {
	t.Helper()
	return f.serveWith(t, nil)
}

func TestServeEndToEnd(t *testing.T) {
	f := newFixture(t, nil)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 500, Seed: 1}},
		synth.FileSpec{Name: "HR_2.txt", Options: synth.Options{Records: 5, Seed: 2, TrailerDelta: 1}})
	cl, _, stop := f.serve(t)
	ctx := context.Background()

	fi, err := os.Stat(f.cfg.SocketPath())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket must be 0600: %v %v", fi.Mode(), err)
	}
	if fi, _ := os.Stat(f.cfg.DataDir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("data_dir must be 0700, is %v", fi.Mode().Perm())
	}
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	me, _ := user.Current()
	if st.Caller.Name != "officer.a" || st.Caller.HostUser != me.Username || st.Caller.UID != os.Getuid() {
		t.Fatalf("the caller must be the session's person, with the host account from peer credentials: %+v", st.Caller)
	}

	var progress int
	res, err := cl.Run(ctx, "extract", func(transfer.Progress) { progress++ })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 2 || res.Actor != "officer.a" || !res.Failed() {
		t.Fatalf("run: %+v", res)
	}
	if progress == 0 {
		t.Error("no progress was streamed")
	}
	if _, err := cl.Run(ctx, "nope", nil); err == nil || !strings.Contains(err.Error(), "unknown job") {
		t.Fatalf("unknown job: %v", err)
	}

	ds, err := cl.Datasets(ctx)
	if err != nil || len(ds) != 2 {
		t.Fatalf("datasets: %v %d", err, len(ds))
	}
	for _, x := range ds {
		if x.State != string(audit.StateQuarantined) {
			continue
		}
		if _, err := cl.Release(ctx, x.ID, "short"); err == nil || !strings.Contains(err.Error(), "reason") {
			t.Fatalf("release without a real reason: %v", err)
		}
		if _, err := cl.Repull(ctx, x.ID, "still the same file on the server"); err != nil {
			t.Fatalf("repull: %v", err)
		}
		r, err := cl.Release(ctx, x.ID, "count confirmed wrong by the provider")
		if err != nil || r.State != string(audit.StateReleased) {
			t.Fatalf("release: %+v %v", r, err)
		}
	}
	if _, err := cl.Release(ctx, "ds-missing", "no such dataset at all"); err == nil || !strings.Contains(err.Error(), "no such dataset") {
		t.Fatalf("release of an unknown dataset: %v", err)
	}
	det, err := cl.Dataset(ctx, ds[0].ID)
	if err != nil || len(det.Timeline) == 0 || det.Timeline[0].Type != "dataset.received" {
		t.Fatalf("dataset detail: %+v %v", det, err)
	}
	rep, err := f.as(t, "auditor.a").Verify(ctx, audit.VerifyOptions{})
	if err != nil || !rep.OK {
		t.Fatalf("verify: %v %v", rep, err)
	}
	cp, vk, err := f.as(t, "auditor.a").Checkpoint(ctx)
	if err != nil || !strings.HasPrefix(cp, "custodian-ledger/test-unit\n") || vk == "" {
		t.Fatalf("checkpoint: %q %q %v", cp, vk, err)
	}
	// Export, then verify the copy offline against the kept checkpoint.
	exp := filepath.Join(t.TempDir(), "export.db")
	out, err := os.Create(exp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.as(t, "auditor.a").Export(ctx, out); err != nil {
		t.Fatal(err)
	}
	out.Close()
	l, err := audit.Open(exp, audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	rep2, err := audit.Verify(l, audit.VerifyOptions{Checkpoint: []byte(cp), VerifierKey: vk})
	l.Close()
	if err != nil || !rep2.OK {
		t.Fatalf("offline verify of the export: %v %v", rep2, err)
	}
	evs, err := f.as(t, "auditor.a").Log(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	types := map[audit.EventType]int{}
	for _, e := range evs {
		types[audit.EventType(e.Type)]++
		if e.Actor == "" {
			t.Errorf("event %d has no actor", e.Index)
		}
	}
	for _, want := range []audit.EventType{"installation.initialized", "daemon.started", "job.started", "dataset.received", "job.failed", "audit.verified", "audit.exported", "dataset.released", "dataset.repulled"} {
		if types[want] == 0 {
			t.Errorf("no %s event in %v", want, types)
		}
	}
	stop()
	if _, err := os.Stat(f.cfg.SocketPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind after shutdown: %v", err)
	}
	if _, err := cl.Status(ctx); !errors.Is(err, ErrNotRunning) {
		t.Errorf("after shutdown the client must say the daemon is not running: %v", err)
	}
}

func TestInitRefusesOverwrite(t *testing.T) {
	f := newFixture(t, nil)
	_, err := Init(f.cfg, InitOptions{Passphrase: []byte("another long passphrase"), ScryptWorkFactor: 10})
	if !errors.Is(err, ErrAlreadyInitialized) {
		t.Fatalf("want ErrAlreadyInitialized, got %v", err)
	}
	if _, err := Init(f.cfg, InitOptions{Passphrase: []byte("short")}); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Fatalf("short passphrase: %v", err)
	}
}

func TestOneDaemonOwnsTheLedger(t *testing.T) {
	f := newFixture(t, nil)
	f.serve(t)
	if _, err := Open(f.cfg, zerolog.Nop()); !errors.Is(err, ErrRunning) {
		t.Fatalf("a second daemon must be refused, got %v", err)
	}
}

func TestRecoveryRemovesPartialAndSetsAsideOrphanObjects(t *testing.T) {
	f := newFixture(t, nil)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1}})
	cl, d, stop := f.serve(t)
	if _, err := cl.Run(context.Background(), "extract", nil); err != nil {
		t.Fatal(err)
	}
	// A crash left a partial object and an object whose ledger commit never happened.
	w, err := d.Vault.Create(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("ciphertext in progress"))
	orphan, err := d.Vault.Create(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	orphan.Write([]byte("stored but never committed"))
	info, err := orphan.Commit()
	if err != nil {
		t.Fatal(err)
	}
	// And a key file whose object never reached objects/ (a crash between
	// the two renames of a commit).
	keyOnly, err := d.Vault.Create(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	keyOnly.Write([]byte("key stored, object not"))
	kinfo, err := keyOnly.Commit()
	if err != nil {
		t.Fatal(err)
	}
	kobj, _ := d.Vault.Path(kinfo.ID)
	os.Remove(kobj)
	stop()

	d2, err := Open(f.cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if d2.Vault.Exists(info.ID) {
		t.Error("orphan object is still among the vault's objects after recovery")
	}
	// Set aside, not destroyed: destruction is for a supervisor to approve,
	// and a damaged ledger may have lost the record that named it.
	if fi, err := os.Stat(filepath.Join(f.cfg.VaultDir(), "orphans", info.ID+".age")); err != nil || fi.Size() == 0 {
		t.Errorf("orphan object must be kept in vault/orphans: %v", err)
	}
	if kp, _ := d2.Vault.KeyFilePath(kinfo.ID); fileExists(kp) || !fileExists(filepath.Join(f.cfg.VaultDir(), "orphans", kinfo.ID+".key")) {
		t.Error("a key file without its object must be set aside like an orphan object")
	}
	if tmp, _ := os.ReadDir(filepath.Join(f.cfg.VaultDir(), "tmp")); len(tmp) != 0 {
		t.Errorf("partial objects survived recovery: %d", len(tmp))
	}
	ds, _ := d2.Ledger.Datasets()
	if len(ds) != 1 || !d2.Vault.Exists(ds[0].ObjectID) {
		t.Fatalf("the committed dataset must keep its object: %+v", ds)
	}
	evs, _ := d2.Ledger.Events(0, 1000)
	var rec *audit.Event
	for i := range evs {
		if evs[i].Type == "vault.recovered" {
			rec = &evs[i]
		}
	}
	want := strings.Join(slices.Sorted(slices.Values([]string{info.ID, kinfo.ID})), " ")
	if rec == nil || rec.Details["orphan_objects_set_aside"] != "2" || rec.Details["orphan_objects"] != want || rec.Details["partial_objects_removed"] != "1" {
		t.Fatalf("recovery must be on the ledger: %+v", rec)
	}
	w.Abort()
}

func TestRunsOfOneJobNeverOverlap(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 100)
	hooks := &sftpd.Hooks{ReadAt: func(path string, p []byte, off int64, n int, err error) (int, error) {
		if strings.HasSuffix(path, "HR_1.txt") {
			entered <- struct{}{}
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}
		return n, err
	}}
	f := newFixture(t, hooks)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1}})
	cl, _, _ := f.serve(t)
	first := make(chan error, 1)
	go func() { _, err := cl.Run(context.Background(), "extract", nil); first <- err }()
	<-entered // the first run is inside the transfer
	_, err := cl.Run(context.Background(), "extract", nil)
	if err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("a second run while the first is in progress must be refused, got %v", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains([]byte(err.Error()), []byte("extract")) {
		t.Errorf("the refusal should name the job: %v", err)
	}
}

// TestOtherJobsKeepRunning: while one job is stuck on a stalled server read,
// another job runs to completion.
func TestOtherJobsKeepRunning(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 100)
	hooks := &sftpd.Hooks{ReadAt: func(path string, p []byte, off int64, n int, err error) (int, error) {
		if strings.HasPrefix(path, "/slow/") {
			entered <- struct{}{}
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}
		return n, err
	}}
	slowJob := `  - name: slow
    source: moi
    officer: officer.b
    remote_dir: /slow
    pattern: "HR_*.txt"
    records: {trailer: '^TRL(\d+)$'}
    purpose: vaccination
    retry: {attempts: 1}
`
	f := newFixture(t, hooks, slowJob)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1}})
	if err := synth.GenerateTree(filepath.Join(f.root, "slow"), []synth.FileSpec{{Name: "HR_9.txt", Options: synth.Options{Records: 5, Seed: 9}}}); err != nil {
		t.Fatal(err)
	}
	cl, _, _ := f.serve(t)
	slow := make(chan error, 1)
	go func() { _, err := cl.Run(context.Background(), "slow", nil); slow <- err }()
	<-entered
	res, err := cl.Run(context.Background(), "extract", nil)
	if err != nil || res.Failed() || len(res.Files) != 1 {
		t.Fatalf("the other job must run while one is stuck: %+v %v", res, err)
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
}

// TestReload: SIGHUP's handler swaps in a valid configuration, refuses an
// invalid one or a data_dir change, and records each outcome on the ledger.
func TestReload(t *testing.T) {
	f := newFixture(t, nil)
	src := f.cfg.Sources["moi"]
	write := func(dataDir, pattern, extra string) string {
		y := `data_dir: ` + dataDir + `
sources:
  moi: {address: "` + src.Address + `", user: hbxfer, key_file: ` + src.KeyFile + `, known_hosts: ` + src.KnownHosts + `}
jobs:
  - name: extract
    source: moi
    remote_dir: /outbox
    pattern: "` + pattern + `"
    records: {trailer: '^TRL(\d+)$', header: '^HDR\|'}
    purpose: vaccination
    retry: {attempts: 1}
` + extra
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	path := write(f.cfg.DataDir, "HR_*.txt", "")
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1}})
	cl, d, _ := f.serve(t)
	ctx := context.Background()

	// A new job appears.
	extra := `  - name: second
    source: moi
    schedule: "CRON_TZ=Asia/Taipei 0 3 * * *"
    remote_dir: /outbox
    pattern: "HR_*.txt"
    records: {trailer: '^TRL(\d+)$'}
    purpose: vaccination
`
	if err := os.WriteFile(path, mustRead(t, write(f.cfg.DataDir, "HR_*.txt", extra)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	st, err := cl.Status(ctx)
	if err != nil || len(st.Jobs) != 2 {
		t.Fatalf("after reload: %+v %v", st, err)
	}
	if _, err := cl.Run(ctx, "second", nil); err != nil {
		t.Fatalf("the new job must run: %v", err)
	}
	// An invalid file and a data_dir change are refused; the old jobs stay.
	for _, bad := range [][]byte{[]byte("jobs: [{name: x}]\n"), mustRead(t, write(t.TempDir(), "HR_*.txt", ""))} {
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := d.Reload(); err == nil {
			t.Fatal("a bad configuration must be refused")
		}
	}
	if st, _ := cl.Status(ctx); len(st.Jobs) != 2 {
		t.Fatalf("a refused reload must change nothing: %+v", st.Jobs)
	}
	evs, _ := f.as(t, "auditor.a").Log(ctx, 0, 1000)
	got := map[audit.EventType]int{}
	for _, e := range evs {
		got[audit.EventType(e.Type)]++
	}
	if got["config.reloaded"] != 1 || got["config.reload_refused"] != 2 {
		t.Fatalf("reloads on the ledger: %v", got)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
