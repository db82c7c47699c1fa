package cli

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"custodian/service"
)

// TestJobHistoryCommand: `job history NAME` prints the version the daemon
// recorded at start; after the schedule is changed in the file and the
// daemon restarted, it prints the change first with the old schedule line
// removed and the new one added; --json gives the versions with their
// diffs; an admin is refused (exit 1, the rule on stderr) and a missing
// name is bad usage (exit 2).
func TestJobHistoryCommand(t *testing.T) {
	cfgPath, _ := demoInstall(t)
	stop := serveInProcess(t, cfgPath)
	demoLogin(t, cfgPath, "demo.auditor")
	out, err := runCLI(t, "job", "history", "registry-extract", "--config", cfgPath)
	if err != nil || !strings.Contains(out, "1 version(s)") || !strings.Contains(out, "added  by system:custodian  on start") ||
		!strings.Contains(out, "  + schedule: CRON_TZ=Asia/Taipei 0 2 * * *\n") {
		t.Fatalf("history after the first start: %v\n%s", err, out)
	}
	stop()
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(b), `schedule: "CRON_TZ=Asia/Taipei 0 2 * * *"`, `schedule: "CRON_TZ=Asia/Taipei 0 4 * * *"`, 1)
	if changed == string(b) {
		t.Fatal("the demo configuration has no such schedule")
	}
	if err := os.WriteFile(cfgPath, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	serveInProcess(t, cfgPath)
	demoLogin(t, cfgPath, "demo.auditor")
	out, err = runCLI(t, "job", "history", "registry-extract", "--config", cfgPath)
	if err != nil || !strings.Contains(out, "2 version(s)") {
		t.Fatalf("history after the change: %v\n%s", err, out)
	}
	first, second := strings.Index(out, " changed  by "), strings.Index(out, " added  by ")
	if first < 0 || second < first ||
		!strings.Contains(out[first:second], "  - schedule: CRON_TZ=Asia/Taipei 0 2 * * *\n  + schedule: CRON_TZ=Asia/Taipei 0 4 * * *\n") {
		t.Fatalf("the change must come first with the old and the new schedule:\n%s", out)
	}
	if strings.Count(out[first:second], "\n  + ") != 1 || strings.Count(out[first:second], "\n  - ") != 1 {
		t.Fatalf("the change is one line:\n%s", out[first:second])
	}
	out, err = runCLI(t, "job", "history", "registry-extract", "--json", "--config", cfgPath)
	var hs []service.JobChange
	if err != nil || json.Unmarshal([]byte(out), &hs) != nil || len(hs) != 2 || hs[0].Change != "changed" || len(hs[0].Diff) == 0 {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	demoLogin(t, cfgPath, "demo.admin")
	out, err = runCLI(t, "job", "history", "registry-extract", "--config", cfgPath)
	if exitCode(err) != exitFailure || err == nil || !strings.Contains(err.Error(), "role:") {
		t.Fatalf("an admin: exit %d %v\n%s", exitCode(err), err, out)
	}
	if _, err := runCLI(t, "job", "history", "--config", cfgPath); exitCode(err) != exitUsage {
		t.Fatalf("no name: exit %d", exitCode(err))
	}
}
