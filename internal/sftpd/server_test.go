package sftpd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

const testUser = "registry"

type fixture struct {
	srv       *Server
	root      string // served directory
	outside   string // a directory next to root, not served
	clientKey ssh.Signer
	known     string // known_hosts path
	big       []byte // content of /big.bin
}

func newFixture(t *testing.T, hooks *Hooks) *fixture {
	t.Helper()
	base := t.TempDir()
	f := &fixture{root: filepath.Join(base, "root"), outside: base}
	must(t, os.MkdirAll(filepath.Join(f.root, "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(f.root, "a.txt"), []byte("hello\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(f.root, "sub", "b.txt"), []byte("bee\n"), 0o644))
	f.big = make([]byte, 3<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range f.big {
		f.big[i] = byte(rng.Uint32())
	}
	must(t, os.WriteFile(filepath.Join(f.root, "big.bin"), f.big, 0o644))
	must(t, os.WriteFile(filepath.Join(base, "secret.txt"), []byte("outside\n"), 0o644))

	var err error
	f.clientKey, _, err = GenerateKey()
	must(t, err)
	f.srv, err = Start(context.Background(), Config{
		Root:           f.root,
		User:           testUser,
		AuthorizedKeys: []ssh.PublicKey{f.clientKey.PublicKey()},
		Hooks:          hooks,
		Logf:           t.Logf,
	})
	must(t, err)
	t.Cleanup(func() {
		if err := f.srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	f.known = filepath.Join(base, "known_hosts")
	must(t, WriteKnownHosts(f.known, f.srv.KnownHostsLine()))
	return f
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) clientConfig(t testing.TB, user string, auth ...ssh.AuthMethod) *ssh.ClientConfig {
	t.Helper()
	cb, err := knownhosts.New(f.known)
	must(t, err)
	if len(auth) == 0 {
		auth = []ssh.AuthMethod{ssh.PublicKeys(f.clientKey)}
	}
	return &ssh.ClientConfig{User: user, Auth: auth, HostKeyCallback: cb, Timeout: 5 * time.Second}
}

func (f *fixture) dial(t testing.TB, cfg *ssh.ClientConfig) (*sftp.Client, error) {
	t.Helper()
	conn, err := ssh.Dial("tcp", f.srv.Addr(), cfg)
	if err != nil {
		return nil, err
	}
	c, err := sftp.NewClient(conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c, nil
}

func (f *fixture) client(t testing.TB) *sftp.Client {
	t.Helper()
	c, err := f.dial(t, f.clientConfig(t, testUser))
	must(t, err)
	return c
}

func readAll(c *sftp.Client, p string) ([]byte, error) {
	fh, err := c.Open(p)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var buf bytes.Buffer
	_, err = fh.WriteTo(&buf) // concurrent reads for files > 32 KiB
	return buf.Bytes(), err
}

func TestListStatRead(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(t)

	infos, err := c.ReadDir("/")
	must(t, err)
	var names []string
	for _, fi := range infos {
		names = append(names, fi.Name())
	}
	if want := []string{"a.txt", "big.bin", "sub"}; !slices.Equal(names, want) {
		t.Fatalf("ReadDir(/) = %v, want %v", names, want)
	}
	sub, err := c.ReadDir("/sub")
	must(t, err)
	if len(sub) != 1 || sub[0].Name() != "b.txt" || sub[0].Size() != 4 {
		t.Fatalf("ReadDir(/sub) = %v", sub)
	}

	fi, err := c.Stat("/big.bin")
	must(t, err)
	if fi.Size() != int64(len(f.big)) || !fi.Mode().IsRegular() {
		t.Fatalf("Stat(/big.bin) size %d mode %v", fi.Size(), fi.Mode())
	}
	fi, err = c.Lstat("/sub")
	must(t, err)
	if !fi.IsDir() {
		t.Fatalf("Lstat(/sub) not a dir: %v", fi.Mode())
	}
	wd, err := c.Getwd()
	must(t, err)
	if wd != "/" {
		t.Fatalf("Getwd = %q", wd)
	}

	got, err := readAll(c, "/big.bin")
	must(t, err)
	if !bytes.Equal(got, f.big) {
		t.Fatalf("read %d bytes of /big.bin, content differs", len(got))
	}
	got, err = readAll(c, "sub/b.txt") // relative to "/"
	must(t, err)
	if string(got) != "bee\n" {
		t.Fatalf("sub/b.txt = %q", got)
	}
	if _, err := c.Open("/sub"); err == nil {
		t.Fatal("opening a directory for reading succeeded")
	}

	st := f.srv.Stats()
	if st.ConnsAccepted != 1 || st.ConnsActive != 1 || st.Sessions != 1 || st.FilesOpened != 2 ||
		st.BytesServed != int64(len(f.big))+4 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestCiphers(t *testing.T) {
	f := newFixture(t, nil)
	for _, cipher := range []string{ssh.CipherAES128GCM, ssh.CipherChaCha20Poly1305} {
		cfg := f.clientConfig(t, testUser)
		cfg.Ciphers = []string{cipher}
		c, err := f.dial(t, cfg)
		if err != nil {
			t.Fatalf("%s: %v", cipher, err)
		}
		if _, err := c.Stat("/a.txt"); err != nil {
			t.Fatalf("%s: %v", cipher, err)
		}
	}
}

func TestAuthRefused(t *testing.T) {
	f := newFixture(t, nil)
	otherKey, _, err := GenerateKey()
	must(t, err)
	cases := map[string]*ssh.ClientConfig{
		"wrong user":     f.clientConfig(t, "root"),
		"wrong key":      f.clientConfig(t, testUser, ssh.PublicKeys(otherKey)),
		"password":       f.clientConfig(t, testUser, ssh.Password("hunter2")),
		"kbdinteractive": f.clientConfig(t, testUser, ssh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) { return nil, nil })),
	}
	for name, cfg := range cases {
		if _, err := f.dial(t, cfg); err == nil {
			t.Errorf("%s: login succeeded", name)
		} else if !strings.Contains(err.Error(), "unable to authenticate") {
			t.Errorf("%s: unexpected error %v", name, err)
		}
	}
	// The server may still be finishing the last handshake.
	deadline := time.Now().Add(5 * time.Second)
	for st := f.srv.Stats(); st.HandshakeFailures != int64(len(cases)) || st.ConnsActive != 0; st = f.srv.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("Stats = %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHostKeyPinned(t *testing.T) {
	f := newFixture(t, nil)
	impostor, _, err := GenerateKey()
	must(t, err)
	must(t, WriteKnownHosts(f.known, knownhosts.Line([]string{f.srv.Addr()}, impostor.PublicKey())))
	_, err = f.dial(t, f.clientConfig(t, testUser))
	var kerr *knownhosts.KeyError
	if !errors.As(err, &kerr) || len(kerr.Want) != 1 {
		t.Fatalf("dial with a wrong pinned host key: err = %v, want a knownhosts.KeyError mismatch", err)
	}
	if !strings.HasPrefix(f.srv.KnownHostsLine(), "[127.0.0.1]:") {
		t.Fatalf("KnownHostsLine = %q", f.srv.KnownHostsLine())
	}
}

func TestPathEscapeRefused(t *testing.T) {
	f := newFixture(t, nil)
	must(t, os.Symlink("/etc/passwd", filepath.Join(f.root, "abs-link")))
	must(t, os.Symlink("../secret.txt", filepath.Join(f.root, "rel-link")))
	must(t, os.Symlink("..", filepath.Join(f.root, "up")))
	c := f.client(t)

	for _, p := range []string{"/../etc/passwd", "../../../etc/passwd", "/../secret.txt",
		"/abs-link", "/rel-link", "/up/secret.txt", "/up/root/a.txt"} {
		if b, err := readAll(c, p); err == nil {
			t.Errorf("read %s succeeded: %q", p, b)
		}
		if _, err := c.Stat(p); err == nil {
			t.Errorf("stat %s succeeded", p)
		}
	}
	if _, err := c.ReadDir("/up"); err == nil {
		t.Error("readdir /up (symlink to parent) succeeded")
	}
	if err := c.Remove("/../secret.txt"); err == nil {
		t.Error("remove /../secret.txt succeeded")
	}
	if err := c.Rename("/a.txt", "/up/stolen.txt"); err == nil {
		t.Error("rename into a symlinked parent succeeded")
	}
	if err := c.Mkdir("/up/newdir"); err == nil {
		t.Error("mkdir through a symlinked parent succeeded")
	}
	if _, err := os.Stat(filepath.Join(f.outside, "secret.txt")); err != nil {
		t.Fatalf("file outside the root was touched: %v", err)
	}
	for _, p := range []string{"stolen.txt", "newdir"} {
		if _, err := os.Stat(filepath.Join(f.outside, p)); err == nil {
			t.Errorf("%s created outside the root", p)
		}
	}
	// Lstat of a link is fine: it does not follow it.
	if fi, err := c.Lstat("/abs-link"); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("lstat /abs-link = %v, %v", fi, err)
	}
	// Unit check of the path filter itself (pkg/sftp cleans paths first).
	for _, p := range []string{"", "a", "/a/../b", "/a/", "//a", "/..", "/a\x00b"} {
		if _, err := rel(p); err == nil {
			t.Errorf("rel(%q) accepted", p)
		}
	}
}

func TestMutations(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(t)

	must(t, c.Mkdir("/archive"))
	must(t, c.Rename("/a.txt", "/archive/a.txt"))
	if b, err := os.ReadFile(filepath.Join(f.root, "archive", "a.txt")); err != nil || string(b) != "hello\n" {
		t.Fatalf("after rename: %q, %v", b, err)
	}
	// Plain rename does not replace; posix-rename does.
	if err := c.Rename("/sub/b.txt", "/archive/a.txt"); err == nil {
		t.Fatal("rename onto an existing file succeeded")
	}
	must(t, c.PosixRename("/sub/b.txt", "/archive/a.txt"))
	if b, _ := os.ReadFile(filepath.Join(f.root, "archive", "a.txt")); string(b) != "bee\n" {
		t.Fatalf("after posix-rename: %q", b)
	}
	must(t, c.Remove("/archive/a.txt"))
	if _, err := os.Stat(filepath.Join(f.root, "archive", "a.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after remove: %v", err)
	}
	must(t, c.RemoveDirectory("/archive"))
	if err := c.Remove("/nope"); err == nil {
		t.Fatal("removing a missing file succeeded")
	}
	if err := c.Rename("/", "/x"); err == nil {
		t.Fatal("renaming the root succeeded")
	}
	// Writes are refused.
	if _, err := c.Create("/new.txt"); err == nil {
		t.Fatal("create succeeded on a read-mostly server")
	}
	if err := c.Chmod("/big.bin", 0o777); err == nil {
		t.Fatal("chmod succeeded")
	}
	if err := c.Symlink("/big.bin", "/link"); err == nil {
		t.Fatal("symlink succeeded")
	}
}

func TestHookCorrupt(t *testing.T) {
	const at = 1_000_000
	f := newFixture(t, &Hooks{
		ReadAt: func(p string, b []byte, off int64, n int, err error) (int, error) {
			if p == "/big.bin" && off <= at && at < off+int64(n) {
				b[at-off] ^= 0xff
			}
			return n, err
		},
	})
	got, err := readAll(f.client(t), "/big.bin")
	must(t, err)
	if len(got) != len(f.big) {
		t.Fatalf("got %d bytes, want %d", len(got), len(f.big))
	}
	for i := range got {
		if (got[i] != f.big[i]) != (i == at) {
			t.Fatalf("byte %d: got %#x, file has %#x", i, got[i], f.big[i])
		}
	}
}

func TestHookReadErrorAndTruncate(t *testing.T) {
	f := newFixture(t, &Hooks{
		ReadAt: func(p string, b []byte, off int64, n int, err error) (int, error) {
			switch p {
			case "/a.txt":
				return 0, errors.New("simulated I/O error")
			case "/big.bin": // serve only the first MiB
				const limit = 1 << 20
				if off >= limit {
					return 0, io.EOF
				}
				if off+int64(n) > limit {
					return int(limit - off), io.EOF
				}
			}
			return n, err
		},
	})
	c := f.client(t)
	if _, err := readAll(c, "/a.txt"); err == nil {
		t.Fatal("read of /a.txt succeeded despite the ReadAt hook error")
	}
	got, err := readAll(c, "/big.bin")
	must(t, err)
	if !bytes.Equal(got, f.big[:1<<20]) {
		t.Fatalf("truncated read: got %d bytes", len(got))
	}
}

func TestDropAfterBytes(t *testing.T) {
	f := newFixture(t, &Hooks{DropAfterBytes: DropAfterOnce(map[string]int64{"/big.bin": 1 << 20})})
	c := f.client(t)
	got, err := readAll(c, "/big.bin")
	if err == nil {
		t.Fatalf("read succeeded (%d bytes) despite DropAfterBytes", len(got))
	}
	if len(got) >= 1<<20 {
		t.Fatalf("client got %d bytes, the budget was %d", len(got), 1<<20)
	}
	if _, err := c.Stat("/a.txt"); err == nil {
		t.Fatal("connection still usable after the drop")
	}
	if st := f.srv.Stats(); st.Drops != 1 {
		t.Fatalf("Stats.Drops = %d", st.Drops)
	}
	// A retry on a new connection is not limited (DropAfterOnce).
	got, err = readAll(f.client(t), "/big.bin")
	must(t, err)
	if !bytes.Equal(got, f.big) {
		t.Fatal("retry: content differs")
	}
}

func TestDropAfterEveryTime(t *testing.T) {
	f := newFixture(t, &Hooks{DropAfterBytes: DropAfter(map[string]int64{"/big.bin": 64 << 10})})
	for i := range 2 {
		if _, err := readAll(f.client(t), "/big.bin"); err == nil {
			t.Fatalf("attempt %d: read succeeded", i)
		}
	}
	if _, err := readAll(f.client(t), "/a.txt"); err != nil {
		t.Fatalf("other file: %v", err)
	}
}

func TestStatHookLies(t *testing.T) {
	mtime := time.Date(2020, 2, 29, 12, 0, 0, 0, time.UTC)
	var calls atomic.Int64
	f := newFixture(t, &Hooks{
		Stat: func(p string, fi os.FileInfo) os.FileInfo {
			calls.Add(1)
			if p == "/a.txt" {
				return OverrideInfo(fi, 42, mtime)
			}
			return fi
		},
	})
	c := f.client(t)
	fi, err := c.Stat("/a.txt")
	must(t, err)
	if fi.Size() != 42 || !fi.ModTime().Equal(mtime) {
		t.Fatalf("Stat = size %d mtime %v", fi.Size(), fi.ModTime())
	}
	infos, err := c.ReadDir("/")
	must(t, err)
	for _, fi := range infos {
		if fi.Name() == "a.txt" && fi.Size() != 42 {
			t.Fatalf("ReadDir entry a.txt size %d", fi.Size())
		}
	}
	fh, err := c.Open("/a.txt")
	must(t, err)
	defer fh.Close()
	if fi, err := fh.Stat(); err != nil || fi.Size() != 42 { // fstat
		t.Fatalf("fstat = %v, %v", fi, err)
	}
	if fi, err := c.Stat("/big.bin"); err != nil || fi.Size() != int64(len(f.big)) {
		t.Fatalf("untouched file: %v, %v", fi, err)
	}
	if calls.Load() == 0 {
		t.Fatal("hook not called")
	}
}

func TestDropAll(t *testing.T) {
	f := newFixture(t, nil)
	c1, c2 := f.client(t), f.client(t)
	f.srv.DropAll()
	for _, c := range []*sftp.Client{c1, c2} {
		if _, err := c.Stat("/a.txt"); err == nil {
			t.Fatal("connection survived DropAll")
		}
	}
	if st := f.srv.Stats(); st.Drops != 2 {
		t.Fatalf("Drops = %d", st.Drops)
	}
	// Still accepting.
	if _, err := f.client(t).Stat("/a.txt"); err != nil {
		t.Fatal(err)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(t)
	if _, err := c.Stat("/a.txt"); err != nil {
		t.Fatal(err)
	}
	addr := f.srv.Addr()
	must(t, f.srv.Close())

	// Close waited for the serving goroutines: none may be left.
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, g := range strings.Split(stacks, "\n\n") {
		if lines := strings.SplitN(g, "\n", 3); len(lines) > 1 && strings.HasPrefix(lines[1], "runtime.goexit1(") {
			continue // its function has returned (and signalled Close); it is only being torn down
		}
		if strings.Contains(g, "sftpd.(*Server)") || strings.Contains(g, "sftp.(*RequestServer)") ||
			strings.Contains(g, "sftpd.(*handler)") || strings.Contains(g, "ssh.DiscardRequests") {
			t.Errorf("goroutine left after Close:\n%s", g)
		}
	}
	if _, err := c.Stat("/a.txt"); err == nil {
		t.Error("client connection survived Close")
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Error("listener still accepts after Close")
	}
	must(t, f.srv.Close()) // idempotent
}

func TestContextCancelCloses(t *testing.T) {
	key, _, err := GenerateKey()
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := Start(ctx, Config{Root: t.TempDir(), User: testUser, AuthorizedKeys: []ssh.PublicKey{key.PublicKey()}})
	must(t, err)
	cancel()
	must(t, srv.Close()) // waits for the shutdown triggered by cancel
	if conn, err := net.DialTimeout("tcp", srv.Addr(), time.Second); err == nil {
		conn.Close()
		t.Fatal("listener still accepts after cancel")
	}
}

func TestStartWithDoneContext(t *testing.T) {
	key, _, err := GenerateKey()
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	srv, err := Start(ctx, Config{Root: t.TempDir(), User: testUser, AuthorizedKeys: []ssh.PublicKey{key.PublicKey()}})
	if err == nil { // the listen may or may not notice the cancelled context
		must(t, srv.Close())
	}
}

func TestStartValidates(t *testing.T) {
	key, _, err := GenerateKey()
	must(t, err)
	keys := []ssh.PublicKey{key.PublicKey()}
	file := filepath.Join(t.TempDir(), "f")
	must(t, os.WriteFile(file, nil, 0o644))
	for name, cfg := range map[string]Config{
		"no root":  {User: "u", AuthorizedKeys: keys},
		"no user":  {Root: t.TempDir(), AuthorizedKeys: keys},
		"no keys":  {Root: t.TempDir(), User: "u"},
		"missing":  {Root: filepath.Join(t.TempDir(), "nope"), User: "u", AuthorizedKeys: keys},
		"not dir":  {Root: file, User: "u", AuthorizedKeys: keys},
		"bad addr": {Root: t.TempDir(), User: "u", AuthorizedKeys: keys, Addr: "127.0.0.1:-1"},
	} {
		if srv, err := Start(context.Background(), cfg); err == nil {
			srv.Close()
			t.Errorf("%s: Start succeeded", name)
		}
	}
}
