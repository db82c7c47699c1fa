package transfer

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"

	"custodian/audit"
	"custodian/configs"
	"custodian/internal/sftpd"
	"custodian/internal/sftpd/sftpdtest"
	"custodian/internal/sshdtest"
	"custodian/internal/synth"
	"custodian/vault"
)

// provider is an SFTP server holding files in a local directory.
type provider struct {
	kind      string
	dir       string // local directory served as remoteDir
	remoteDir string
	src       *configs.Source
	srv       *sftpd.Server // nil for OpenSSH
}

// providers returns the conformance targets: the in-process server and the
// real OpenSSH sshd (skipped where absent unless CUSTODIAN_REQUIRE_SSHD=1).
var providers = []struct {
	name  string
	start func(t testing.TB) *provider
}{
	{"inprocess", func(t testing.TB) *provider { return startInProcess(t, nil) }},
	{"openssh", startOpenSSH},
}

func startInProcess(t testing.TB, hooks *sftpd.Hooks) *provider {
	t.Helper()
	s := sftpdtest.Start(t, sftpdtest.Options{Dirs: []string{"outbox"}, Hooks: hooks})
	return &provider{kind: "inprocess", dir: filepath.Join(s.Root, "outbox"), remoteDir: "/outbox", srv: s.Server, src: s.Source()}
}

func startOpenSSH(t testing.TB) *provider {
	t.Helper()
	s := sshdtest.Start(t)
	outbox := filepath.Join(s.Root, "outbox")
	mustMkdir(t, outbox)
	return &provider{kind: "openssh", dir: outbox, remoteDir: outbox,
		src: &configs.Source{Address: s.Addr, User: s.User, KeyFile: s.ClientKeyPath, KnownHosts: s.KnownHostsPath, PacketSize: configs.MaxPacketSize}}
}

func mustMkdir(t testing.TB, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

// afterPull parses an after_pull value as the configuration file gives it.
func afterPull(t testing.TB, s string) configs.AfterPull {
	t.Helper()
	a, err := configs.ParseAfterPull(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// env is one installation pulling from one provider.
type env struct {
	t      testing.TB
	p      *provider
	cfg    *configs.Config
	data   string
	led    *audit.Ledger
	v      *vault.Vault
	ident  *vault.Identity
	runner *Runner
	store  Store
	slept  []time.Duration
}

var testPass = []byte("correct horse battery staple")

// newEnv creates an installation whose single job "pull" reads p's directory.
// edit may adjust the job before validation.
func newEnv(t testing.TB, p *provider, edit func(*configs.Job, *configs.Source)) *env {
	t.Helper()
	data := t.TempDir()
	src := *p.src
	job := &configs.Job{Name: "pull", Source: "moi", Officer: "officer.a", RemoteDir: p.remoteDir, Pattern: "HR_*.txt",
		Kind: "extract", Checksum: "sidecar", Purpose: "vaccination", Records: configs.Records{Trailer: `^TRL(\d+)$`, Header: `^HDR\|`},
		Retry: configs.Retry{Attempts: 2, Initial: configs.Duration{Duration: time.Second}, Max: configs.Duration{Duration: 4 * time.Second}}}
	src.IOTimeout = configs.Duration{Duration: 5 * time.Second}
	src.Sessions = 2
	if edit != nil {
		edit(job, &src)
	}
	cfg := &configs.Config{DataDir: data, Sources: map[string]*configs.Source{"moi": &src}, Jobs: []*configs.Job{job}}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := vault.Init(filepath.Join(data, "vault"), testPass, vault.InitOptions{ScryptWorkFactor: 10}); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, p: p, cfg: cfg, data: data}
	e.open()
	return e
}

var testSigner = func() string {
	skey, _, err := audit.GenerateSigningKey("custodian-test")
	if err != nil {
		panic(err)
	}
	return skey
}()

// open (re)opens the ledger and vault, as a daemon start does.
func (e *env) open() {
	e.t.Helper()
	signer, err := audit.NewSigner(testSigner)
	if err != nil {
		e.t.Fatal(err)
	}
	e.led, err = audit.Open(filepath.Join(e.data, "ledger.db"), audit.Options{Signer: signer})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { e.led.Close() })
	e.v, err = vault.Open(filepath.Join(e.data, "vault"))
	if err != nil {
		e.t.Fatal(err)
	}
	if e.ident == nil {
		if e.ident, err = e.v.Unlock(testPass); err != nil {
			e.t.Fatal(err)
		}
	}
	if e.store == nil {
		e.store = VaultStore{V: e.v}
	}
	e.runner = &Runner{Config: e.cfg, Ledger: e.led, Store: e.store, Log: zerolog.Nop(),
		Sleep: func(ctx context.Context, d time.Duration) error { e.slept = append(e.slept, d); return nil }}
}

// restart closes and reopens everything.
func (e *env) restart() {
	e.t.Helper()
	if err := e.led.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

func (e *env) run() *RunResult {
	e.t.Helper()
	res, err := e.runner.Run(context.Background(), RunRequest{Job: "pull", Actor: "officer.a", Trigger: "manual"})
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// put writes synthetic files with sidecars into the provider's directory.
func (e *env) put(specs ...synth.FileSpec) {
	e.t.Helper()
	if err := synth.GenerateTree(e.p.dir, specs); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) write(name string, content []byte) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.p.dir, name), content, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) outcome(res *RunResult, name string) FileOutcome {
	e.t.Helper()
	for _, f := range res.Files {
		if f.Name == name {
			return f
		}
	}
	e.t.Fatalf("no outcome for %s in %+v", name, res.Files)
	return FileOutcome{}
}

// decrypt returns an object's plaintext (tests only).
func (e *env) decrypt(id string) []byte {
	e.t.Helper()
	rc, err := e.v.Open(id, e.ident)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// checkInvariants runs after every test: the ledger verifies, every dataset
// has its object and every object belongs to exactly one dataset, no partial
// objects remain, and no plaintext of any served file is in the data dir.
func (e *env) checkInvariants() {
	e.t.Helper()
	rep, err := audit.Verify(e.led, audit.VerifyOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	if !rep.OK {
		e.t.Fatalf("ledger does not verify: %s", rep)
	}
	ds, err := e.led.Datasets()
	if err != nil {
		e.t.Fatal(err)
	}
	owners := map[string]int{}
	for _, d := range ds {
		for _, id := range d.Objects() {
			owners[id]++
			if !e.v.Exists(id) {
				e.t.Errorf("dataset %s: object %s missing", d.ID, id)
			}
		}
	}
	ids, err := e.v.List()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, id := range ids {
		if owners[id] != 1 {
			e.t.Errorf("object %s is referenced by %d datasets", id, owners[id])
		}
	}
	if tmp, _ := os.ReadDir(filepath.Join(e.data, "vault", "tmp")); len(tmp) > 0 {
		e.t.Errorf("%d partial objects left in vault/tmp", len(tmp))
	}
	e.noPlaintext()
}

// noPlaintext checks that no record line of any served file appears in any
// file under the data directory.
func (e *env) noPlaintext() {
	e.t.Helper()
	entries, _ := os.ReadDir(e.p.dir)
	for _, en := range entries {
		b, err := os.ReadFile(filepath.Join(e.p.dir, en.Name()))
		if err != nil || !strings.HasPrefix(string(b), "HDR|") {
			continue
		}
		lines := bytes.Split(b, []byte("\n"))
		if len(lines) < 3 {
			continue
		}
		needle := lines[1]
		if len(needle) < 16 {
			continue // too short to be evidence of anything
		}
		filepath.Walk(e.data, func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return nil
			}
			c, _ := os.ReadFile(p)
			if bytes.Contains(c, needle) {
				e.t.Errorf("plaintext of %s found in %s", en.Name(), p)
			}
			return nil
		})
	}
}

func (e *env) events(typ string) []audit.Event {
	e.t.Helper()
	evs, err := e.led.Events(0, 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []audit.Event
	for _, ev := range evs {
		if string(ev.Type) == typ {
			out = append(out, ev)
		}
	}
	return out
}

func hostPattern(addr string) string { return knownhosts.Normalize(addr) }

func sshMarshal(s ssh.Signer) []byte { return ssh.MarshalAuthorizedKey(s.PublicKey()) }
