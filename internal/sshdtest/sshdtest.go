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
	"context"
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

// Server describes a running sshd started by [Launch] or [Start].
type Server struct {
	Addr           string     // "127.0.0.1:PORT"
	Port           int        // the port of Addr
	User           string     // the current OS user, the only one allowed to log in
	KnownHostsLine string     // "[127.0.0.1]:PORT ssh-ed25519 AAAA..."
	ClientKey      ssh.Signer // the only authorized client key
	ClientKeyPath  string     // the client key as an OpenSSH private key file (0600)
	KnownHostsPath string     // a known_hosts file holding KnownHostsLine (0600)
	LogPath        string     // sshd's output (its log, -e)
	// Root is an empty directory the test may write into; it is visible over
	// SFTP at the same absolute path. Only [Start] sets it.
	Root string

	proc *process
}

// LaunchOptions configures [Launch]. Only Dir is required.
type LaunchOptions struct {
	// Dir is an existing directory that receives the keys, authorized_keys,
	// known_hosts, sshd_config, the pid file and by default the log. sshd
	// and SFTP clients see the paths as given, so it should not contain
	// symbolic links.
	Dir string
	// SSHD is the absolute path of sshd; "" looks it up with [FindSSHD].
	SSHD string
	// LogPath is the file that receives sshd's output (created or
	// truncated, 0600); "" means sshd.log in Dir.
	LogPath string
	// LogLevel is sshd's LogLevel; "" means VERBOSE.
	LogLevel string
	// Logf, if not nil, is told when a port was taken and Launch retries.
	Logf func(format string, args ...any)
	// MaxSessions, if not 0, sets sshd's MaxSessions: the sessions (SFTP
	// subsystems) it allows per connection (OpenSSH's default is 10); -1
	// writes MaxSessions 0, which refuses every session.
	MaxSessions int
}

// Available reports whether an sshd binary can be found.
func Available() bool {
	_, err := FindSSHD()
	return err == nil
}

// FindSSHD returns the absolute path of sshd (sshd re-executes itself, which
// requires one): exec.LookPath("sshd"), else /usr/sbin/sshd.
func FindSSHD() (string, error) {
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
	return start(t, FindSSHD, LaunchOptions{})
}

// StartWith is [Start] with options: opts.Dir, SSHD and Logf are set by
// StartWith; the others (MaxSessions, LogLevel) are passed to [Launch].
func StartWith(t testing.TB, opts LaunchOptions) *Server {
	t.Helper()
	return start(t, FindSSHD, opts)
}

func start(t testing.TB, find func() (string, error), opts LaunchOptions) *Server {
	t.Helper()
	sshd, err := find()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("sshdtest: OpenSSH server not found (%v), and %s=1 requires it: install openssh-server (Debian/Ubuntu: apt-get install -y openssh-server)", err, RequireEnv)
		}
		t.Skipf("sshdtest: OpenSSH server not found (%v); install openssh-server to run this test (%s=1 makes this a failure)", err, RequireEnv)
	}
	dir := t.TempDir()
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d // sshd and SFTP clients see the resolved path
	}
	root := filepath.Join(dir, "root")
	check(t, os.Mkdir(root, 0o755))
	opts.Dir, opts.SSHD, opts.Logf = dir, sshd, t.Logf
	s, err := Launch(t.Context(), opts)
	if err != nil {
		t.Fatal(err) // Launch's errors name the package
	}
	t.Cleanup(s.Stop)
	s.Root = root
	return s
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
}

// Launch starts a private sshd in opts.Dir and returns once it accepts SSH
// connections; see the package documentation. The caller must call
// [Server.Stop].
func Launch(ctx context.Context, opts LaunchOptions) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("sshdtest: LaunchOptions.Dir is empty")
	}
	sshd := opts.SSHD
	if sshd == "" {
		var err error
		if sshd, err = FindSSHD(); err != nil {
			return nil, fmt.Errorf("sshdtest: %w", err)
		}
	}
	logLevel := opts.LogLevel
	if logLevel == "" {
		logLevel = "VERBOSE"
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("sshdtest: current user: %w", err)
	}
	if os.Geteuid() == 0 {
		if _, err := os.Stat(privsepDir); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(privsepDir, 0o755); err != nil {
				return nil, fmt.Errorf("sshdtest: create privilege separation directory: %w", err)
			}
		}
	}

	dir := opts.Dir
	s := &Server{
		User:           u.Username,
		ClientKeyPath:  filepath.Join(dir, "id_ed25519"),
		KnownHostsPath: filepath.Join(dir, "known_hosts"),
		LogPath:        opts.LogPath,
	}
	if s.LogPath == "" {
		s.LogPath = filepath.Join(dir, "sshd.log")
	}
	hostKeyPath := filepath.Join(dir, "ssh_host_ed25519_key")
	authKeysPath := filepath.Join(dir, "authorized_keys")
	hostKey, err := writeKeys(s, hostKeyPath, authKeysPath)
	if err != nil {
		return nil, fmt.Errorf("sshdtest: %w", err)
	}

	cfgPath := filepath.Join(dir, "sshd_config")
	for try := 1; ; try++ {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("sshdtest: %w", err)
		}
		s.Port = port
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.KnownHostsLine = knownhosts.Line([]string{s.Addr}, hostKey.PublicKey())
		if err := sftpd.WriteKnownHosts(s.KnownHostsPath, s.KnownHostsLine); err != nil {
			return nil, fmt.Errorf("sshdtest: %w", err)
		}
		cfg := config(port, dir, hostKeyPath, authKeysPath, u.Username, logLevel)
		if opts.MaxSessions != 0 {
			cfg += "MaxSessions " + strconv.Itoa(max(opts.MaxSessions, 0)) + "\n"
		}
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			return nil, fmt.Errorf("sshdtest: %w", err)
		}

		p, err := startProcess(sshd, cfgPath, s.LogPath)
		if err != nil {
			return nil, fmt.Errorf("sshdtest: start %s: %w", sshd, err)
		}
		s.proc = p
		err = s.waitReady(ctx)
		if err == nil {
			return s, nil
		}
		p.stop()
		log := s.Log()
		if try < startTries && ctx.Err() == nil && bindFailed(log) {
			logf("sshdtest: port %d was taken, retrying: %v", port, err)
			continue
		}
		return nil, fmt.Errorf("sshdtest: sshd (%s -D -e -f %s) not ready: %w\n--- sshd log ---\n%s", sshd, cfgPath, err, log)
	}
}

// writeKeys generates the host key and s's client key, writes them and the
// authorized_keys file holding the client key only, and returns the host
// key.
func writeKeys(s *Server, hostKeyPath, authKeysPath string) (ssh.Signer, error) {
	hostKey, hostPriv, err := sftpd.GenerateKey()
	if err != nil {
		return nil, err
	}
	if err := sftpd.WritePrivateKey(hostKeyPath, hostPriv); err != nil {
		return nil, err
	}
	clientKey, clientPriv, err := sftpd.GenerateKey()
	if err != nil {
		return nil, err
	}
	if err := sftpd.WritePrivateKey(s.ClientKeyPath, clientPriv); err != nil {
		return nil, err
	}
	if err := os.WriteFile(authKeysPath, ssh.MarshalAuthorizedKey(clientKey.PublicKey()), 0o600); err != nil {
		return nil, err
	}
	s.ClientKey = clientKey
	return hostKey, nil
}

// config renders the sshd_config; see the package documentation.
func config(port int, dir, hostKey, authKeys, userName, logLevel string) string {
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
		"LogLevel " + logLevel,
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

// Log returns what sshd has written to [Server.LogPath] so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.LogPath)
	return string(b)
}

// Stop stops sshd and the per-connection processes it forked; see the
// package documentation. Calling it again does nothing.
func (s *Server) Stop() {
	if s != nil && s.proc != nil {
		s.proc.stop()
	}
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
// exits, ctx ends or readyTimeout passes.
func (s *Server) waitReady(ctx context.Context) error {
	cfg, err := s.ClientConfig()
	if err != nil {
		return err
	}
	cfg.Timeout = 2 * time.Second
	deadline := time.Now().Add(readyTimeout)
	lastErr := errors.New("no connection attempt yet")
	for {
		select {
		case <-s.proc.exited:
			return fmt.Errorf("sshd exited: %v", s.proc.waitErr)
		case <-ctx.Done():
			return ctx.Err()
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
	exited  chan struct{}
	waitErr error
	once    sync.Once
}

// startProcess starts sshd in its own process group, its output going to
// logPath.
func startProcess(sshd, cfgPath, logPath string) (*process, error) {
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own descriptor
	p := &process{exited: make(chan struct{})}
	p.cmd = exec.Command(sshd, "-D", "-e", "-f", cfgPath)
	p.cmd.Stdout = log
	p.cmd.Stderr = log
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

// stop terminates sshd and the per-connection processes it forked.
func (p *process) stop() {
	p.once.Do(func() {
		select {
		case <-p.exited:
			return // its process group may be gone, and its pid reused
		default:
		}
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
