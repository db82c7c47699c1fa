// Package sshdtest starts the real OpenSSH sshd on the loopback interface,
// so the pull client is exercised against the server implementation it will
// meet in production, not only against the in-process
// custodian/internal/sftpd. Integration tests use [Start]; the benchmark
// harness (custodian/bench/harness), which has no testing.TB, uses the
// core it wraps, [Launch] and [Server.Stop].
//
// # Design
//
// [Launch] runs one private sshd, as the current OS user, entirely inside
// the directory it is given: a fresh ed25519 host key and client key, an
// authorized_keys file holding only that client key, a known_hosts file
// pinning the host key, a pid file, a generated sshd_config and the log
// (sshd.log unless [LaunchOptions.LogPath] says otherwise). sshd never
// reads the system configuration (/etc/ssh/sshd_config) because it runs
// with -f. The configuration listens on 127.0.0.1 only, allows only
// public-key authentication and only the current user (PermitRootLogin
// prohibit-password so it also works as root, as in CI), disables PAM and
// StrictModes (the directory belongs to whoever runs sshd), and serves SFTP
// with the in-process internal-sftp subsystem without a chroot, so a local
// file is visible over SFTP at the same absolute path.
//
// The port is chosen by listening on 127.0.0.1:0 and closing the listener;
// if another process grabs the port before sshd binds it, Launch retries
// with a new port. sshd runs in the foreground (-D) and logs to stderr (-e),
// which goes to the log file; Launch waits until an SSH handshake with the
// client key succeeds (at most 10 s, or until its context ends) and
// otherwise returns an error holding sshd's log. Re-exec requires an
// absolute sshd path, and privilege separation needs /run/sshd, which Launch
// creates (0755) when running as root and it is missing.
//
// [Server.Stop] stops sshd (SIGTERM to its process group, SIGKILL after
// 5 s), kills the per-connection sshd processes it forked and still running
// (they detach into their own sessions), and waits for the listener to exit.
//
// [Start] launches sshd in t.TempDir(), adds [Server.Root], an empty
// directory the test may write into, and registers Stop with t.Cleanup; it
// fails the test with Launch's error. sshd is looked up with
// exec.LookPath("sshd") and then at /usr/sbin/sshd ([FindSSHD]). When it
// is absent the test is skipped, unless CUSTODIAN_REQUIRE_SSHD=1, in which
// case the test fails, telling to install openssh-server; CI sets that
// variable so that a missing sshd cannot silently skip the tests.
package sshdtest

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"custodian/internal/sftpd"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// RequireEnv is the environment variable that, set to "1", turns a missing
// sshd from a skipped test into a failed one.
const RequireEnv = "CUSTODIAN_REQUIRE_SSHD"

// privsepDir is the privilege separation directory of Debian/Ubuntu builds.
const privsepDir = "/run/sshd"

const (
	readyTimeout = 10 * time.Second
	startTries   = 5
)

// Server describes a running sshd started by [Start].
type Server struct {
	Addr           string     // "127.0.0.1:PORT"
	User           string     // the current OS user, the only one allowed to log in
	KnownHostsLine string     // "[127.0.0.1]:PORT ssh-ed25519 AAAA..."
	ClientKey      ssh.Signer // the only authorized client key
	ClientKeyPath  string     // the client key as an OpenSSH private key file (0600)
	KnownHostsPath string     // a known_hosts file holding KnownHostsLine (0600)
	// Root is an empty directory the test may write into; it is visible over
	// SFTP at the same absolute path.
	Root string
}

// Available reports whether an sshd binary can be found.
func Available() bool {
	_, err := findSSHD()
	return err == nil
}

func findSSHD() (string, error) {
	if p, err := exec.LookPath("sshd"); err == nil {
		return filepath.Abs(p)
	}
	const fallback = "/usr/sbin/sshd"
	fi, err := os.Stat(fallback)
	if err != nil {
		return "", fmt.Errorf("sshd not in PATH and %s: %w", fallback, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", fallback)
	}
	return fallback, nil
}

// Start starts a private sshd for t and returns once it accepts SSH
// connections; see the package documentation. It skips or fails t when
// sshd is missing, and fails t when sshd cannot be started.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, findSSHD)
}

func start(t testing.TB, find func() (string, error)) *Server {
	t.Helper()
	sshd, err := find()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("sshdtest: OpenSSH server not found (%v), and %s=1 requires it: install openssh-server (Debian/Ubuntu: apt-get install -y openssh-server)", err, RequireEnv)
		}
		t.Skipf("sshdtest: OpenSSH server not found (%v); install openssh-server to run this test (%s=1 makes this a failure)", err, RequireEnv)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatalf("sshdtest: current user: %v", err)
	}
	if os.Geteuid() == 0 {
		if _, err := os.Stat(privsepDir); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(privsepDir, 0o755); err != nil {
				t.Fatalf("sshdtest: create privilege separation directory: %v", err)
			}
		}
	}

	dir := t.TempDir()
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d // sshd and SFTP clients see the resolved path
	}
	s := &Server{
		User:           u.Username,
		ClientKeyPath:  filepath.Join(dir, "id_ed25519"),
		KnownHostsPath: filepath.Join(dir, "known_hosts"),
		Root:           filepath.Join(dir, "root"),
	}
	hostKeyPath := filepath.Join(dir, "ssh_host_ed25519_key")
	authKeysPath := filepath.Join(dir, "authorized_keys")
	hostKey, hostPriv, err := sftpd.GenerateKey()
	check(t, err)
	check(t, sftpd.WritePrivateKey(hostKeyPath, hostPriv))
	var clientPriv ed25519.PrivateKey
	s.ClientKey, clientPriv, err = sftpd.GenerateKey()
	check(t, err)
	check(t, sftpd.WritePrivateKey(s.ClientKeyPath, clientPriv))
	check(t, os.WriteFile(authKeysPath, ssh.MarshalAuthorizedKey(s.ClientKey.PublicKey()), 0o600))
	check(t, os.Mkdir(s.Root, 0o755))

	for try := 1; ; try++ {
		port, err := freePort()
		check(t, err)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.KnownHostsLine = knownhosts.Line([]string{s.Addr}, hostKey.PublicKey())
		check(t, sftpd.WriteKnownHosts(s.KnownHostsPath, s.KnownHostsLine))
		cfgPath := filepath.Join(dir, "sshd_config")
		check(t, os.WriteFile(cfgPath, []byte(config(port, dir, hostKeyPath, authKeysPath, u.Username)), 0o600))

		p, err := startProcess(sshd, cfgPath)
		if err != nil {
			t.Fatalf("sshdtest: start %s: %v", sshd, err)
		}
		err = s.waitReady(p)
		if err == nil {
			t.Cleanup(p.stop)
			return s
		}
		p.stop()
		log := p.log()
		if try < startTries && bindFailed(log) {
			t.Logf("sshdtest: port %d was taken, retrying: %v", port, err)
			continue
		}
		t.Fatalf("sshdtest: sshd (%s -D -e -f %s) not ready: %v\n--- sshd log ---\n%s", sshd, cfgPath, err, log)
	}
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
}

// config renders the sshd_config; see the package documentation.
func config(port int, dir, hostKey, authKeys, userName string) string {
	q := func(s string) string {
		if strings.ContainsAny(s, " \t\"") {
			return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
		}
		return s
	}
	lines := []string{
		"# generated by custodian/internal/sshdtest",
		"ListenAddress 127.0.0.1",
		"Port " + strconv.Itoa(port),
		"HostKey " + q(hostKey),
		"PidFile " + q(filepath.Join(dir, "sshd.pid")),
		"AuthorizedKeysFile " + q(authKeys),
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication yes",
		"UsePAM no",
		"StrictModes no",
		"PermitRootLogin prohibit-password",
		"AllowUsers " + userName,
		"Subsystem sftp internal-sftp",
		"AllowTcpForwarding no",
		"AllowAgentForwarding no",
		"X11Forwarding no",
		"PermitTunnel no",
		"PrintMotd no",
		"LogLevel VERBOSE",
	}
	return strings.Join(lines, "\n") + "\n"
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func bindFailed(log string) bool {
	return strings.Contains(log, "Address already in use") || strings.Contains(log, "Cannot bind any address")
}

// ClientConfig returns an SSH client configuration for s: its user, its
// client key and a host key callback pinned to its known_hosts file.
func (s *Server) ClientConfig() (*ssh.ClientConfig, error) {
	cb, err := knownhosts.New(s.KnownHostsPath)
	if err != nil {
		return nil, err
	}
	return &ssh.ClientConfig{
		User:            s.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.ClientKey)},
		HostKeyCallback: cb,
		Timeout:         5 * time.Second,
	}, nil
}

// SFTPClient connects to s and returns an SFTP client that t's cleanup
// closes.
func (s *Server) SFTPClient(t testing.TB) *sftp.Client {
	t.Helper()
	cfg, err := s.ClientConfig()
	check(t, err)
	conn, err := ssh.Dial("tcp", s.Addr, cfg)
	check(t, err)
	c, err := sftp.NewClient(conn)
	if err != nil {
		conn.Close()
		t.Fatalf("sshdtest: sftp client: %v", err)
	}
	t.Cleanup(func() {
		c.Close()
		conn.Close()
	})
	return c
}

// waitReady waits until an SSH handshake with the client key succeeds, sshd
// exits, or readyTimeout passes.
func (s *Server) waitReady(p *process) error {
	cfg, err := s.ClientConfig()
	if err != nil {
		return err
	}
	cfg.Timeout = 2 * time.Second
	deadline := time.Now().Add(readyTimeout)
	lastErr := errors.New("no connection attempt yet")
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("sshd exited: %v", p.waitErr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v; last attempt: %v", readyTimeout, lastErr)
		}
		c, err := ssh.Dial("tcp", s.Addr, cfg)
		if err == nil {
			c.Close()
			return nil
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
}

// process is a running sshd.
type process struct {
	cmd     *exec.Cmd
	out     *syncBuffer
	exited  chan struct{}
	waitErr error
	once    sync.Once
}

func startProcess(sshd, cfgPath string) (*process, error) {
	p := &process{out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(sshd, "-D", "-e", "-f", cfgPath)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *process) log() string { return p.out.String() }

// stop terminates sshd and the per-connection processes it forked.
func (p *process) stop() {
	p.once.Do(func() {
		pid := p.cmd.Process.Pid
		// Give the per-connection processes of clients that were just
		// closed a moment to finish, so that sshd reaps them itself.
		kids := descendants(pid)
		for deadline := time.Now().Add(time.Second); len(kids) > 0 && time.Now().Before(deadline); kids = descendants(pid) {
			time.Sleep(20 * time.Millisecond)
		}
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-p.exited
		}
		// Connection handlers call setsid(), leaving the group: end the
		// ones still running. The start time guards against a recycled pid,
		// so only processes forked by this sshd are signalled.
		for _, k := range kids {
			if st, ok := readStat(k.pid); ok && st.start == k.start {
				_ = syscall.Kill(k.pid, syscall.SIGKILL)
			}
		}
	})
}

// procStat is the identity of a process: its pid, parent and start time
// (in clock ticks since boot), from /proc/PID/stat.
type procStat struct {
	pid, ppid int
	start     string
}

func readStat(pid int) (procStat, bool) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, false
	}
	// "pid (comm) state ppid pgrp ... starttime(22nd field) ..."; comm may
	// contain spaces and parentheses, so parse after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(data[i+1:])) // f[0] is field 3 (state)
	if len(f) < 20 {
		return procStat{}, false
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, false
	}
	return procStat{pid: pid, ppid: ppid, start: f[19]}, true
}

// descendants returns the running descendants of pid, read from /proc
// (Linux); elsewhere it returns nil.
func descendants(pid int) []procStat {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := make(map[int][]procStat)
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(n); ok {
			children[st.ppid] = append(children[st.ppid], st)
		}
	}
	var out []procStat
	queue := []int{pid}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, c := range children[cur] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of os/exec's
// copying goroutines and reads by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
