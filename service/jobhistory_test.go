package service

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"custodian/accounts"
	"custodian/audit"
	"custodian/configs"
)

// TestLineDiff: the diff keeps common lines, marks the others removed or
// added in order (removed before added where a line was replaced), and
// holds every line of both texts.
func TestLineDiff(t *testing.T) {
	show := func(d []DiffLine) string {
		var b strings.Builder
		for _, l := range d {
			b.WriteString(l.Op + l.Text + "\n")
		}
		return b.String()
	}
	for _, c := range []struct{ old, new, want string }{
		{"", "a\nb\n", "+a\n+b\n"},
		{"a\nb\n", "", "-a\n-b\n"},
		{"a\nb\nc\n", "a\nb\nc\n", " a\n b\n c\n"},
		{"a\nschedule: 1\nz\n", "a\nschedule: 2\nz\n", " a\n-schedule: 1\n+schedule: 2\n z\n"},
		{"a\nb\nc\nd\n", "a\nc\nd\ne\n", " a\n-b\n c\n d\n+e\n"},
		{"x\n", "y\n", "-x\n+y\n"},
	} {
		if got := show(LineDiff(c.old, c.new)); got != c.want {
			t.Errorf("LineDiff(%q, %q):\n%s\nwant\n%s", c.old, c.new, got, c.want)
		}
	}
}

// settingsOf renders the jobs of a small configuration.
func settingsOf(jobs ...*configs.Job) map[string]string {
	src := &configs.Source{Address: "10.0.0.1:22", User: "hbxfer", KeyFile: "/etc/c/id", KnownHosts: "/etc/c/kh"}
	out := map[string]string{}
	for _, j := range jobs {
		out[j.Name] = j.Settings(src, []string{"ssh-ed25519 SHA256:abc"})
	}
	return out
}

func job(name, schedule string) *configs.Job {
	return &configs.Job{Name: name, Source: "moi", Schedule: schedule, RemoteDir: "/outbox", Pattern: "HR_*.txt", Kind: "extract", Purpose: "vaccination"}
}

// TestJobSettingsRecorded: the first recording adds every job; the same
// settings again record nothing; a changed schedule records one changed
// event naming the previous digest, whose diff shows the old and the new
// schedule line; a job left out is recorded removed once; the history is
// newest first and read by those the matrix allows, refused (and the
// refusal recorded) to an admin and to an officer of another unit.
func TestJobSettingsRecorded(t *testing.T) {
	p := newPeople(t)
	s := p.s
	ctx := context.Background()
	s.config().Jobs = []*configs.Job{job("extract", "0 2 * * *"), job("changes", "*/15 * * * *")}
	evs, err := s.RecordJobSettings(settingsOf(job("extract", "0 2 * * *"), job("changes", "*/15 * * * *")), "start")
	if err != nil || len(evs) != 2 {
		t.Fatalf("first start: %d events, %v", len(evs), err)
	}
	for _, ev := range evs {
		if ev.Type != audit.EvJobConfigured || ev.Details["change"] != ChangeAdded || ev.Details["trigger"] != "start" || ev.Actor != SystemActor ||
			ev.Details["sha256"] != configs.SettingsSHA256(ev.Details["settings"]) || !strings.Contains(ev.Details["settings"], "source.host: 10.0.0.1\n") {
			t.Errorf("added: %+v", ev)
		}
	}
	size, _ := s.Ledger.Size()
	if evs, err := s.RecordJobSettings(settingsOf(job("extract", "0 2 * * *"), job("changes", "*/15 * * * *")), "start"); err != nil || len(evs) != 0 {
		t.Fatalf("a second start with the same settings recorded %d events (%v)", len(evs), err)
	}
	if after, _ := s.Ledger.Size(); after != size {
		t.Fatalf("a second start wrote %d events", after-size)
	}
	evs, err = s.RecordJobSettings(settingsOf(job("extract", "0 3 * * *"), job("changes", "*/15 * * * *")), "reload")
	if err != nil || len(evs) != 1 {
		t.Fatalf("reload with a changed schedule: %d events, %v", len(evs), err)
	}
	ch := evs[0]
	if ch.Job != "extract" || ch.Details["change"] != ChangeChanged || ch.Details["trigger"] != "reload" ||
		ch.Details["previous_sha256"] != configs.SettingsSHA256(settingsOf(job("extract", "0 2 * * *"))["extract"]) {
		t.Fatalf("changed: %+v", ch)
	}
	evs, err = s.RecordJobSettings(settingsOf(job("extract", "0 3 * * *")), "reload")
	if err != nil || len(evs) != 1 || evs[0].Job != "changes" || evs[0].Details["change"] != ChangeRemoved ||
		evs[0].Details["settings"] != "" || evs[0].Details["previous_sha256"] == "" {
		t.Fatalf("removed: %+v %v", evs, err)
	}
	if evs, _ := s.RecordJobSettings(settingsOf(job("extract", "0 3 * * *")), "start"); len(evs) != 0 {
		t.Fatalf("a removed job is recorded removed once: %+v", evs)
	}

	hist, err := s.JobHistory(ctx, p.actor["sue"], "extract")
	if err != nil || len(hist) != 2 {
		t.Fatalf("history: %+v %v", hist, err)
	}
	if hist[0].Change != ChangeChanged || hist[1].Change != ChangeAdded || hist[0].Index <= hist[1].Index {
		t.Fatalf("history must be newest first: %+v", hist)
	}
	var removed, added []string
	for _, l := range hist[0].Diff {
		switch l.Op {
		case DiffRemoved:
			removed = append(removed, l.Text)
		case DiffAdded:
			added = append(added, l.Text)
		}
	}
	if !slices.Equal(removed, []string{"schedule: 0 2 * * *"}) || !slices.Equal(added, []string{"schedule: 0 3 * * *"}) {
		t.Fatalf("the diff must show the old and the new schedule: -%q +%q", removed, added)
	}
	for _, l := range hist[1].Diff {
		if l.Op != DiffAdded {
			t.Fatalf("the first version is all added: %+v", hist[1].Diff)
		}
	}
	// The removed job keeps its history; its last version removes every line.
	gone, err := s.JobHistory(ctx, p.actor["sue"], "changes")
	if err != nil || len(gone) != 2 || gone[0].Change != ChangeRemoved {
		t.Fatalf("removed job's history: %+v %v", gone, err)
	}
	for _, l := range gone[0].Diff {
		if l.Op != DiffRemoved {
			t.Fatalf("a removal removes every line: %+v", gone[0].Diff)
		}
	}
	if _, err := s.JobHistory(ctx, p.actor["sue"], "never"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a job never configured: %v", err)
	}

	// Who may read it.
	p.add("audrey", accounts.RoleAuditor)
	p.add("olga", accounts.RoleOfficer)
	if _, err := s.JobHistory(ctx, p.actor["audrey"], "extract"); err != nil {
		t.Fatalf("auditor: %v", err)
	}
	if _, err := s.JobHistory(ctx, p.actor["olga"], "extract"); err != nil {
		t.Fatalf("officer of the unit: %v", err)
	}
	other := p.actor["olga"]
	other.Unit = "south"
	for name, a := range map[string]Actor{"admin": p.actor["adam"], "officer of another unit": other} {
		before, _ := s.Ledger.Size()
		if _, err := s.JobHistory(ctx, a, "extract"); !errors.Is(err, ErrForbidden) {
			t.Errorf("%s: %v", name, err)
		}
		evs, _ := s.Ledger.Events(before, 0)
		if len(evs) != 1 || evs[0].Type != audit.EvAccessRefused || evs[0].Details["action"] != string(ActJobHistory) {
			t.Errorf("%s: the refusal must be recorded: %+v", name, evs)
		}
	}
}

// TestTrimDiff: changed lines keep n unchanged lines around them, a gap
// stands for each run left out, and a diff without a change trims to
// nothing.
func TestTrimDiff(t *testing.T) {
	d := LineDiff("a\nb\nc\nd\ne\nf\ng\nh", "a\nb\nc\nD\ne\nf\ng\nh")
	var got []string
	for _, l := range TrimDiff(d, 1) {
		got = append(got, l.Op+l.Text)
	}
	want := []string{"...", " c", "-d", "+D", " e", "..."}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("TrimDiff = %q, want %q", got, want)
	}
	if n := len(TrimDiff(LineDiff("a\nb", "a\nb"), 2)); n != 0 {
		t.Fatalf("no change trims to %d lines", n)
	}
	if n := len(TrimDiff(LineDiff("", "a\nb"), 2)); n != 2 {
		t.Fatalf("an added version keeps its %d lines, want 2", n)
	}
}
