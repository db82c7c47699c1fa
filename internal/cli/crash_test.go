package cli

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"custodian/accounts"
	"custodian/audit"
	"custodian/configs"
	"custodian/daemon"
	"custodian/internal/failpoint"
	"custodian/internal/sftpd/sftpdtest"
	"custodian/internal/synth"
	"custodian/service"
	"custodian/vault"
)

// TestMain lets the test binary act as the custodian command, so the crash
// test can run `custodian serve` as a real child process and SIGKILL it.
func TestMain(m *testing.M) {
	if os.Getenv("CUSTODIAN_TEST_AS_CLI") == "1" {
		os.Args = append([]string{"custodian"}, os.Args[1:]...)
		os.Exit(Execute())
	}
	// No test reads or writes the session file of the person running them.
	if os.Getenv("CUSTODIAN_SESSION_FILE") == "" {
		dir, err := os.MkdirTemp("", "custodian-cli-test")
		if err != nil {
			panic(err)
		}
		os.Setenv("CUSTODIAN_SESSION_FILE", filepath.Join(dir, "session"))
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// crashTrials is the number of kills; CUSTODIAN_CRASH_TRIALS raises it for
// the documented long run.
func crashTrials(t *testing.T) int {
	if s := os.Getenv("CUSTODIAN_CRASH_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("CUSTODIAN_CRASH_TRIALS=%q: want a positive number", s)
		}
		return n
	}
	if testing.Short() {
		return 6
	}
	return 30
}

// TestCrashDuringIngest kills `custodian serve` with SIGKILL at many points of
// an ingest, some chosen (failpoints between the vault and the ledger and
// between the ledger and the remote move), the rest at random moments, and
// restarts it each time. At the end: the ledger verifies, every object
// belongs to exactly one dataset and every dataset has its object, no partial
// object remains, and every remote file was ingested exactly once.
func TestCrashDuringIngest(t *testing.T) {
	trials := crashTrials(t)
	etc, err := os.MkdirTemp("", "cc") // short: Unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(etc)
	s := sftpdtest.Start(t, sftpdtest.Options{Dirs: []string{"outbox", "archive"}, Etc: etc, KnownHostsFile: "kh"})
	srv, root := s.Server, s.Root
	outbox := filepath.Join(root, "outbox")
	cfgPath := filepath.Join(etc, "c.yaml")
	y := `data_dir: data
sources:
  moi: {address: "` + srv.Addr() + `", user: hbxfer, key_file: id, known_hosts: kh, sessions: 2}
jobs:
  - name: extract
    source: moi
    officer: officer.a
    remote_dir: /outbox
    pattern: "HR_*.txt"
    records: {trailer: '^TRL(\d+)$', header: '^HDR\|'}
    purpose: vaccination
    after_pull: move:/archive
    retry: {attempts: 1}
`
	if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	issued, err := daemon.Init(cfg, daemon.InitOptions{Passphrase: []byte("crash test passphrase"), ScryptWorkFactor: 10,
		Accounts: []service.BootstrapAccount{{Username: "officer.a", FullName: "Olga Officer", Roles: []accounts.Role{accounts.RoleOfficer}}}})
	if err != nil {
		t.Fatal(err)
	}
	password, first := issued[0].Password, true

	points := []string{"ingest.before-object-commit", "ingest.after-object-commit", "ingest.after-ledger-commit"}
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	var names []string
	anon := daemon.NewClient(cfg.SocketPath())
	for trial := 0; trial < trials; trial++ {
		// Two new files per trial, so every kill lands during real work.
		var specs []synth.FileSpec
		for k := 0; k < 2; k++ {
			n := fmt.Sprintf("HR_%03d_%d.txt", trial, k)
			specs = append(specs, synth.FileSpec{Name: n, Options: synth.Options{Records: 2000 + rng.IntN(20000), Seed: uint64(trial*2 + k)}})
			names = append(names, n)
		}
		if err := synth.GenerateTree(outbox, specs); err != nil {
			t.Fatal(err)
		}
		fp := ""
		if trial%2 == 0 {
			fp = points[(trial/2)%len(points)] + "@" + strconv.Itoa(1+rng.IntN(2))
		}
		child := startServe(t, cfgPath, fp)
		waitUp(t, anon, child)
		// Every restart ends the sessions: log in again.
		req := service.LoginRequest{Username: "officer.a", Password: password}
		if first {
			req.NewPassword, first = "Crash-Test-Pass-91", false
		}
		res, err := anon.Login(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if req.NewPassword != "" {
			password = req.NewPassword
		}
		cl := anon.WithToken(res.Token)
		go cl.Run(context.Background(), "extract", nil) // dies with the daemon
		if fp == "" {
			time.Sleep(time.Duration(rng.IntN(80)) * time.Millisecond)
			child.Process.Signal(syscall.SIGKILL)
		}
		select {
		case <-child.done:
		case <-time.After(30 * time.Second):
			child.Process.Signal(syscall.SIGKILL)
			<-child.done
		}
		t.Logf("trial %d: failpoint %q: %v", trial, fp, child.err)
	}

	// A final, uninterrupted run takes whatever is left; SIGTERM stops it cleanly.
	child := startServe(t, cfgPath, "")
	waitUp(t, anon, child)
	login, err := anon.Login(context.Background(), service.LoginRequest{Username: "officer.a", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	res, err := anon.WithToken(login.Token).Run(context.Background(), "extract", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed() {
		t.Fatalf("final run failed: %+v", res)
	}
	child.Process.Signal(syscall.SIGTERM)
	<-child.done
	if child.err != nil {
		t.Fatalf("serve did not exit cleanly on SIGTERM: %v", child.err)
	}

	led, err := audit.Open(cfg.LedgerPath(), audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	rep, err := audit.Verify(led, audit.VerifyOptions{})
	if err != nil || !rep.OK {
		t.Fatalf("ledger after %d crashes: %v %v", trials, rep, err)
	}
	ds, err := led.Datasets()
	if err != nil {
		t.Fatal(err)
	}
	perRemote := map[string]int{}
	perObject := map[string]int{}
	for _, d := range ds {
		perRemote[d.RemotePath]++
		perObject[d.ObjectID]++
		if d.State != audit.StateVerified {
			t.Errorf("%s: %s (%s)", d.RemotePath, d.State, d.Reason)
		}
	}
	for _, n := range names {
		if c := perRemote["/outbox/"+n]; c != 1 {
			t.Errorf("%s ingested %d times", n, c)
		}
		if _, err := os.Stat(filepath.Join(root, "archive", n)); err != nil {
			t.Errorf("%s was not moved to the archive: %v", n, err)
		}
	}
	v, err := vault.Open(cfg.VaultDir())
	if err != nil {
		t.Fatal(err)
	}
	ids, err := v.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if perObject[id] != 1 {
			t.Errorf("object %s referenced by %d datasets", id, perObject[id])
		}
	}
	if len(ids) != len(ds) {
		t.Errorf("%d objects for %d datasets", len(ids), len(ds))
	}
	if tmp, _ := os.ReadDir(filepath.Join(cfg.VaultDir(), "tmp")); len(tmp) != 0 {
		t.Errorf("%d partial objects left", len(tmp))
	}
}

type childProc struct {
	*exec.Cmd
	done chan struct{}
	err  error
}

func startServe(t *testing.T, cfgPath, fp string) *childProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "CUSTODIAN_TEST_AS_CLI=1", failpoint.Env+"="+fp)
	logf, err := os.Create(filepath.Join(t.TempDir(), "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &childProc{Cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); logf.Close(); close(c.done) }()
	// A test that fails midway leaves no daemon behind.
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

func waitUp(t *testing.T, cl *daemon.Client, c *childProc) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := cl.Status(context.Background()); errors.Is(err, service.ErrUnauthenticated) {
			return // it answers (and asks who is calling)
		}
		select {
		case <-c.done:
			t.Fatalf("serve exited at start: %v", c.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("serve did not come up")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
