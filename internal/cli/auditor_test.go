package cli

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"custodian/audit"
	"custodian/configs"
	"custodian/proof"
	"custodian/service"
)

// TestAuditorWorkbench runs the auditor's commands against a daemon: the
// kept checkpoints, the filtered log with its next-page hint, a dataset's
// custody chain, an inclusion proof of one of its events and a consistency
// proof from a kept checkpoint, both checked offline (and failing after a
// changed byte); an auditor's key, a cosigned checkpoint and verify
// --cosigned against the live ledger.
func TestAuditorWorkbench(t *testing.T) {
	cfgPath, _ := demoInstall(t)
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	serveInProcess(t, cfgPath)
	demoLogin(t, cfgPath, "demo.auditor")
	dir := t.TempDir()
	vkeyFile := cfg.VerifierKeyPath()
	run := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, append(args, "--config", cfgPath)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}

	// Kept checkpoints: one at start.
	var kept []proof.Kept
	waitForCLI(t, func() bool {
		out := run("audit", "checkpoints", "--json")
		return json.Unmarshal([]byte(out), &kept) == nil && len(kept) > 0
	})
	if out := run("audit", "checkpoints"); !strings.Contains(out, "SIZE") || !strings.Contains(out, filepath.Base(kept[0].File)) {
		t.Errorf("checkpoints listing:\n%s", out)
	}

	// The filtered log.
	var received []service.EventView
	if err := json.Unmarshal([]byte(run("audit", "log", "--type", "dataset.received", "--json")), &received); err != nil || len(received) < 2 {
		t.Fatalf("log --type dataset.received: %v %d", err, len(received))
	}
	for _, e := range received {
		if e.Type != string(audit.EvDatasetReceived) {
			t.Errorf("filter let through %s", e.Type)
		}
	}
	out := run("audit", "log", "--type", "dataset.", "--limit", "1", "--actor", received[0].Actor)
	if !strings.Contains(out, "next page: custodian audit log --from "+strconv.FormatInt(received[0].Index+1, 10)+" --limit 1") ||
		!strings.Contains(out, "--type dataset.") || !strings.Contains(out, "--actor "+received[0].Actor) {
		t.Errorf("next-page hint:\n%s", out)
	}
	// --newest-first: the same events, reversed, page after page with
	// --before (the default order stays oldest first).
	var newest []int64
	args := []string{"audit", "log", "--type", "dataset.received", "--newest-first", "--limit", "1", "--json"}
	for pages := 0; pages <= len(received); pages++ {
		stdout, stderr, err := runSplit(t, append(args, "--config", cfgPath)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr)
		}
		var page []service.EventView
		if err := json.Unmarshal([]byte(stdout), &page); err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			newest = append(newest, e.Index)
		}
		_, hint, ok := strings.Cut(stderr, "next page: custodian audit log ")
		if !ok {
			break
		}
		if !strings.HasPrefix(hint, "--before ") || !strings.Contains(hint, "--newest-first") || !strings.Contains(hint, "--type dataset.received") {
			t.Fatalf("newest-first next-page hint: %s", hint)
		}
		next := strings.Fields(hint)[1]
		args = []string{"audit", "log", "--type", "dataset.received", "--newest-first", "--limit", "1", "--json", "--before", next}
	}
	var oldest []int64
	for _, e := range received {
		oldest = append(oldest, e.Index)
	}
	slices.Reverse(oldest)
	if !slices.Equal(newest, oldest) {
		t.Errorf("--newest-first pages: %v, want %v", newest, oldest)
	}
	if _, err := runCLI(t, "audit", "log", "--before", "3", "--config", cfgPath); !errors.As(err, new(usageError)) {
		t.Errorf("--before without --newest-first is a usage error: %v", err)
	}
	if out := run("audit", "log", "--csv", "--dataset", received[0].DatasetID, "--since", "2000-01-01"); !strings.HasPrefix(out, "index,time,actor,type,job,dataset_id,details\n") ||
		!strings.Contains(out, ","+received[0].DatasetID+",") {
		t.Errorf("csv:\n%s", out)
	}
	if out := run("audit", "log", "--json", "--until", "2000-01-01"); strings.TrimSpace(out) != "[]" {
		t.Errorf("nothing before 2000: %s", out)
	}
	if _, err := runCLI(t, "audit", "log", "--since", "yesterday", "--config", cfgPath); !errors.As(err, new(usageError)) {
		t.Errorf("a bad --since is a usage error: %v", err)
	}

	// A dataset's custody chain, with indexes and actors.
	id := received[0].DatasetID
	out = run("dataset", "timeline", id)
	if !strings.Contains(out, "INDEX") || !strings.Contains(out, strconv.FormatInt(received[0].Index, 10)) ||
		!strings.Contains(out, received[0].Actor) || !strings.Contains(out, "custodian audit prove INDEX") {
		t.Errorf("timeline:\n%s", out)
	}
	var tl []service.EventView
	if err := json.Unmarshal([]byte(run("dataset", "timeline", id, "--json")), &tl); err != nil || len(tl) == 0 || tl[0].Index != received[0].Index {
		t.Fatalf("timeline --json: %v %+v", err, tl)
	}

	// An inclusion proof, checked offline.
	pf := filepath.Join(dir, "event.json")
	out = run("audit", "prove", strconv.FormatInt(tl[0].Index, 10), "--out", pf)
	if lastLine(out) != pf {
		t.Errorf("prove must print the file last:\n%s", out)
	}
	out, err = runCLI(t, "audit", "check-proof", pf, "--verifier-key", vkeyFile)
	if err != nil || !strings.Contains(out, "inclusion proof OK") || !strings.Contains(out, id) || !strings.Contains(out, "the verifier key you gave") {
		t.Fatalf("check-proof: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "audit", "check-proof", pf); err != nil || !strings.Contains(out, "consistent with itself") {
		t.Errorf("check-proof without a key must say what it proves: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(pf)
	for _, at := range []int{len(b) / 3, len(b) / 2, len(b) - 2} {
		c := append([]byte(nil), b...)
		c[at] ^= 0x04
		bad := filepath.Join(dir, "bad-"+strconv.Itoa(at)+".json")
		os.WriteFile(bad, c, 0o644)
		if out, err := runCLI(t, "audit", "check-proof", bad, "--verifier-key", vkeyFile); !errors.Is(err, errFailed) || !strings.Contains(out, "proof FAILED") {
			t.Errorf("byte %d changed: %v\n%s", at, err, out)
		}
	}
	if _, err := runCLI(t, "audit", "prove", "999999", "--out", filepath.Join(dir, "x.json"), "--config", cfgPath); err == nil || !strings.Contains(err.Error(), "no event 999999") {
		t.Errorf("an event past the end: %v", err)
	}

	// A consistency proof from the first kept checkpoint to now.
	cf := filepath.Join(dir, "grew.json")
	run("audit", "consistency", "--old", kept[0].File, "--out", cf)
	if out, err := runCLI(t, "audit", "check-proof", cf, "--verifier-key", vkeyFile); err != nil || !strings.Contains(out, "consistency proof OK") {
		t.Fatalf("consistency check: %v\n%s", err, out)
	}

	// An auditor's key and a cosigned checkpoint.
	prefix := filepath.Join(dir, "auditor")
	out, err = runCLI(t, "audit", "keygen", "--name", "auditor.lin", "--out", prefix)
	if err != nil || !strings.HasPrefix(lastLine(out), "auditor.lin+") {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	if fi, err := os.Stat(prefix + ".key"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	cpFile := filepath.Join(dir, "now.txt")
	os.WriteFile(cpFile, []byte(strings.SplitN(run("audit", "checkpoint"), "verifier key:", 2)[0]), 0o644) // the key goes to stderr
	cs := filepath.Join(dir, "now.cosigned.txt")
	if out, err := runCLI(t, "audit", "cosign", "--key", prefix+".key", "--verifier-key", vkeyFile, cpFile, "--out", cs); err != nil || lastLine(out) != cs {
		t.Fatalf("cosign: %v\n%s", err, out)
	}
	out = run("audit", "verify", "--cosigned", cs, "--cosigner-key", prefix+".pub", "--verifier-key", vkeyFile)
	if !strings.Contains(out, "OK      "+cs) || !strings.Contains(out, "cosigned by auditor.lin") {
		t.Errorf("verify --cosigned:\n%s", out)
	}
	// Another auditor's key does not vouch for it.
	if out, err := runCLI(t, "audit", "keygen", "--name", "someone.else", "--out", filepath.Join(dir, "other")); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "audit", "verify", "--config", cfgPath, "--cosigned", cs, "--cosigner-key", filepath.Join(dir, "other.pub")); !errors.Is(err, errFailed) || !strings.Contains(out, "FAILED") {
		t.Errorf("a cosignature by another key must fail: %v\n%s", err, out)
	}
}

// TestCosignedCheckpointCatchesRewriteAndTruncation: an exported ledger
// from before a cosigned checkpoint (a truncated ledger), and one whose
// event was rewritten after it, both fail audit verify --cosigned and
// consistency; the untouched export passes, and proves offline.
func TestCosignedCheckpointCatchesRewriteAndTruncation(t *testing.T) {
	cfgPath, _ := demoInstall(t)
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	serveInProcess(t, cfgPath)
	demoLogin(t, cfgPath, "demo.auditor")
	dir := t.TempDir()
	vkeyFile := cfg.VerifierKeyPath()
	early := filepath.Join(dir, "early.db")
	if out, err := runCLI(t, "audit", "export", "--config", cfgPath, "--out", early); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	earlyCP := filepath.Join(dir, "early.txt")
	out, _ := runCLI(t, "audit", "checkpoint", "--config", cfgPath)
	os.WriteFile(earlyCP, []byte(strings.SplitN(out, "verifier key:", 2)[0]), 0o644)
	// The ledger grows, then the auditor cosigns the checkpoint of that size.
	if out, err := runCLI(t, "audit", "verify", "--config", cfgPath); err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	later := filepath.Join(dir, "later.db")
	if out, err := runCLI(t, "audit", "export", "--config", cfgPath, "--out", later); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	l, err := audit.Open(later, audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	laterCP, _ := l.Checkpoint()
	l.Close()
	cpFile := filepath.Join(dir, "later.txt")
	os.WriteFile(cpFile, laterCP, 0o644)
	prefix := filepath.Join(dir, "auditor")
	if out, err := runCLI(t, "audit", "keygen", "--name", "auditor.lin", "--out", prefix); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	cs := filepath.Join(dir, "later.cosigned.txt")
	if out, err := runCLI(t, "audit", "cosign", "--key", prefix+".key", "--verifier-key", vkeyFile, cpFile, "--out", cs); err != nil {
		t.Fatalf("cosign: %v\n%s", err, out)
	}
	verify := func(db string) (string, error) {
		return runCLI(t, "audit", "verify", "--db", db, "--cosigned", cs, "--cosigner-key", prefix+".pub", "--verifier-key", vkeyFile)
	}
	if out, err := verify(later); err != nil || !strings.Contains(out, "OK ") {
		t.Fatalf("the untouched export: %v\n%s", err, out)
	}
	// Truncated: the early export lacks what the cosigned checkpoint covers.
	if out, err := verify(early); !errors.Is(err, errFailed) || !strings.Contains(out, "truncated") {
		t.Errorf("a truncated ledger must fail: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "audit", "consistency", "--ledger", early, "--old", earlyCP, "--new", cs, "--out", filepath.Join(dir, "c.json")); err == nil ||
		!strings.Contains(err.Error(), "events were removed") {
		t.Errorf("consistency against a truncated ledger: %v", err)
	}
	// From the untouched export, offline, the cosigned checkpoint extends
	// the early one (its cosignature needs the auditor's key to check).
	cf := filepath.Join(dir, "ok.json")
	if out, err := runCLI(t, "audit", "consistency", "--ledger", later, "--old", earlyCP, "--new", cs, "--out", cf); err != nil {
		t.Fatalf("offline consistency: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "audit", "check-proof", cf, "--verifier-key", vkeyFile); !errors.Is(err, errFailed) || !strings.Contains(out, "cosigner key") {
		t.Errorf("a cosignature without its key: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "audit", "check-proof", cf, "--verifier-key", vkeyFile, "--cosigner-key", prefix+".pub"); err != nil || !strings.Contains(out, "cosigned by: auditor.lin") {
		t.Errorf("with the cosigner key: %v\n%s", err, out)
	}

	// Rewritten: one early event of a copy is changed in place.
	rewritten := filepath.Join(dir, "rewritten.db")
	b, _ := os.ReadFile(later)
	os.WriteFile(rewritten, b, 0o600)
	if err := audit.TamperEvent(rewritten, 2, func(leaf []byte) []byte {
		return []byte(strings.Replace(string(leaf), `"actor":"`, `"actor":"x`, 1))
	}); err != nil {
		t.Fatal(err)
	}
	if out, err := verify(rewritten); !errors.Is(err, errFailed) || !strings.Contains(out, "FAILED") {
		t.Errorf("a rewritten ledger must fail: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "audit", "verify", "--db", rewritten, "--checkpoint", cpFile, "--verifier-key", vkeyFile); !errors.Is(err, errFailed) {
		t.Errorf("a rewritten ledger against the kept checkpoint: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "audit", "prove", "2", "--ledger", rewritten, "--out", filepath.Join(dir, "p.json")); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("a proof of a rewritten event: %v", err)
	}
	// The untouched export proves offline.
	pf := filepath.Join(dir, "p2.json")
	if out, err := runCLI(t, "audit", "prove", "2", "--ledger", later, "--out", pf); err != nil {
		t.Fatalf("offline prove: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "audit", "check-proof", pf, "--verifier-key", vkeyFile, "--json"); err != nil || !strings.Contains(out, `"ok": true`) {
		t.Errorf("offline proof: %v\n%s", err, out)
	}
}

// waitForCLI polls cond (it never asserts how long anything takes).
func waitForCLI(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 2000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("gave up waiting")
}
