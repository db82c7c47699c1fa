package daemon

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"custodian/internal/synth"
	"custodian/service"
)

// TestRecentRuns: status lists each job's last runs newest first (at most
// service.RecentRuns), with outcome, who ran it and the files; after a
// restart the same list comes from the ledger; the jobs page shows it in
// both languages.
func TestRecentRuns(t *testing.T) {
	f := newFixture(t, nil)
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1, TrailerDelta: 1}})
	cl, _, stop := f.serve(t)
	ctx := context.Background()
	runs := service.RecentRuns + 2
	for i := range runs {
		if i == 1 {
			f.put(t, synth.FileSpec{Name: "HR_2.txt", Options: synth.Options{Records: 5, Seed: 2}})
		}
		if _, err := cl.Run(ctx, "extract", nil); err != nil {
			t.Fatal(err)
		}
	}
	st, err := cl.Status(ctx)
	if err != nil || st.Daemon == nil || len(st.Daemon.Jobs) != 1 {
		t.Fatalf("status: %+v %v", st.Daemon, err)
	}
	live := st.Daemon.Jobs[0].Recent
	if len(live) != service.RecentRuns {
		t.Fatalf("%d recent runs listed, want %d", len(live), service.RecentRuns)
	}
	for i := 1; i < len(live); i++ {
		if live[i].Finished.After(live[i-1].Finished) {
			t.Fatalf("recent runs not newest first: %+v", live)
		}
	}
	// The oldest two runs (the quarantine, then the new file) fell off;
	// every run listed skipped one file or more and took up none.
	for _, r := range live {
		if r.Outcome != "success" || r.Files != 0 || r.Skipped < 1 || r.By != "officer.a" {
			t.Fatalf("a recent run: %+v", r)
		}
	}
	stop()
	cl, _, _ = f.serve(t)
	st, err = cl.Status(ctx)
	if err != nil || st.Daemon == nil {
		t.Fatal(err)
	}
	seeded := st.Daemon.Jobs[0].Recent
	if len(seeded) != len(live) {
		t.Fatalf("after a restart %d recent runs, want %d", len(seeded), len(live))
	}
	for i := range live {
		// The ledger's time is the finished event's, a moment after the
		// run's own end.
		if d := seeded[i].Finished.Sub(live[i].Finished); d < 0 || d > time.Second || seeded[i].Outcome != live[i].Outcome || seeded[i].By != live[i].By ||
			seeded[i].Files != live[i].Files || seeded[i].Skipped != live[i].Skipped {
			t.Fatalf("run %d after a restart %+v, before %+v", i, seeded[i], live[i])
		}
	}
}

// TestConsoleRecentRuns: the jobs page lists each job's recent runs with
// their outcomes, a failed one marked, in zh-TW and English.
func TestConsoleRecentRuns(t *testing.T) {
	cf := newConsole(t, nil)
	cf.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1, TrailerDelta: 1}})
	if _, err := cf.as(t, "officer.a").Run(context.Background(), "extract", nil); err != nil {
		t.Fatal(err)
	}
	b := cf.login(t, "sue")
	for lang, want := range map[string][]string{"zh-TW": {"最近執行紀錄", "<strong>失敗</strong>", "承辦人（保管人）: officer.a"}, "en": {"Recent runs", "<strong>failed</strong>", "Officer (custodian): officer.a"}} {
		resp, body := cf.get(t, b, "/jobs?lang="+lang)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("jobs: %s", resp.Status)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: the jobs page lacks %q", lang, w)
			}
		}
		if strings.Contains(body, `<p class="warn">`) {
			t.Errorf("%s: a warning on the jobs page of a well-configured job", lang)
		}
	}
}

// TestStatusNamesTheOfficerProblem: status shows each job's officer, and
// says so when that name cannot hold custody; the console's jobs page
// shows the warning.
func TestStatusNamesTheOfficerProblem(t *testing.T) {
	f := newFixture(t, nil)
	cl, _, stop := f.serve(t)
	st, err := cl.Status(context.Background())
	if err != nil || st.Daemon == nil || st.Daemon.Jobs[0].Officer != f.cfg.Jobs[0].Officer || st.Daemon.Jobs[0].OfficerProblem != "" {
		t.Fatalf("status with a good officer: %+v %v", st.Daemon, err)
	}
	stop()
	f.cfg.Jobs[0].Officer = "nobody"
	cl, _, _ = f.serve(t)
	st, err = cl.Status(context.Background())
	if err != nil || st.Daemon == nil || !strings.Contains(st.Daemon.Jobs[0].OfficerProblem, "no account nobody") {
		t.Fatalf("status with an unknown officer: %+v %v", st.Daemon, err)
	}
}
