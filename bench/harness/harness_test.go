package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"custodian/internal/sshdtest"
)

// requireEnv, set to "1", turns a missing sshd or sftp into a failure (CI).
const requireEnv = sshdtest.RequireEnv

// TestQuick runs the whole harness in --quick mode with the tools that are
// installed, so that it cannot rot: a real sshd, the synthetic data, every
// available tool, custodian's init/serve/job run, and the report.
func TestQuick(t *testing.T) {
	require := os.Getenv(requireEnv) == "1"
	missing := func(what string) {
		t.Helper()
		if require {
			t.Fatalf("%s not found, and %s=1 requires it (Debian: apt-get install -y openssh-server openssh-client)", what, requireEnv)
		}
		t.Skipf("%s not found; install it to run the benchmark smoke test (%s=1 makes this a failure)", what, requireEnv)
	}
	if !sshdtest.Available() {
		missing("OpenSSH server (sshd)")
	}
	tools := []string{}
	if _, err := exec.LookPath("sftp"); err == nil {
		tools = append(tools, toolSFTP)
	} else if require {
		missing("OpenSSH sftp client")
	} else {
		t.Log("sftp not found: skipping the sftp runs")
	}
	if _, err := exec.LookPath("rclone"); err == nil {
		tools = append(tools, toolRclone)
	} else {
		t.Log("rclone not found: skipping the rclone runs")
	}
	tools = append(tools, toolCustodian)
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not in PATH: cannot build custodian")
	}

	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "custodian")
	build := exec.Command(goCmd, "build", "-o", bin, "./cmd/custodian")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/custodian: %v\n%s", err, out)
	}

	out := filepath.Join(tmp, "benchmarks.md")
	// An existing report's findings must survive the run.
	const findings = "<!-- findings -->\nHand-written finding that must survive.\n"
	if err := os.WriteFile(out, []byte("# old report\n\n## Findings\n\n"+findings), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute) // the WAN runs and the hash-checking rclone run (up to its 1-minute timeout) included
	defer cancel()
	log := &testLog{t: t}
	defer log.flush()
	err = run(ctx, options{
		Custodian:       bin,
		RepoRoot:        repo,
		Out:             out,
		Rounds:          1,
		Quick:           true,
		Tools:           tools,
		Repro:           "bash bench/run --quick",
		Timeout:         time.Minute,
		RcloneHashcheck: true,
		// A small delay line: the WAN path runs too (no timing is checked).
		RTT:  2 * time.Millisecond,
		Rate: "1g",
		Log:  log,
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}

	report, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	text := string(report)
	for _, want := range []string{
		"## Machine", "## Workload A", "## Workload B", "## Workload A-wan", "## Workload B-wan", "## Workload A-paced",
		"Link utilization", "## Peak memory", "## Targets",
		"bash bench/run --quick", "custodian job run", "## Findings\n\n" + findings,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(text, "# old report") {
		t.Error("report kept the old text above the findings marker")
	}
	if strings.Count(text, "<!-- findings -->") != 1 {
		t.Error("report does not hold exactly one findings marker")
	}
	for _, tool := range tools {
		if !strings.Contains(text, toolLabels[tool]) {
			t.Errorf("report has no row for %s", tool)
		}
	}
	if strings.Contains(text, "## Failed runs") {
		t.Errorf("report lists failed runs:\n%s", text)
	}
}

// TestWriteReportKeepsFindings checks the findings-preserving write alone.
func TestWriteReportKeepsFindings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docs", "benchmarks.md")
	if err := writeReport(path, "# one\n\n## Findings\n\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := "# one\n\n## Findings\n\n" + findingsMarker + "\n" + findingsPlaceholder; string(got) != want {
		t.Fatalf("new report:\n%q\nwant\n%q", got, want)
	}
	edited := bytes.Replace(got, []byte(findingsPlaceholder), []byte("Mine.\n\n### More\n"), 1)
	if err := os.WriteFile(path, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeReport(path, "# two\n\n## Findings\n\n"); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(path)
	if want := "# two\n\n## Findings\n\n" + findingsMarker + "\nMine.\n\n### More\n"; string(got) != want {
		t.Fatalf("rewritten report:\n%q\nwant\n%q", got, want)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--quick", "--custodian", "x", "--tools", "custodian,sftp"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Rounds != 1 || !o.Quick || strings.Join(o.Tools, ",") != "sftp,custodian" {
		t.Errorf("got rounds %d, quick %v, tools %v", o.Rounds, o.Quick, o.Tools)
	}
	o, err = parseFlags([]string{"--quick", "--rounds", "2", "--custodian", "x"})
	if err != nil || o.Rounds != 2 {
		t.Errorf("--quick --rounds 2: rounds %d, err %v", o.Rounds, err)
	}
	if _, err := parseFlags([]string{"--tools", "scp"}); err == nil {
		t.Error("--tools scp accepted")
	}
}

// testLog sends the harness's progress to t.Log, line by line.
type testLog struct {
	t   *testing.T
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			l.buf.WriteString(line) // incomplete: keep it
			return len(p), nil
		}
		l.t.Log(strings.TrimRight(line, "\n"))
	}
}

func (l *testLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 0 {
		l.t.Log(l.buf.String())
		l.buf.Reset()
	}
}
