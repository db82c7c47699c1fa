package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"custodian/audit"
	"custodian/configs"
	"custodian/service"
)

// appendReads writes access records to a demo installation's ledger
// before its daemon starts, as the read path will.
func appendReads(t *testing.T, cfg *configs.Config, person string, n int) {
	t.Helper()
	skey, err := os.ReadFile(cfg.SigningKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.NewSigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(cfg.LedgerPath(), audit.Options{Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = l.Update(func(tx *audit.Tx) error {
		for i := range n {
			if _, err := tx.Append(audit.Event{Time: time.Date(2025, 3, 1+i%28, 10, 0, 0, 0, service.ReportZone), Actor: person, Type: audit.EvDatasetRead,
				DatasetID: "ds-x", Details: map[string]string{"purpose": "vaccination", "case": "C-" + strconv.Itoa(i), "bytes": "10", "sha256": strings.Repeat("a", 64), "outcome": "ok"}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReviewCommands: the review from start to report through the CLI,
// the co-signature of access records, training and a ledger archive with
// its offline check; a prune younger than five years is refused.
func TestReviewCommands(t *testing.T) {
	cfgPath, _ := demoInstall(t)
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	appendReads(t, cfg, "demo.officer", 3)
	serveInProcess(t, cfgPath)
	run := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, append(args, "--config", cfgPath)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	lastLine := func(s string) string {
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		return lines[len(lines)-1]
	}

	demoLogin(t, cfgPath, "demo.auditor")
	out := run("review", "start", "--period", "2025", "--seed", "cli-seed")
	id := lastLine(out)
	if id != "RV1" || !strings.Contains(out, "seed cli-seed") {
		t.Fatalf("review start:\n%s", out)
	}
	var v service.Review
	if err := json.Unmarshal([]byte(run("review", "show", id, "--json")), &v); err != nil || len(v.Sample) != 1 || v.Population != 3 {
		t.Fatalf("review show --json: %v %+v", err, v)
	}
	// The same seed redraws the same sample.
	var again service.Review
	if err := json.Unmarshal([]byte(run("review", "start", "--period", "2025", "--seed", "cli-seed", "--json")), &again); err != nil || again.ID != "RV2" || again.Sample[0].Index != v.Sample[0].Index {
		t.Fatalf("redraw: %v %+v", err, again)
	}
	rec := strconv.FormatInt(v.Sample[0].Index, 10)
	if out := run("review", "show", id); !strings.Contains(out, rec) || !strings.Contains(out, "demo.officer") {
		t.Errorf("review show:\n%s", out)
	}
	if out := run("review", "finding", id, rec, "--anomaly", "--note", "no case file found"); lastLine(out) != id+"/"+rec {
		t.Errorf("finding:\n%s", out)
	}
	out, err = runCLI(t, "review", "close", id, "--config", cfgPath)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "open investigation") {
		t.Fatalf("close with an open investigation: exit %d\n%s", exitCode(err), out)
	}
	if _, err := runCLI(t, "review", "finding", id, rec, "--note", "neither flag", "--config", cfgPath); exitCode(err) != 2 {
		t.Fatalf("finding without a verdict: %v", err)
	}
	run("review", "investigation", "close", id, rec, "--outcome", "case file was filed late")
	run("review", "close", id)
	dir := t.TempDir()
	for _, lang := range []string{"zh-TW", "en"} {
		for _, format := range []string{"html", "csv"} {
			file := filepath.Join(dir, "report-"+lang+"."+format)
			if out := run("review", "report", id, "--format", format, "--lang", lang, "--out", file); lastLine(out) != file {
				t.Errorf("report:\n%s", out)
			}
			b, _ := os.ReadFile(file)
			if want := map[string]string{"zh-TW": "114/03/", "en": "2025-03-"}[lang]; !strings.Contains(string(b), want) {
				t.Errorf("%s lacks %s", file, want)
			}
		}
	}

	// Access records: the supervisor co-signs, nothing is left.
	demoLogin(t, cfgPath, "demo.supervisor")
	var recs []service.AccessRecord
	if err := json.Unmarshal([]byte(run("access", "list", "--period", "2025-03", "--uncosigned", "--json")), &recs); err != nil || len(recs) != 3 {
		t.Fatalf("access list: %v %d", err, len(recs))
	}
	var cs map[string]any
	if err := json.Unmarshal([]byte(run("access", "cosign", "--period", "2025", "--json")), &cs); err != nil || cs["id"] == "" {
		t.Fatalf("access cosign: %v %v", err, cs)
	}
	if err := json.Unmarshal([]byte(run("access", "list", "--period", "2025-03", "--uncosigned", "--json")), &recs); err != nil || len(recs) != 0 {
		t.Fatalf("after co-signing: %v %d", err, len(recs))
	}

	// Training, recorded by the supervisor.
	out = run("training", "record", "--user", "demo.officer", "--hours", "2", "--date", "2025-05-01", "--course", "個資保護")
	if lastLine(out) != "T1" {
		t.Errorf("training record:\n%s", out)
	}
	var short []service.TrainingShort
	if err := json.Unmarshal([]byte(run("training", "report", "--year", "2025", "--json")), &short); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range short {
		found = found || (s.Username == "demo.officer" && s.Hours == "2" && s.Missing == "1")
	}
	if !found {
		t.Errorf("training report: %+v", short)
	}

	// Retention: an archive, checked offline; pruning now is refused.
	demoLogin(t, cfgPath, "demo.auditor")
	arc := filepath.Join(dir, "archive.json")
	tomorrow := time.Now().In(service.ReportZone).AddDate(0, 0, 1).Format(time.DateOnly)
	if out := run("audit", "archive", "--before", tomorrow, "--out", arc); lastLine(out) != arc {
		t.Fatalf("archive:\n%s", out)
	}
	if out := run("audit", "check-archive", arc, "--verifier-key", cfg.VerifierKeyPath()); !strings.Contains(out, "archive OK") || !strings.Contains(out, "you gave") {
		t.Fatalf("check-archive:\n%s", out)
	}
	b, _ := os.ReadFile(arc)
	b[len(b)/2] ^= 1
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, b, 0o644)
	if _, err := runCLI(t, "audit", "check-archive", bad, "--config", cfgPath); exitCode(err) != 1 {
		t.Fatalf("a changed archive: %v", err)
	}
	out, err = runCLI(t, "audit", "prune", "--before", "2025-01-01", "--archive-sha256", strings.Repeat("0", 64), "--reason", "retention ended", "--config", cfgPath)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "retention:") {
		t.Fatalf("a prune younger than five years: exit %d %v\n%s", exitCode(err), err, out)
	}
}
