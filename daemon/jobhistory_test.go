package daemon

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"custodian/accounts"
	"custodian/audit"
	"custodian/configs"
	"custodian/service"
)

// jobConfigured lists the job.configured events on the ledger.
func jobConfigured(t *testing.T, l *audit.Ledger) []audit.Event {
	t.Helper()
	evs, err := l.Events(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, e := range evs {
		if e.Type == audit.EvJobConfigured {
			out = append(out, e)
		}
	}
	return out
}

// TestJobSettingsOnTheLedger: the first start records each job added, a
// restart with the same configuration records nothing, a reload with a
// changed schedule records one change whose history diff shows the old
// and the new schedule line, and a job dropped from the file is recorded
// removed; the ledger still verifies; the history is refused to a role
// without job.history.
func TestJobSettingsOnTheLedger(t *testing.T) {
	f := newFixture(t, nil)
	src := f.cfg.Sources["moi"]
	path := filepath.Join(t.TempDir(), "c.yaml")
	write := func(schedule string, second bool) {
		y := `data_dir: ` + f.cfg.DataDir + `
unit: test-unit
accounts: {require_totp: []}
sources:
  moi: {address: "` + src.Address + `", user: hbxfer, key_file: ` + src.KeyFile + `, known_hosts: ` + src.KnownHosts + `}
jobs:
  - name: extract
    source: moi
    officer: officer.a
    schedule: "` + schedule + `"
    remote_dir: /outbox
    pattern: "HR_*.txt"
    records: {trailer: '^TRL(\d+)$'}
    purpose: vaccination
`
		if second {
			y += `  - name: second
    source: moi
    remote_dir: /outbox
    pattern: "CH_*.txt"
    purpose: vaccination
`
		}
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("0 2 * * *", true)
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	_, d, stop := f.serve(t)
	evs := jobConfigured(t, d.Ledger)
	if len(evs) != 2 {
		t.Fatalf("first start: %d job.configured events, want 2", len(evs))
	}
	for _, e := range evs {
		s := e.Details["settings"]
		if e.Details["change"] != "added" || e.Details["trigger"] != "start" || e.Actor != service.SystemActor ||
			!strings.Contains(s, "source.host: 127.0.0.1\n") || !strings.Contains(s, "source.known_hosts: "+src.KnownHosts+"\n") ||
			!strings.Contains(s, "source.host_keys: ") || strings.Contains(s, "(unreadable)") {
			t.Errorf("first start: %+v", e)
		}
		if key, _ := os.ReadFile(src.KeyFile); strings.Contains(s, strings.TrimSpace(string(key))) {
			t.Fatal("the settings hold the source's private key")
		}
	}
	stop()

	// A restart with the same configuration.
	_, d, stop = f.serve(t)
	if again := jobConfigured(t, d.Ledger); len(again) != 2 {
		t.Fatalf("a restart with the same configuration recorded %d more", len(again)-2)
	}

	// A reload: extract's schedule changes, second is gone.
	write("0 3 * * *", false)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	evs = jobConfigured(t, d.Ledger)
	if len(evs) != 4 {
		t.Fatalf("after the reload: %d job.configured events, want 4", len(evs))
	}
	byJob := map[string]audit.Event{evs[2].Job: evs[2], evs[3].Job: evs[3]}
	if e := byJob["extract"]; e.Details["change"] != "changed" || e.Details["trigger"] != "reload" || e.Details["previous_sha256"] != evs[0].Details["sha256"] && e.Details["previous_sha256"] != evs[1].Details["sha256"] {
		t.Errorf("changed: %+v", e)
	}
	if e := byJob["second"]; e.Details["change"] != "removed" || e.Details["settings"] != "" {
		t.Errorf("removed: %+v", e)
	}
	ctx := context.Background()
	hist, err := f.as(t, "auditor.a").JobHistory(ctx, "extract")
	if err != nil || len(hist) != 2 || hist[0].Change != "changed" {
		t.Fatalf("history: %+v %v", hist, err)
	}
	var diff []string
	for _, l := range hist[0].Diff {
		if l.Op != service.DiffKept {
			diff = append(diff, l.Op+l.Text)
		}
	}
	if strings.Join(diff, "|") != "-schedule: 0 2 * * *|+schedule: 0 3 * * *" {
		t.Fatalf("the diff must show the old and the new schedule: %q", diff)
	}
	if hs, err := f.as(t, "sue").JobHistory(ctx, "second"); err != nil || len(hs) != 2 || hs[0].Change != "removed" {
		t.Fatalf("the removed job's history: %+v %v", hs, err)
	}
	if _, err := f.as(t, "adam").JobHistory(ctx, "extract"); !errors.Is(err, service.ErrForbidden) {
		t.Fatalf("an admin: %v", err)
	}
	if rep, err := f.as(t, "auditor.a").Verify(ctx, audit.VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("the ledger must verify: %v %v", rep, err)
	}
}

// addPersonOf makes an officer of another unit.
func (f *fixture) addPersonOf(t *testing.T, user, unit string) {
	t.Helper()
	f.addPersonIn(t, user, "Other Officer", unit, accounts.RoleOfficer)
}

// TestConsoleJobHistory: the jobs page links each job's history for those
// who may read it; the history page shows, in zh-TW (ROC dates) and in
// English, each version newest first with its removed and added lines
// marked by class and by - and +; an admin, a director and an officer of
// another unit are refused (403, and the refusal is on the ledger).
func TestConsoleJobHistory(t *testing.T) {
	cf := newConsole(t, nil)
	// A reload that changes the schedule (the daemon's own path, with a
	// changed copy of the configuration).
	nc := *cf.d.Runner.CurrentConfig()
	for _, sched := range []string{"0 4 * * *", "0 5 * * *"} {
		j := *nc.Jobs[0]
		j.Schedule = sched
		nc.Jobs = []*configs.Job{&j}
		cf.d.recordJobSettings(&nc, "reload")
	}
	if n := len(jobConfigured(t, cf.d.Ledger)); n != 3 {
		t.Fatalf("%d job.configured events, want the start's and two reloads'", n)
	}
	cf.addPersonOf(t, "olaf", "other-unit")

	for _, user := range []string{"auditor.a", "sue", "officer.a"} {
		b := cf.login(t, user)
		_, jobs := cf.get(t, b, "/jobs")
		if !strings.Contains(jobs, `href="/jobs/extract/history"`) {
			t.Errorf("%s: the jobs page must link the history", user)
		}
		for _, lang := range []string{"zh-TW", "en"} {
			resp, body := cf.get(t, b, "/jobs/extract/history?lang="+lang)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s: %s", user, lang, resp.Status)
			}
			for _, want := range []string{msgOf(lang, "jobhist.title"), msgOf(lang, "jobhist.change.changed"), msgOf(lang, "jobhist.change.added"),
				`<del class="diff-del">- schedule: 0 4 * * *</del>`, `<ins class="diff-add">+ schedule: 0 5 * * *</ins>`,
				// Two unchanged lines around the change, a gap for the rest,
				// and every setting of the version behind "details".
				`<span class="diff-keep">  retry.max: `, `<span class="diff-gap">`, "<details><summary>", "\nsource: moi\n"} {
				if !strings.Contains(body, want) {
					t.Errorf("%s %s: the page lacks %q", user, lang, want)
				}
			}
			changed, added := strings.Index(body, " · "+msgOf(lang, "jobhist.change.changed")+"</h2>"), strings.Index(body, " · "+msgOf(lang, "jobhist.change.added")+"</h2>")
			if changed < 0 || added < 0 || changed > added || strings.Count(body, `<section class="version"`) != 3 {
				t.Errorf("%s %s: the newest version comes first", user, lang)
			}
			date := map[string]*regexp.Regexp{"zh-TW": regexp.MustCompile(`>1\d\d/\d{2}/\d{2} \d{2}:\d{2} · `), "en": regexp.MustCompile(`>20\d\d-\d{2}-\d{2} \d{2}:\d{2} · `)}[lang]
			if !date.MatchString(body) {
				t.Errorf("%s %s: the versions' dates are not in the language's form", user, lang)
			}
		}
	}
	for _, user := range []string{"adam", "dora", "olaf"} {
		b := cf.login(t, user)
		if _, jobs := cf.get(t, b, "/jobs"); strings.Contains(jobs, "/history") && user != "olaf" {
			t.Errorf("%s: the jobs page must not link a history they may not read", user)
		}
		before := cf.ledgerSize(t)
		resp, body := cf.get(t, b, "/jobs/extract/history")
		if resp.StatusCode != http.StatusForbidden || strings.Contains(body, "diff-add") {
			t.Errorf("%s: %s, want 403", user, resp.Status)
		}
		evs, _ := cf.d.Ledger.Events(before, 0)
		if len(evs) != 1 || evs[0].Type != audit.EvAccessRefused || evs[0].Actor != user || evs[0].Details["action"] != string(service.ActJobHistory) {
			t.Errorf("%s: the refusal must be on the ledger: %+v", user, evs)
		}
	}
}
