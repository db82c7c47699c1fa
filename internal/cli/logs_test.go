package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"custodian/configs"
	"custodian/daemon"
)

// documentedLogFields reads the log field table of docs/operations.md
// ("Service and logs"): the names in its first column.
func documentedLogFields(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Service and logs\n")
	if !ok {
		t.Fatal(`docs/operations.md has no "## Service and logs" section`)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	fields := map[string]bool{}
	name := regexp.MustCompile("`([a-z_]+)`")
	for _, line := range strings.Split(sec, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || strings.TrimSpace(cells[0]) != "" {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			fields[m[1]] = true
		}
	}
	if len(fields) < 5 {
		t.Fatalf("the log field table lists %d fields", len(fields))
	}
	return fields
}

// TestServeLogsJSONOnStdout: the real `custodian serve` writes its logs as
// JSON lines on stdout (nothing on stderr), every line with time, level and
// message, and every field name it uses is one docs/operations.md lists.
// `status` shows the daemon's uptime and each job's runs.
func TestServeLogsJSONOnStdout(t *testing.T) {
	fields := documentedLogFields(t)
	dir := filepath.Join(t.TempDir(), "demo")
	if out, err := runCLI(t, "demo", "--records", "100", "--dir", dir); err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(dir, "etc", "custodian.yaml")
	cmd := exec.Command(os.Args[0], "serve", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "CUSTODIAN_TEST_AS_CLI=1", "NOTIFY_SOCKET=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &childProc{Cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-c.done })
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	waitUp(t, daemon.NewClient(cfg.SocketPath()), c)
	demoLogin(t, cfgPath, "demo.officer")
	out, err := runCLI(t, "status", "--config", cfgPath)
	if err != nil || !strings.Contains(out, "Daemon:    up ") || !regexp.MustCompile(`(?m)^  registry-extract +last run .* (success|failed); next `).MatchString(out) {
		t.Errorf("status: %v\n%s", err, out)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-c.done
	if c.err != nil {
		t.Fatalf("serve: %v\n%s", c.err, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("serve wrote to stderr:\n%s", stderr.String())
	}
	var messages []string
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		for _, k := range []string{"time", "level", "message"} {
			if _, ok := line[k]; !ok {
				t.Errorf("line without %s: %s", k, sc.Text())
			}
		}
		for k := range line {
			if !fields[k] {
				t.Errorf("field %q is not listed in docs/operations.md (line %s)", k, sc.Text())
			}
		}
		messages = append(messages, line["message"].(string))
	}
	joined := strings.Join(messages, "\n")
	for _, want := range []string{"ledger verified", "custodian serving", "shutting down"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no %q in the log:\n%s", want, joined)
		}
	}
}
