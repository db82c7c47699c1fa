package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"custodian/internal/sshdtest"
)

// toolPaths are the absolute paths of the external programs.
type toolPaths struct {
	sshd, sftp, ssh, rclone string
}

// findTools locates sshd and the clients of the chosen tools.
func findTools(tools []string) (toolPaths, error) {
	var p toolPaths
	var err error
	if p.sshd, err = sshdtest.FindSSHD(); err != nil {
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

// toolRcloneHash names the single rclone run with its hash check on.
const toolRcloneHash = "rclone-hashcheck"

// measurement is one timed run of one tool on one workload.
type measurement struct {
	Tool     string
	Workload string
	Round    int
	Wall     time.Duration // wall time of the timed command
	CPU      time.Duration // client CPU (custodian: serve during the run + the job run client)
	Sync     time.Duration // a sync(2) right after the command: what making its output durable still cost
	PeakRSS  int64         // custodian serve's VmHWM, bytes
	Err      string        // why the run failed; "" if it succeeded
	Note     string        // what the run printed worth reporting
}

func (m measurement) ok() bool { return m.Err == "" }

func hasTool(tools []string, t string) bool { return slices.Contains(tools, t) }

// writeClientConfigs writes the vault passphrase.
func (b *bench) writeClientConfigs() error {
	pass := make([]byte, 16)
	if _, err := rand.Read(pass); err != nil {
		return err
	}
	return os.WriteFile(b.passFile(), []byte(hex.EncodeToString(pass)+"\n"), 0o600)
}

// writeRcloneConf writes rclone.conf afresh: rclone saves what it detects
// on first use (shell_type, md5sum_command, sha1sum_command) into its
// configuration, so without a rewrite the first run would differ from the
// others. The file holds those detected values from the start: every run
// sees the steady state of a remote that has been used before.
func (b *bench) writeRcloneConf(w *workload) error {
	conf := fmt.Sprintf(`[bench]
type = sftp
host = 127.0.0.1
port = %d
user = %s
key_file = %s
known_hosts_file = %s
shell_type = unix
md5sum_command = md5sum
sha1sum_command = sha1sum
`, b.port(w), b.sshd.User, b.sshd.ClientKeyPath, b.sshd.KnownHostsPath)
	return os.WriteFile(b.rcloneConf(), []byte(conf), 0o600)
}

func (b *bench) rcloneConf() string { return filepath.Join(b.work, "rclone.conf") }
func (b *bench) passFile() string   { return filepath.Join(b.work, "vault.pass") }

// runTool runs one tool once on w into a fresh destination, checks the
// result and deletes the destination. fast only matters to rclone: it
// turns rclone's hash check off.
func (b *bench) runTool(ctx context.Context, tool string, w *workload, round int, fast bool) measurement {
	m := measurement{Tool: tool, Workload: w.key, Round: round}
	switch tool {
	case toolSFTP:
		b.runSFTP(ctx, w, &m)
	case toolRclone:
		b.runRclone(ctx, w, fast, &m)
	case toolCustodian:
		b.runCustodian(ctx, w, &m)
	default:
		m.Err = "unknown tool " + tool
	}
	return m
}

func (b *bench) runDir(tool string, w *workload, round int) string {
	return filepath.Join(b.work, "runs", fmt.Sprintf("%s-%s-r%d", tool, w.key, round))
}

// runSFTP downloads with OpenSSH sftp in batch mode: `get FILE LOCAL` for an
// extract, `get -r DIR LOCAL` for a directory of files.
func (b *bench) runSFTP(ctx context.Context, w *workload, m *measurement) {
	dst := b.runDir("sftp", w, m.Round)
	defer os.RemoveAll(dst)
	if err := os.Mkdir(dst, 0o700); err != nil {
		m.Err = err.Error()
		return
	}
	var batch string
	wantFiles, wantBytes := w.allFiles, w.allBytes
	if w.single != "" {
		// The extract and its sidecar: a user checking by hand needs both.
		for _, name := range []string{w.single, w.single + ".sha256"} {
			batch += fmt.Sprintf("get %s %s\n", sftpQuote(filepath.Join(w.dir, name)), sftpQuote(filepath.Join(dst, name)))
		}
	} else {
		batch = fmt.Sprintf("get -r %s %s\n", sftpQuote(w.dir), sftpQuote(filepath.Join(dst, filepath.Base(w.dir))))
	}
	batchPath := dst + ".batch"
	defer os.Remove(batchPath)
	if err := os.WriteFile(batchPath, []byte(batch), 0o600); err != nil {
		m.Err = err.Error()
		return
	}
	res := b.timed(ctx, "", b.paths.sftp,
		"-b", batchPath,
		"-i", b.sshd.ClientKeyPath,
		"-o", "UserKnownHostsFile="+b.sshd.KnownHostsPath,
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
		"-P", strconv.Itoa(b.port(w)),
		b.sshd.User+"@127.0.0.1")
	// The copy is done when it is durable: the sync after counts.
	m.Wall, m.CPU, m.Sync = res.wall+res.sync, res.cpu, res.sync
	if res.err != nil {
		m.Err = res.failure("sftp")
		return
	}
	m.Err = checkCopy(dst, wantFiles, wantBytes)
}

// sftpQuote quotes a path for an sftp batch file.
func sftpQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// runRclone copies the workload's directory with rclone: with
// --sftp-disable-hashcheck when fast, else with rclone's default hash check.
func (b *bench) runRclone(ctx context.Context, w *workload, fast bool, m *measurement) {
	name := "rclone"
	if !fast {
		name = "rclone-hash"
	}
	dst := b.runDir(name, w, m.Round)
	defer os.RemoveAll(dst)
	if err := b.writeRcloneConf(w); err != nil {
		m.Err = err.Error()
		return
	}
	args := []string{"--config", b.rcloneConf(), "copy", "bench:" + w.dir, dst}
	if fast {
		args = append(args, "--sftp-disable-hashcheck")
	} else {
		args = append(args, "--stats-log-level", "NOTICE", "--stats", "1h") // a final summary on stderr
	}
	args = append(args, "--transfers", "4", "--checkers", "8")
	res := b.timed(ctx, "", b.paths.rclone, args...)
	m.Wall, m.CPU, m.Sync = res.wall+res.sync, res.cpu, res.sync
	if !fast {
		m.Note = summarizeRclone(res.stderr)
	}
	if res.err != nil {
		m.Err = res.failure("rclone")
		return
	}
	m.Err = checkCopy(dst, w.allFiles, w.allBytes)
}

// summarizeRclone keeps the informative lines of rclone's stderr.
func summarizeRclone(stderr []byte) string {
	var keep []string
	for _, l := range strings.Split(string(stderr), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		keep = append(keep, l)
	}
	if len(keep) > 12 {
		keep = append(keep[:6], append([]string{fmt.Sprintf("… (%d lines)", len(keep)-10)}, keep[len(keep)-4:]...)...)
	}
	return strings.Join(keep, "\n")
}

// checkCopy checks that dir holds files regular files totalling bytes.
func checkCopy(dir string, files int, size int64) string {
	n, sz, err := dirStats(dir)
	if err != nil {
		return "checking the copy: " + err.Error()
	}
	if n != files || sz != size {
		return fmt.Sprintf("incomplete copy: %d files, %d bytes; want %d files, %d bytes", n, sz, files, size)
	}
	return ""
}

// runCustodian initializes a fresh installation, starts the daemon, times
// `custodian job run`, reads the daemon's peak RSS and stops it.
func (b *bench) runCustodian(ctx context.Context, w *workload, m *measurement) {
	dir := b.runDir("custodian", w, m.Round)
	defer os.RemoveAll(dir)
	if err := os.Mkdir(dir, 0o700); err != nil {
		m.Err = err.Error()
		return
	}
	cfg := filepath.Join(dir, "custodian.yaml")
	if err := os.WriteFile(cfg, []byte(b.custodianConfig()), 0o600); err != nil {
		m.Err = err.Error()
		return
	}
	issued := filepath.Join(dir, "issued")
	if out, err := b.custodianCmd(ctx, "", "init", "--config", cfg, "--passphrase-file", b.passFile(),
		"--admin", "bench.admin", "--supervisor", "bench.supervisor", "--issued-passwords", issued).CombinedOutput(); err != nil {
		m.Err = fmt.Sprintf("custodian init: %v: %s", err, bytes.TrimSpace(out))
		return
	}

	logPath := filepath.Join(b.work, "logs", filepath.Base(dir)+".serve.log")
	srv, err := b.startServe(ctx, cfg, logPath)
	if err != nil {
		m.Err = err.Error()
		return
	}
	defer srv.stop()
	officer, auditor, err := b.firstDay(ctx, dir, cfg, issued)
	if err != nil {
		m.Err = err.Error()
		return
	}
	before, _ := cpuTime(srv.pid())

	res := b.timed(ctx, officer, b.opts.Custodian, "job", "run", w.job, "--config", cfg, "--json")
	m.Wall, m.Sync = res.wall, res.sync
	var problems []string
	if rss, err := peakRSS(srv.pid()); err == nil {
		m.PeakRSS = rss
	} else {
		problems = append(problems, "reading serve's VmHWM: "+err.Error())
	}
	after, _ := cpuTime(srv.pid())
	m.CPU = after - before + res.cpu

	if err := srv.stop(); err != nil {
		problems = append(problems, err.Error())
	}
	problems = append(problems, checkRun(res, w)...)
	// Untimed: the ledger verifies and every object decrypts to what was
	// received (the README's promise, checked on every benchmark run).
	for _, args := range [][]string{
		{auditor, "audit", "verify", "--config", cfg},
		{officer, "vault", "verify", "--config", cfg, "--passphrase-file", b.passFile()},
	} {
		session, args := args[0], args[1:]
		if out, err := b.custodianCmd(ctx, session, args...).CombinedOutput(); err != nil {
			problems = append(problems, fmt.Sprintf("custodian %s %s: %v: %s", args[0], args[1], err, lastLines(out, 5)))
		}
	}
	if len(problems) > 0 {
		m.Err = strings.Join(problems, "\n")
		if log := tailFile(logPath, 8); log != "" {
			m.Err += "\nserve log (last lines):\n" + log
		}
	}
}

// custodianCmd is a custodian command acting through the session in file
// session ("" for none).
func (b *bench) custodianCmd(ctx context.Context, session string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, b.opts.Custodian, args...)
	cmd.Env = append(os.Environ(), "CUSTODIAN_CONFIG=", "CUSTODIAN_PASSPHRASE_FILE=", "CUSTODIAN_SESSION_FILE="+session)
	return cmd
}

// firstDay gives a fresh installation its people as a real one gets them
// (untimed): the admin and supervisor from init log in and change their
// issued passwords; an officer and an auditor are created through request,
// approval and execution, and log in. It returns the officer's and the
// auditor's session files.
func (b *bench) firstDay(ctx context.Context, dir, cfg, issued string) (officer, auditor string, err error) {
	run := func(session string, args ...string) (string, error) {
		out, err := b.custodianCmd(ctx, session, append(args, "--config", cfg)...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("custodian %s: %v: %s", strings.Join(args[:2], " "), err, lastLines(out, 3))
		}
		return strings.TrimSpace(string(out)), nil
	}
	secret := func(name, s string) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, []byte(s+"\n"), 0o600)
	}
	login := func(user, pw string) (string, error) {
		old, err := secret("old-"+user, pw)
		if err != nil {
			return "", err
		}
		nb := make([]byte, 9)
		rand.Read(nb)
		np, err := secret("pw-"+user, "Kx7-"+hex.EncodeToString(nb)+"-Qr")
		if err != nil {
			return "", err
		}
		session := filepath.Join(dir, "session-"+user)
		_, err = run(session, "login", "--user", user, "--password-file", old, "--new-password-file", np)
		return session, err
	}
	readIssued := func(path string) (map[string]string, error) {
		b, err := os.ReadFile(path)
		m := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if u, p, ok := strings.Cut(l, " "); ok {
				m[u] = p
			}
		}
		return m, err
	}
	first, err := readIssued(issued)
	if err != nil {
		return "", "", err
	}
	admin, err := login("bench.admin", first["bench.admin"])
	if err != nil {
		return "", "", err
	}
	sup, err := login("bench.supervisor", first["bench.supervisor"])
	if err != nil {
		return "", "", err
	}
	sessions := map[string]string{}
	for _, p := range []struct{ user, role string }{{"bench.officer", "officer"}, {"bench.auditor", "auditor"}} {
		out, err := run(admin, "account", "request", "create", "--user", p.user, "--name", "Bench "+p.role,
			"--employee-id", "B-"+p.role, "--unit", "bench", "--roles", p.role, "--reason", "benchmark installation")
		if err != nil {
			return "", "", err
		}
		id := out[strings.LastIndexByte(out, '\n')+1:]
		if _, err := run(sup, "approve", id, "--reason", "benchmark installation"); err != nil {
			return "", "", err
		}
		file := filepath.Join(dir, "issued-"+p.user)
		if _, err := run(admin, "request", "execute", id, "--issued-password-file", file); err != nil {
			return "", "", err
		}
		got, err := readIssued(file)
		if err != nil {
			return "", "", err
		}
		if sessions[p.user], err = login(p.user, got[p.user]); err != nil {
			return "", "", err
		}
	}
	return sessions["bench.officer"], sessions["bench.auditor"], nil
}

// custodianConfig is one installation's configuration: data_dir next to it,
// the loopback sshd as source "bench" (and through the delay lines as
// "wan" and "paced"), one job per workload. The sources have the README's
// defaults: nothing is tuned for the benchmark.
func (b *bench) custodianConfig() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, `# generated by custodian/bench/harness
data_dir: data
log_level: info
unit: bench
accounts: {require_totp: []}  # the benchmark's people log in without a second factor
sources:
`)
	all := slices.Clone(b.workloads)
	if b.ref != nil {
		all = append(all, b.ref)
	}
	seen := map[string]bool{}
	for _, w := range all {
		if seen[w.source] {
			continue
		}
		seen[w.source] = true
		fmt.Fprintf(&sb, `  %s:
    address: %q
    user: %q
    key_file: %q
    known_hosts: %q
`, w.source, b.addr(w), b.sshd.User, b.sshd.ClientKeyPath, b.sshd.KnownHostsPath)
	}
	sb.WriteString("jobs:\n")
	for _, w := range all {
		fmt.Fprintf(&sb, `  - name: %s
    source: %s
    officer: bench.officer
    remote_dir: %q
    pattern: %q
    kind: extract
    checksum: sidecar
    records:
      trailer: '^TRL(\d+)$'
      header: '^HDR\|'
    purpose: vaccination
    retry: {attempts: 1, initial: 1s, max: 1s}
`, w.job, w.source, w.dir, w.pattern)
	}
	return sb.String()
}

// serveProc is a running `custodian serve`.
type serveProc struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	stopped bool
}

func (s *serveProc) pid() int { return s.cmd.Process.Pid }

// startServe starts the daemon and waits until its socket answers
// `custodian dataset list`.
func (b *bench) startServe(ctx context.Context, cfg, logPath string) (*serveProc, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	s := &serveProc{exited: make(chan struct{})}
	s.cmd = exec.Command(b.opts.Custodian, "serve", "--config", cfg)
	s.cmd.Env = append(os.Environ(), "CUSTODIAN_CONFIG=")
	s.cmd.Stdout = log
	s.cmd.Stderr = log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("custodian serve: %w", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()

	sock := filepath.Join(filepath.Dir(cfg), "data", "custodian.sock")
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("custodian serve exited before answering: %v\n%s", s.waitErr, tailFile(logPath, 8))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("custodian serve did not answer within 30s: %s\n%s", last, tailFile(logPath, 8))
		}
		if _, err := os.Stat(sock); err == nil {
			// It answers when it asks who is calling.
			out, err := b.custodianCmd(ctx, "", "status", "--config", cfg).CombinedOutput()
			if err != nil && bytes.Contains(out, []byte("log in")) {
				return s, nil
			}
			last = fmt.Sprintf("status: %v: %s", err, bytes.TrimSpace(out))
		} else {
			last = "no socket yet"
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit (SIGKILL after 30 s). It
// reports an unclean exit the first time it is called.
func (s *serveProc) stop() error {
	if s.stopped {
		return nil
	}
	s.stopped = true
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-s.pid(), syscall.SIGKILL)
		<-s.exited
		return errors.New("custodian serve did not stop within 30s of SIGTERM; killed")
	}
	if s.waitErr != nil {
		return fmt.Errorf("custodian serve exited after SIGTERM with %v", s.waitErr)
	}
	return nil
}

// runResult is the part of `custodian job run --json` the harness checks.
type runResult struct {
	Files []struct {
		Name    string `json:"name"`
		Outcome string `json:"outcome"`
		Reason  string `json:"reason"`
		Size    int64  `json:"size"`
		Records int64  `json:"records"`
	} `json:"files"`
	Skipped int    `json:"skipped"`
	Error   string `json:"error"`
}

// checkRun checks that the job run exited 0 with every file verified and
// the expected files, bytes and records.
func checkRun(res cmdResult, w *workload) []string {
	var problems []string
	if res.err != nil {
		problems = append(problems, res.failure("custodian job run "+w.job))
	}
	var r runResult
	if err := json.Unmarshal(res.stdout, &r); err != nil {
		if res.err == nil {
			problems = append(problems, "cannot parse `job run --json` output: "+err.Error())
		}
		return problems
	}
	if r.Error != "" {
		problems = append(problems, "run error: "+r.Error)
	}
	var size, records int64
	outcomes := map[string]int{}
	var reasons []string
	for _, f := range r.Files {
		outcomes[f.Outcome]++
		size += f.Size
		records += f.Records
		if f.Outcome != "verified" && len(reasons) < 5 {
			reasons = append(reasons, fmt.Sprintf("%s %s: %s", f.Name, f.Outcome, f.Reason))
		}
	}
	if outcomes["verified"] != w.files || len(r.Files) != w.files {
		problems = append(problems, fmt.Sprintf("outcomes %v for %d file(s); want %d verified", outcomes, len(r.Files), w.files))
		problems = append(problems, reasons...)
	} else if size != w.bytes || records != w.records {
		problems = append(problems, fmt.Sprintf("verified %d bytes, %d records; want %d bytes, %d records", size, records, w.bytes, w.records))
	}
	return problems
}

// cmdResult is a finished timed command.
type cmdResult struct {
	wall, cpu      time.Duration
	sync           time.Duration // sync(2) after the command
	stdout, stderr []byte
	err            error
}

// failure describes a failed command with the start of its output.
func (r cmdResult) failure(what string) string {
	msg := fmt.Sprintf("%s: %v", what, r.err)
	out := bytes.TrimSpace(append(append([]byte{}, r.stderr...), r.stdout...))
	if len(out) > 2000 {
		out = append(out[:2000:2000], " …"...)
	}
	if len(out) > 0 {
		msg += "\n" + string(out)
	}
	return msg
}

// timed syncs the file systems, then runs a command in its own process
// group and measures its wall and CPU time (with its children's), and then
// how long a second sync takes: the write-back the command left behind.
func (b *bench) timed(ctx context.Context, session, name string, args ...string) cmdResult {
	syscall.Sync()
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "CUSTODIAN_CONFIG=", "CUSTODIAN_PASSPHRASE_FILE=", "CUSTODIAN_SESSION_FILE="+session)
	stdout := &cappedBuffer{max: 64 << 20}
	stderr := &cappedBuffer{max: 1 << 20}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var r cmdResult
	start := time.Now()
	r.err = cmd.Run()
	r.wall = time.Since(start)
	start = time.Now()
	syscall.Sync()
	r.sync = time.Since(start)
	if cmd.ProcessState != nil {
		r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if ctx.Err() == context.DeadlineExceeded {
		r.err = fmt.Errorf("timed out after %s (--timeout): %w", b.opts.Timeout, r.err)
	}
	r.stdout, r.stderr = stdout.Bytes(), stderr.Bytes()
	return r
}

// cappedBuffer keeps the first max bytes written to it.
type cappedBuffer struct {
	bytes.Buffer
	max int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lastLines returns the last n lines of out.
func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
