package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"custodian/internal/sftpd/sftpdtest"
	"custodian/internal/synth"
)

// secretFile writes s to a new 0600 file.
func secretFile(t *testing.T, s string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(s + "\n")
	f.Close()
	os.Chmod(f.Name(), 0o600)
	return f.Name()
}

// TestFirstDay walks the README's first day through the command line, with
// the default policy (second factor required for admins and supervisors):
// init with the first admin and supervisor; their first logins with
// password changes and TOTP enrolment; an officer's account through request
// → approval → execution; the officer's first login and a job run. Along
// the way: the requester cannot approve (exit 1, the rule on stderr), bad
// usage exits 2, and creating commands print their ID on the last line and
// "id" with --json.
func TestFirstDay(t *testing.T) {
	etc, err := os.MkdirTemp("", "fd") // short: Unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(etc)
	s := sftpdtest.Start(t, sftpdtest.Options{Dirs: []string{"outbox"}, Etc: etc, KnownHostsFile: "kh"})
	if err := synth.GenerateTree(filepath.Join(s.Root, "outbox"), []synth.FileSpec{{Name: "HR_1.txt", Options: synth.Options{Records: 50, Seed: 1}}}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(etc, "c.yaml")
	y := `data_dir: data
unit: north
sources:
  moi: {address: "` + s.Server.Addr() + `", user: hbxfer, key_file: id, known_hosts: kh}
jobs:
  - name: extract
    source: moi
    officer: olga
    remote_dir: /outbox
    pattern: "HR_*.txt"
    records: {trailer: '^TRL(\d+)$', header: '^HDR\|'}
    purpose: vaccination
`
	os.WriteFile(cfg, []byte(y), 0o600)
	pass := secretFile(t, "a long vault passphrase")
	issuedFile := filepath.Join(etc, "issued")
	out, err := runCLI(t, "init", "--config", cfg, "--passphrase-file", pass, "--admin", "adam", "--supervisor", "sue", "--issued-passwords", issuedFile)
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if fi, err := os.Stat(issuedFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("issued passwords file: %v %v", fi, err)
	}
	issued := map[string]string{}
	b, _ := os.ReadFile(issuedFile)
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		u, p, _ := strings.Cut(l, " ")
		issued[u] = p
	}
	if len(issued) != 2 || issued["adam"] == "" || issued["sue"] == "" {
		t.Fatalf("issued: %q", b)
	}
	serveInProcess(t, cfg)
	sessions := t.TempDir()
	as := func(user string) { t.Setenv("CUSTODIAN_SESSION_FILE", filepath.Join(sessions, user)) }

	// First login of a person whose role needs a second factor: the
	// password is changed in the same step, the session is limited to
	// enrolling; after enrolment, login with a code.
	firstLogin := func(user, newPW string, needTOTP bool) {
		t.Helper()
		as(user)
		if _, err := runCLI(t, "login", "--config", cfg, "--user", user, "--password-file", secretFile(t, issued[user])); err == nil || !strings.Contains(err.Error(), "--new-password-file") {
			t.Fatalf("%s: an issued password alone must not log in: %v", user, err)
		}
		out, err := runCLI(t, "login", "--config", cfg, "--user", user, "--password-file", secretFile(t, issued[user]), "--new-password-file", secretFile(t, newPW))
		if err != nil || !strings.Contains(out, "Password changed") {
			t.Fatalf("%s first login: %v\n%s", user, err, out)
		}
		if !needTOTP {
			return
		}
		if !strings.Contains(out, "limited") {
			t.Fatalf("%s: the session must be limited to enrolling a second factor:\n%s", user, out)
		}
		if _, err := runCLI(t, "request", "list", "--config", cfg); err == nil || !strings.Contains(err.Error(), "second factor") {
			t.Fatalf("a limited session listing requests: %v", err)
		}
		out, err = runCLI(t, "account", "totp", "enroll", "--config", cfg, "--json")
		if err != nil {
			t.Fatalf("enroll: %v\n%s", err, out)
		}
		var e struct{ Secret, URI string }
		if err := json.Unmarshal([]byte(out), &e); err != nil || !strings.HasPrefix(e.URI, "otpauth://") {
			t.Fatalf("enroll --json: %v\n%s", err, out)
		}
		code, _ := totp.GenerateCode(e.Secret, time.Now())
		if out, err := runCLI(t, "account", "totp", "confirm", code, "--config", cfg); err != nil {
			t.Fatalf("confirm: %v\n%s", err, out)
		}
		// A code is used once: log in with the next step's (one step of
		// clock skew is allowed).
		code, _ = totp.GenerateCode(e.Secret, time.Now().Add(30*time.Second))
		if out, err := runCLI(t, "login", "--config", cfg, "--user", user, "--password-file", secretFile(t, newPW), "--totp", code); err != nil || strings.Contains(out, "limited") {
			t.Fatalf("%s login with a code: %v\n%s", user, err, out)
		}
	}
	firstLogin("adam", "Kestrel-Strong-1", true)
	firstLogin("sue", "Heron-Strong-22", true)

	// The admin files the officer's account.
	as("adam")
	out, err = runCLI(t, "account", "request", "create", "--config", cfg, "--user", "olga", "--name", "Olga Chen",
		"--employee-id", "E-1042", "--unit", "north", "--roles", "officer", "--reason", "new transfer officer")
	if err != nil {
		t.Fatalf("request create: %v\n%s", err, out)
	}
	reqID := lastLine(out)
	if !strings.HasPrefix(reqID, "R") {
		t.Fatalf("the request ID must be the last line: %q", out)
	}
	// sue is not locked: refused (exit 1), the rule on stderr.
	_, err = runCLI(t, "account", "request", "unlock", "--config", cfg, "--user", "sue", "--reason", "she is not locked at all", "--json")
	if code := exitCode(err); code != exitFailure || !strings.Contains(err.Error(), "not locked") {
		t.Fatalf("an unlock of an unlocked account: exit %d, want 1: %v", code, err)
	}
	// Bad usage: no reason, an unknown role.
	if _, err := runCLI(t, "account", "request", "create", "--config", cfg, "--user", "x.y", "--name", "X", "--employee-id", "E", "--roles", "wizard", "--reason", "a good long reason"); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "wizard") {
		t.Fatalf("an unknown role: exit %d: %v", exitCode(err), err)
	}
	// The requester cannot approve (the admin has no approver role either).
	if _, err := runCLI(t, "approve", reqID, "--config", cfg, "--reason", "approving my own request"); exitCode(err) != exitFailure || !strings.Contains(err.Error(), "role:") {
		t.Fatalf("the admin approving: exit %d: %v", exitCode(err), err)
	}
	as("sue")
	if _, err := runCLI(t, "approve", reqID, "--config", cfg); exitCode(err) != exitUsage {
		t.Fatalf("approve without a reason: exit %d: %v", exitCode(err), err)
	}
	if out, err := runCLI(t, "approve", reqID, "--config", cfg, "--reason", "appointment letter 115-0042 seen"); err != nil || !strings.Contains(out, "approved") {
		t.Fatalf("approve: %v\n%s", err, out)
	}
	as("adam")
	olgaIssued := filepath.Join(etc, "olga.issued")
	out, err = runCLI(t, "request", "execute", reqID, "--config", cfg, "--issued-password-file", olgaIssued)
	if err != nil || lastLine(out) != "olga" || strings.Contains(out, issued["adam"]) {
		t.Fatalf("execute: %v\n%s", err, out)
	}
	b, _ = os.ReadFile(olgaIssued)
	_, olgaPW, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	issued["olga"] = olgaPW
	if out, err := runCLI(t, "request", "list", "--config", cfg, "--json"); err != nil || !strings.Contains(out, `"state": "executed"`) {
		t.Fatalf("request list: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "request", "list", "--config", cfg, "--kind", "account-create", "--json"); err != nil || !strings.Contains(out, reqID) {
		t.Fatalf("request list --kind account-create: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "request", "list", "--config", cfg, "--kind", "destruction", "--json"); err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("request list --kind destruction (none filed): %v\n%s", err, out)
	}
	if _, err := runCLI(t, "request", "list", "--config", cfg, "--kind", "nonsense"); exitCode(err) != 2 {
		t.Fatalf("request list --kind nonsense: exit %d (%v)", exitCode(err), err)
	}
	if _, err := runCLI(t, "request", "execute", reqID, "--config", cfg); exitCode(err) != exitFailure {
		t.Fatalf("a request executes once: exit %d: %v", exitCode(err), err)
	}

	// The officer's first day.
	firstLogin("olga", "Falcon-Strong-3", false)
	out, err = runCLI(t, "whoami", "--config", cfg, "--json")
	if err != nil || !strings.Contains(out, `"username": "olga"`) || !strings.Contains(out, `"host_user"`) {
		t.Fatalf("whoami: %v\n%s", err, out)
	}
	// Pause and resume (the console mirrors these).
	if _, err := runCLI(t, "job", "pause", "extract", "--config", cfg); exitCode(err) != exitUsage {
		t.Fatalf("pause without a reason: exit %d: %v", exitCode(err), err)
	}
	if out, err := runCLI(t, "job", "pause", "extract", "--config", cfg, "--reason", "provider maintenance tonight"); err != nil || !strings.Contains(out, "paused") {
		t.Fatalf("pause: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "job", "run", "extract", "--config", cfg); exitCode(err) != exitFailure || !strings.Contains(err.Error(), "paused by olga") {
		t.Fatalf("a run while paused: exit %d: %v", exitCode(err), err)
	}
	if out, err := runCLI(t, "status", "--config", cfg); err != nil || !strings.Contains(out, "PAUSED by olga") {
		t.Fatalf("status while paused: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "job", "resume", "extract", "--config", cfg); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if out, err := runCLI(t, "job", "run", "extract", "--config", cfg); err != nil || !strings.Contains(out, "VERIFIED") {
		t.Fatalf("job run: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "audit", "export", "--config", cfg, "--out", filepath.Join(etc, "x.db")); exitCode(err) != exitFailure || !strings.Contains(err.Error(), "role:") {
		t.Fatalf("an officer exporting the ledger: exit %d: %v", exitCode(err), err)
	}
	if out, err := runCLI(t, "logout", "--config", cfg); err != nil || !strings.Contains(out, "Logged out") {
		t.Fatalf("logout: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "status", "--config", cfg); exitCode(err) != exitFailure || !strings.Contains(err.Error(), "log in") {
		t.Fatalf("after logout: exit %d: %v", exitCode(err), err)
	}
}
