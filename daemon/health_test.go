package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"custodian/accounts"
	"custodian/audit"
	"custodian/internal/synth"
	"custodian/service"
)

// serveWith is serve with a hook that adjusts the daemon before it serves.
func (f *fixture) serveWith(t *testing.T, setup func(*Daemon)) (*Client, *Daemon, func()) {
	t.Helper()
	d, err := Open(f.cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	d.Service.HashParams = accounts.TestParams
	if setup != nil {
		setup(d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	anon := NewClient(f.cfg.SocketPath())
	waitFor(t, "the daemon to answer", func() bool {
		_, err := anon.Status(context.Background())
		return errors.Is(err, service.ErrUnauthenticated)
	})
	f.loginAll(t)
	cl := f.as(t, "officer.a")
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		d.Close()
	}
	t.Cleanup(stop)
	return cl, d, stop
}

// waitFor polls cond; it never asserts how long anything takes, only
// gives up after a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawStatus is the status as JSON, as any client sees it.
func rawStatus(t *testing.T, cl *Client) map[string]any {
	t.Helper()
	var m map[string]any
	if err := cl.getJSON(context.Background(), "/v1/status", &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func ledgerStatus(t *testing.T, cl *Client) map[string]any {
	t.Helper()
	l, _ := rawStatus(t, cl)["ledger"].(map[string]any)
	if l == nil {
		t.Fatalf("status has no ledger section: %v", rawStatus(t, cl))
	}
	return l
}

// editLedger changes the closed ledger file as someone with a bbolt tool
// setState changes dataset id's recorded state in the closed ledger file,
// as an attacker with write access to the file would (audit's tamper hook).
func setState(t *testing.T, path, id string, from, to audit.State) {
	t.Helper()
	err := audit.TamperDataset(path, id, func(v []byte) []byte {
		nv := bytes.Replace(v, []byte(`"state":"`+string(from)+`"`), []byte(`"state":"`+string(to)+`"`), 1)
		if bytes.Equal(v, nv) {
			t.Fatalf("dataset %s is not %s", id, from)
		}
		return nv
	})
	if err != nil {
		t.Fatal(err)
	}
}

// ledgerEvents reads every event of the (closed) ledger.
func ledgerEvents(t *testing.T, f *fixture) []audit.Event {
	t.Helper()
	led, err := audit.Open(f.cfg.LedgerPath(), audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	evs, err := led.Events(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestServeRefusesTamperedLedger is the incident of the issue: a dataset's
// state changed from quarantined to verified in the bbolt file while the
// daemon was down. On start the daemon must notice, refuse every change,
// write nothing to the ledger, say so in status and in every refusal, and
// leave a report in data_dir/incidents.
func TestServeRefusesTamperedLedger(t *testing.T) {
	f := newFixture(t, nil)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1, TrailerDelta: 1}})
	cl, _, stop := f.serve(t)
	ctx := context.Background()
	if _, err := cl.Run(ctx, "extract", nil); err != nil {
		t.Fatal(err)
	}
	ds, err := cl.Datasets(ctx)
	if err != nil || len(ds) != 1 || ds[0].State != string(audit.StateQuarantined) {
		t.Fatalf("want one quarantined dataset: %+v %v", ds, err)
	}
	id := ds[0].ID
	if l := ledgerStatus(t, cl); l["state"] != "ok" {
		t.Fatalf("a sound ledger: %v", l)
	}
	stop()
	verified, err := os.ReadFile(filepath.Join(f.cfg.DataDir, "verified.checkpoint"))
	if err != nil {
		t.Fatalf("a verified start must leave its checkpoint: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(f.cfg.DataDir, "verified.checkpoint")); fi.Mode().Perm() != 0o600 {
		t.Errorf("verified.checkpoint is %v, want 0600", fi.Mode().Perm())
	}

	setState(t, f.cfg.LedgerPath(), id, audit.StateQuarantined, audit.StateVerified)

	cl, d, stop := f.serve(t)
	before, _ := d.Ledger.Size()
	cp, _ := d.Ledger.Checkpoint()

	l := ledgerStatus(t, cl)
	if l["state"] != "damaged" {
		t.Fatalf("status must show the damage: %v", l)
	}
	problem, _ := l["problem"].(string)
	for _, want := range []string{id, "custodian audit verify", "backup"} {
		if !strings.Contains(problem, want) {
			t.Errorf("the problem must mention %q: %s", want, problem)
		}
	}
	incident, _ := l["incident"].(string)
	if fi, err := os.Stat(incident); err != nil || fi.Mode().Perm() != 0o600 || filepath.Dir(incident) != filepath.Join(f.cfg.DataDir, "incidents") {
		t.Fatalf("incident report %q: %v %v", incident, fi, err)
	} else if b, _ := os.ReadFile(incident); !bytes.Contains(b, []byte(`dataset record "`+id+`" differs from its last state`)) {
		t.Errorf("the incident report must name the record:\n%s", b)
	}

	// Every change is refused, naming the rule.
	refused := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "failed verification") || !strings.Contains(err.Error(), "custodian audit verify") {
			t.Errorf("%s on a damaged ledger: %v", what, err)
		}
	}
	_, err = cl.Run(ctx, "extract", nil)
	refused("job run", err)
	_, err = cl.Release(ctx, id, "the provider confirmed the count")
	refused("release", err)
	_, err = cl.Repull(ctx, id, "the provider sent it again")
	refused("repull", err)
	_, err = cl.RecordScrub(ctx, service.ScrubReport{Checked: 1})
	refused("recording a scrub", err)
	d.scheduled(context.Background(), "extract") // a scheduled run

	// Reading goes on, with a warning.
	if ds, err := cl.Datasets(ctx); err != nil || len(ds) != 1 {
		t.Fatalf("listing on a damaged ledger: %v", err)
	}
	if w := cl.Warning(); !strings.Contains(w, "failed verification") {
		t.Errorf("responses must carry the warning: %q", w)
	}
	if _, err := f.as(t, "auditor.a").Verify(ctx, audit.VerifyOptions{}); err != nil {
		t.Fatalf("audit verify on a damaged ledger: %v", err)
	}
	if _, err := f.as(t, "auditor.a").Export(ctx, &bytes.Buffer{}); err != nil {
		t.Fatalf("export on a damaged ledger: %v", err)
	}
	stop()
	// Nothing was written to the ledger, and nothing new is trusted.
	led, err := audit.Open(f.cfg.LedgerPath(), audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := led.Size()
	cp2, _ := led.Checkpoint()
	led.Close()
	if after != before || !bytes.Equal(cp, cp2) {
		t.Errorf("the damaged ledger was written to: %d events before, %d after", before, after)
	}
	if v2, _ := os.ReadFile(filepath.Join(f.cfg.DataDir, "verified.checkpoint")); !bytes.Equal(v2, verified) {
		t.Error("the verified checkpoint moved on a damaged ledger")
	}
	// What happened while damaged is in the incident report.
	if b, _ := os.ReadFile(incident); !bytes.Contains(b, []byte(`"type":"daemon.started"`)) || !bytes.Contains(b, []byte(`"type":"audit.verified"`)) {
		t.Errorf("events that could not go on the ledger must be in the incident report:\n%s", b)
	}

	// Restored (here: the edit undone), the daemon serves again.
	setState(t, f.cfg.LedgerPath(), id, audit.StateVerified, audit.StateQuarantined)
	cl, _, _ = f.serve(t)
	if l := ledgerStatus(t, cl); l["state"] != "ok" {
		t.Fatalf("after restoring: %v", l)
	}
}

// TestStartVerification: the first start verifies the whole ledger and
// keeps a signed checkpoint; later starts check only from there on; both
// are on the ledger.
func TestStartVerification(t *testing.T) {
	f := newFixture(t, nil)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1}})
	cl, _, stop := f.serve(t)
	if _, err := cl.Run(context.Background(), "extract", nil); err != nil {
		t.Fatal(err)
	}
	stop()
	_, _, stop = f.serve(t)
	stop()
	var modes []string
	for _, e := range ledgerEvents(t, f) {
		if e.Type == "audit.verified" && e.Details["trigger"] == "start" {
			if e.Details["ok"] != "true" || e.Actor != SystemActor {
				t.Errorf("start verification event: %+v", e)
			}
			modes = append(modes, e.Details["mode"])
		}
	}
	if strings.Join(modes, ",") != "full,incremental" {
		t.Fatalf("start verifications: %v", modes)
	}
}

// TestScheduledVerificationCatchesOldDamage: damage to an old event that no
// served record depends on escapes the start-up check, by design; the
// scheduled full verification finds it and stops the daemon's work.
func TestScheduledVerificationCatchesOldDamage(t *testing.T) {
	f := newFixture(t, nil)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1}})
	cl, _, stop := f.serve(t)
	if _, err := cl.Run(context.Background(), "extract", nil); err != nil {
		t.Fatal(err)
	}
	stop()
	// Event 0 (installation.initialized) gets another actor.
	if err := audit.TamperEvent(f.cfg.LedgerPath(), 0, func(v []byte) []byte {
		return bytes.Replace(v, []byte(`"actor":"installer"`), []byte(`"actor":"someone"`), 1)
	}); err != nil {
		t.Fatal(err)
	}
	f.cfg.Verify.Every.Duration = 20 * time.Millisecond
	cl, _, _ = f.serve(t)
	waitFor(t, "the scheduled verification", func() bool { return ledgerStatus(t, cl)["state"] == "damaged" })
	l := ledgerStatus(t, cl)
	if p, _ := l["problem"].(string); !strings.Contains(p, "event 0") {
		t.Errorf("the problem must name the first bad entry: %v", l)
	}
	if _, err := cl.Run(context.Background(), "extract", nil); err == nil || !strings.Contains(err.Error(), "failed verification") {
		t.Errorf("a run after the scheduled verification failed: %v", err)
	}
}

// TestLedgerWriteFailure is the second incident: the disk holding the
// ledger is full. The daemon must not report anything as done, must refuse
// new work while it cannot write and say why, and once space is freed it
// must record every event it kept, in order, with its original time, and
// resume.
func TestLedgerWriteFailure(t *testing.T) {
	f := newFixture(t, nil)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1}})
	var full atomic.Bool
	cl, d, stop := f.serveWith(t, func(d *Daemon) {
		d.health.retryMax = 5 * time.Millisecond
		d.Ledger.SetCommitFault(func() error {
			if full.Load() {
				return &os.PathError{Op: "write", Path: f.cfg.LedgerPath(), Err: syscall.ENOSPC}
			}
			return nil
		})
	})
	ctx := context.Background()
	sizeBefore, _ := d.Ledger.Size()
	full.Store(true)
	failedAt := time.Now().UTC()

	// The run that meets the full disk: nothing is reported as stored.
	res, err := cl.Run(ctx, "extract", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Failed() || len(res.Files) != 1 || res.Files[0].Outcome != "failed" || res.Files[0].DatasetID != "" {
		t.Fatalf("a file whose dataset could not be committed must fail: %+v", res)
	}
	l := ledgerStatus(t, cl)
	problem, _ := l["problem"].(string)
	if l["state"] != "unwritable" || !strings.Contains(problem, "no space left on device") || !strings.Contains(problem, "accepts no work") {
		t.Fatalf("status must say the ledger cannot be written: %v", l)
	}
	// New work is refused, naming the cause.
	for what, err := range map[string]error{
		"job run": func() error { _, err := cl.Run(ctx, "extract", nil); return err }(),
		"scrub":   func() error { _, err := cl.RecordScrub(ctx, service.ScrubReport{Checked: 1}); return err }(),
	} {
		if err == nil || !strings.Contains(err.Error(), "ledger cannot be written since") || !strings.Contains(err.Error(), "no space left on device") {
			t.Errorf("%s while the ledger cannot be written: %v", what, err)
		}
	}
	d.scheduled(context.Background(), "extract")
	if n, _ := d.Ledger.Size(); n != sizeBefore {
		t.Fatalf("events were written on a full disk: %d -> %d", sizeBefore, n)
	}

	full.Store(false)
	waitFor(t, "the ledger to be written again", func() bool { return ledgerStatus(t, cl)["state"] == "ok" })
	res, err = cl.Run(ctx, "extract", nil)
	if err != nil || res.Failed() || len(res.Files) != 1 || res.Files[0].Outcome != string(audit.StateVerified) {
		t.Fatalf("after space was freed the file must be taken: %+v %v", res, err)
	}
	stop()

	// No gap: every event of the failed run is on the ledger, in order,
	// with its original time and a note that it was recorded late.
	var late []audit.Event
	resumed := -1
	for i, e := range ledgerEvents(t, f)[sizeBefore:] {
		switch {
		case e.Details["recorded_late"] != "":
			late = append(late, e)
			if resumed >= 0 {
				t.Errorf("late event %d after the resumption: %+v", e.Index, e)
			}
		case e.Type == "ledger.write_resumed":
			resumed = i
			if n, _ := strconv.Atoi(e.Details["events_recorded_late"]); n < 1 || n != len(late) ||
				!strings.Contains(e.Details["error"], "no space left on device") {
				t.Errorf("resumption event after %d late events: %+v", len(late), e)
			}
		}
	}
	var types []string
	for i, e := range late {
		types = append(types, string(e.Type))
		if e.Time.Before(failedAt.Add(-time.Second)) || (i > 0 && e.Time.Before(late[i-1].Time)) {
			t.Errorf("late event %d keeps its original time in order: %v", e.Index, e.Time)
		}
	}
	want := "job.started,file.failed,job.failed,job.skipped"
	if strings.Join(types, ",") != want || resumed < 0 {
		t.Fatalf("events recorded late: %v (want %s), resumption at %d", types, want, resumed)
	}
	led, err := audit.Open(f.cfg.LedgerPath(), audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	if rep, err := audit.Verify(led, audit.VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("ledger after the outage: %v\n%v", err, rep)
	}
	b, _ := json.Marshal(late)
	if bytes.Contains(b, []byte("HDR|")) {
		t.Error("events must carry metadata only")
	}
}

// TestStartWithUntrustedCheckpoint: a verified checkpoint that the ledger
// key did not sign is worth nothing; the daemon verifies the whole ledger
// instead, and keeps a genuine one.
func TestStartWithUntrustedCheckpoint(t *testing.T) {
	f := newFixture(t, nil)
	_, _, stop := f.serve(t)
	stop()
	path := filepath.Join(f.cfg.DataDir, "verified.checkpoint")
	if err := os.WriteFile(path, []byte("custodian-ledger/test-unit\n1000\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— forged\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cl, _, stop := f.serve(t)
	if l := ledgerStatus(t, cl); l["state"] != "ok" {
		t.Fatalf("status: %v", l)
	}
	stop()
	evs := ledgerEvents(t, f)
	var last audit.Event
	for _, e := range evs {
		if e.Type == "audit.verified" {
			last = e
		}
	}
	if last.Details["mode"] != "full" || last.Details["trigger"] != "start" {
		t.Fatalf("an untrusted checkpoint must lead to a full verification: %+v", last)
	}
	if b, _ := os.ReadFile(path); bytes.Contains(b, []byte("forged")) {
		t.Error("the forged checkpoint was kept")
	}
}

// TestVerifyRequestWithOtherKey: a caller's verification that fails only
// because the caller gave another key does not stop the daemon; the
// daemon's own check decides.
func TestVerifyRequestWithOtherKey(t *testing.T) {
	f := newFixture(t, nil)
	cl, _, _ := f.serve(t)
	_, other, err := audit.GenerateSigningKey("custodian-ledger/test-unit")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := f.as(t, "auditor.a").Verify(context.Background(), audit.VerifyOptions{VerifierKey: other})
	if err != nil || rep.OK {
		t.Fatalf("verification with another key must fail: %v %v", rep, err)
	}
	if l := ledgerStatus(t, cl); l["state"] != "ok" {
		t.Fatalf("a sound ledger checked with the caller's wrong key is not damaged: %v", l)
	}
}

// TestOfficerActionOnFullDisk: a release whose commit fails reports the
// failure, not success; the daemon then refuses work until the ledger can
// be written, and the release can be done afterwards.
func TestOfficerActionOnFullDisk(t *testing.T) {
	f := newFixture(t, nil)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1, TrailerDelta: 1}})
	var full atomic.Bool
	cl, d, _ := f.serveWith(t, func(d *Daemon) {
		d.health.retryMax = 5 * time.Millisecond
		d.Ledger.SetCommitFault(func() error {
			if full.Load() {
				return &os.PathError{Op: "write", Path: f.cfg.LedgerPath(), Err: syscall.ENOSPC}
			}
			return nil
		})
	})
	ctx := context.Background()
	if _, err := cl.Run(ctx, "extract", nil); err != nil {
		t.Fatal(err)
	}
	ds, _ := cl.Datasets(ctx)
	if len(ds) != 1 || ds[0].State != string(audit.StateQuarantined) {
		t.Fatalf("datasets: %+v", ds)
	}
	full.Store(true)
	if _, err := cl.Release(ctx, ds[0].ID, "count confirmed by the provider"); err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("a release that could not be recorded must fail: %v", err)
	}
	if l := ledgerStatus(t, cl); l["state"] != "unwritable" {
		t.Fatalf("after a failed write: %v", l)
	}
	if x, _, _ := d.Ledger.Dataset(ds[0].ID); x.State != audit.StateQuarantined {
		t.Fatalf("the failed release changed the dataset: %s", x.State)
	}
	full.Store(false)
	waitFor(t, "the ledger to be written again", func() bool { return ledgerStatus(t, cl)["state"] == "ok" })
	if r, err := cl.Release(ctx, ds[0].ID, "count confirmed by the provider"); err != nil || r.State != string(audit.StateReleased) {
		t.Fatalf("release after space was freed: %+v %v", r, err)
	}
}

// TestStopWhileUnwritable: events the ledger never took before the daemon
// stopped are not lost silently: they are in an incident report.
func TestStopWhileUnwritable(t *testing.T) {
	f := newFixture(t, nil)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1}})
	var full atomic.Bool
	cl, _, stop := f.serveWith(t, func(d *Daemon) {
		d.health.retryMax = 5 * time.Millisecond
		d.Ledger.SetCommitFault(func() error {
			if full.Load() {
				return &os.PathError{Op: "write", Path: f.cfg.LedgerPath(), Err: syscall.ENOSPC}
			}
			return nil
		})
	})
	full.Store(true)
	if _, err := cl.Run(context.Background(), "extract", nil); err != nil {
		t.Fatal(err)
	}
	stop()
	reports, _ := filepath.Glob(filepath.Join(f.cfg.DataDir, "incidents", "*-ledger-unwritable.txt"))
	if len(reports) != 1 {
		t.Fatalf("want one incident report, found %v", reports)
	}
	b, _ := os.ReadFile(reports[0])
	for _, want := range []string{`"type":"job.started"`, `"type":"file.failed"`, `"type":"job.failed"`, `"type":"daemon.stopped"`, "no space left on device"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("the report lacks %s:\n%s", want, b)
		}
	}
	if fi, _ := os.Stat(reports[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("report mode %v", fi.Mode().Perm())
	}
}
