package sshdtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"custodian/internal/sftpd"

	"golang.org/x/crypto/ssh"
)

func TestStartAndTransfer(t *testing.T) {
	s := Start(t)
	if !Available() {
		t.Fatal("Start succeeded but Available() is false")
	}
	if !strings.HasPrefix(s.KnownHostsLine, "[127.0.0.1]:") || !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Fatalf("Addr %q KnownHostsLine %q", s.Addr, s.KnownHostsLine)
	}
	for _, p := range []string{s.ClientKeyPath, s.KnownHostsPath} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, fi.Mode())
		}
	}

	want := bytes.Repeat([]byte("HDR|demo|20250101|1\n"), 10000) // > 32 KiB: concurrent reads
	local := filepath.Join(s.Root, "in", "feed.txt")
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(local, want, 0o644); err != nil {
		t.Fatal(err)
	}

	c := s.SFTPClient(t)
	infos, err := c.ReadDir(filepath.Dir(local))
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Name() != "feed.txt" || infos[0].Size() != int64(len(want)) {
		t.Fatalf("ReadDir = %v", infos)
	}
	f, err := c.Open(local) // same absolute path as on the local filesystem
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := f.WriteTo(&got); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("read back %d bytes, want %d", got.Len(), len(want))
	}

	// And the other direction: written over SFTP, read locally.
	w, err := c.Create(filepath.Join(s.Root, "up.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, "uploaded\n"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(s.Root, "up.txt")); err != nil || string(b) != "uploaded\n" {
		t.Fatalf("local read of uploaded file: %q, %v", b, err)
	}
	if err := c.Rename(local, filepath.Join(s.Root, "feed.done")); err != nil {
		t.Fatal(err)
	}
}

// TestLaunch checks the testing-independent core as the benchmark harness
// uses it: the log in a file of the caller's choice, and Stop.
func TestLaunch(t *testing.T) {
	if !Available() {
		Start(t) // skips or fails as the other tests do
	}
	dir := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "sshd.log")
	s, err := Launch(t.Context(), LaunchOptions{Dir: dir, LogPath: logPath, LogLevel: "INFO"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if s.LogPath != logPath || s.Root != "" || s.Addr != fmt.Sprintf("127.0.0.1:%d", s.Port) {
		t.Errorf("LogPath %q Root %q Addr %q Port %d", s.LogPath, s.Root, s.Addr, s.Port)
	}
	if log := s.Log(); !strings.Contains(log, "Server listening") {
		t.Errorf("log lacks the listening line:\n%s", log)
	}
	if cfg, err := os.ReadFile(filepath.Join(dir, "sshd_config")); err != nil || !strings.Contains(string(cfg), "LogLevel INFO\n") {
		t.Errorf("sshd_config: %v\n%s", err, cfg)
	}
	cfg, err := s.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s.Stop() // again: a no-op
	if c, err := ssh.Dial("tcp", s.Addr, cfg); err == nil {
		c.Close()
		t.Error("sshd still accepts connections after Stop")
	}
}

func TestOnlyTheClientKeyLogsIn(t *testing.T) {
	s := Start(t)
	other, _, err := sftpd.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for name, auth := range map[string]ssh.AuthMethod{
		"password":  ssh.Password("hunter2"),
		"other key": ssh.PublicKeys(other),
	} {
		cfg, err := s.ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Auth = []ssh.AuthMethod{auth}
		if c, err := ssh.Dial("tcp", s.Addr, cfg); err == nil {
			c.Close()
			t.Errorf("%s: login succeeded", name)
		}
	}
}

func TestConfigRendering(t *testing.T) {
	cfg := config(2222, "/tmp/x y", "/tmp/x y/hk", "/tmp/x y/ak", "alice", "INFO")
	for _, want := range []string{
		"ListenAddress 127.0.0.1\n", "Port 2222\n", `HostKey "/tmp/x y/hk"` + "\n",
		"PasswordAuthentication no\n", "AllowUsers alice\n", "Subsystem sftp internal-sftp\n", "UsePAM no\n", "LogLevel INFO\n",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
}

// recordingTB records how a test ended instead of ending the real one.
type recordingTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingSSHD(t *testing.T) {
	missing := func() (string, error) { return "", errors.New("not installed") }
	run := func() *recordingTB {
		r := &recordingTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			start(r, missing, LaunchOptions{})
			t.Error("start returned without sshd")
		}()
		<-done
		return r
	}

	t.Setenv(RequireEnv, "")
	if r := run(); !r.skipped || r.failed {
		t.Errorf("without %s: skipped=%v failed=%v (%s)", RequireEnv, r.skipped, r.failed, r.msg)
	}
	t.Setenv(RequireEnv, "1")
	if r := run(); !r.failed || !strings.Contains(r.msg, "install openssh-server") {
		t.Errorf("with %s=1: skipped=%v failed=%v (%s)", RequireEnv, r.skipped, r.failed, r.msg)
	}
}
