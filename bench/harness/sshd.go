package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// toolPaths are the absolute paths of the external programs.
type toolPaths struct {
	sshd, sftp, ssh, rclone string
}

// findTools locates sshd and the clients of the chosen tools.
func findTools(tools []string) (toolPaths, error) {
	var p toolPaths
	var err error
	if p.sshd, err = findSSHD(); err != nil {
		return p, fmt.Errorf("OpenSSH server: %w (Debian: apt-get install -y openssh-server)", err)
	}
	p.ssh, _ = exec.LookPath("ssh") // only for `ssh -V` in the report
	for _, t := range tools {
		switch t {
		case toolSFTP:
			if p.sftp, err = exec.LookPath("sftp"); err != nil {
				return p, fmt.Errorf("OpenSSH sftp client: %w (Debian: apt-get install -y openssh-client)", err)
			}
		case toolRclone:
			if p.rclone, err = exec.LookPath("rclone"); err != nil {
				return p, fmt.Errorf("rclone: %w (Debian: apt-get install -y rclone)", err)
			}
		}
	}
	return p, nil
}

// findSSHD returns sshd's absolute path (sshd re-executes itself, which
// requires one).
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

func currentUser() (string, error) {
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("current user: %w", err)
	}
	return u.Username, nil
}

// sshKeys are the key files in the work directory.
type sshKeys struct {
	hostKey     ssh.Signer
	clientKey   ssh.Signer
	hostKeyPath string
	clientPath  string // OpenSSH private key, 0600
	authKeys    string // authorized_keys holding the client key only
}

// writeKeys generates the ed25519 host and client keys.
func writeKeys(dir string) (*sshKeys, error) {
	k := &sshKeys{
		hostKeyPath: filepath.Join(dir, "ssh_host_ed25519_key"),
		clientPath:  filepath.Join(dir, "id_ed25519"),
		authKeys:    filepath.Join(dir, "authorized_keys"),
	}
	var err error
	if k.hostKey, err = newKey(k.hostKeyPath); err != nil {
		return nil, err
	}
	if k.clientKey, err = newKey(k.clientPath); err != nil {
		return nil, err
	}
	if err := os.WriteFile(k.authKeys, ssh.MarshalAuthorizedKey(k.clientKey.PublicKey()), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// newKey generates an ed25519 key and writes it unencrypted in OpenSSH
// format, as ssh-keygen does.
func newKey(path string) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return signer, nil
}

// sshdServer is the running OpenSSH server.
type sshdServer struct {
	addr           string // 127.0.0.1:PORT
	port           int
	keys           *sshKeys
	knownHostsPath string
	logPath        string
	user           string
	cmd            *exec.Cmd
	exited         chan struct{}
	waitErr        error
}

const privsepDir = "/run/sshd" // Debian's privilege separation directory

// startSSHD writes the configuration and starts sshd on a free loopback
// port, retrying with another port if the chosen one was taken meanwhile.
func startSSHD(ctx context.Context, sshdPath, dir string, keys *sshKeys, userName string) (*sshdServer, error) {
	if os.Geteuid() == 0 {
		if _, err := os.Stat(privsepDir); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(privsepDir, 0o755); err != nil {
				return nil, fmt.Errorf("create %s: %w", privsepDir, err)
			}
		}
	}
	for try := 1; ; try++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &sshdServer{
			addr:           net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			port:           port,
			keys:           keys,
			knownHostsPath: filepath.Join(dir, "known_hosts"),
			logPath:        filepath.Join(dir, "logs", "sshd.log"),
			user:           userName,
			exited:         make(chan struct{}),
		}
		line := knownhosts.Line([]string{s.addr}, keys.hostKey.PublicKey())
		if err := os.WriteFile(s.knownHostsPath, []byte(line+"\n"), 0o600); err != nil {
			return nil, err
		}
		cfg := filepath.Join(dir, "sshd_config")
		if err := os.WriteFile(cfg, []byte(sshdConfig(port, dir, keys, userName)), 0o600); err != nil {
			return nil, err
		}
		if err := s.start(sshdPath, cfg); err != nil {
			return nil, fmt.Errorf("start %s: %w", sshdPath, err)
		}
		err = s.waitReady(ctx)
		if err == nil {
			return s, nil
		}
		s.stop()
		log, _ := os.ReadFile(s.logPath)
		if try < 5 && (bytes.Contains(log, []byte("Address already in use")) || bytes.Contains(log, []byte("Cannot bind any address"))) {
			continue
		}
		return nil, fmt.Errorf("sshd (%s -D -e -f %s) not ready: %v\n--- sshd log ---\n%s", sshdPath, cfg, err, log)
	}
}

// sshdConfig is a private server: loopback only, public keys only, the
// current user only, internal-sftp without a chroot, no system configuration.
func sshdConfig(port int, dir string, k *sshKeys, userName string) string {
	q := func(s string) string {
		if strings.ContainsAny(s, " \t\"") {
			return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
		}
		return s
	}
	return strings.Join([]string{
		"# generated by custodian/bench/harness",
		"ListenAddress 127.0.0.1",
		"Port " + strconv.Itoa(port),
		"HostKey " + q(k.hostKeyPath),
		"PidFile " + q(filepath.Join(dir, "sshd.pid")),
		"AuthorizedKeysFile " + q(k.authKeys),
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
		"LogLevel INFO",
	}, "\n") + "\n"
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *sshdServer) start(sshdPath, cfg string) error {
	log, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer log.Close() // the child has its own descriptor
	s.cmd = exec.Command(sshdPath, "-D", "-e", "-f", cfg)
	s.cmd.Stdout = log
	s.cmd.Stderr = log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	return nil
}

// waitReady waits until an SSH handshake with the client key succeeds.
func (s *sshdServer) waitReady(ctx context.Context) error {
	cb, err := knownhosts.New(s.knownHostsPath)
	if err != nil {
		return err
	}
	cfg := &ssh.ClientConfig{
		User:            s.user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.keys.clientKey)},
		HostKeyCallback: cb,
		Timeout:         2 * time.Second,
	}
	deadline := time.Now().Add(10 * time.Second)
	lastErr := errors.New("no attempt yet")
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("sshd exited: %v", s.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after 10s; last attempt: %v", lastErr)
		}
		c, err := ssh.Dial("tcp", s.addr, cfg)
		if err == nil {
			c.Close()
			return nil
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends sshd (SIGTERM to its process group, SIGKILL after 5 s) and the
// per-connection processes it forked that are still running: they call
// setsid() and so leave the group.
func (s *sshdServer) stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	pid := s.cmd.Process.Pid
	kids := descendants(pid)
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-s.exited
	}
	for _, k := range kids {
		// The start time guards against a recycled pid.
		if st, ok := readStat(k.pid); ok && st.start == k.start {
			_ = syscall.Kill(k.pid, syscall.SIGKILL)
		}
	}
}

// procStat identifies a process: pid, parent, start time (clock ticks since
// boot), and its CPU time so far.
type procStat struct {
	pid, ppid int
	start     string
	cpu       time.Duration // utime + stime
}

// readStat parses /proc/PID/stat.
func readStat(pid int) (procStat, bool) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, false
	}
	// "pid (comm) state ppid ..."; comm may contain spaces and parentheses.
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
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clockTick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return procStat{pid: pid, ppid: ppid, start: f[19], cpu: time.Duration(utime+stime) * clockTick}, true
}

// descendants returns the running descendants of pid, read from /proc.
func descendants(pid int) []procStat {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]procStat{}
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
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// peakRSS returns VmHWM of a running process, in bytes.
func peakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, errors.New("no VmHWM in /proc/PID/status")
}
