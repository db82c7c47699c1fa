package service

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"custodian/accounts"
	"custodian/audit"
)

var update = flag.Bool("update", false, "rewrite the golden report files")

// reads appends n access records by person in 2026 (Taipei time), as the
// read path will write them, and returns their ledger indexes.
func reads(t *testing.T, s *Service, person string, n int, month time.Month) []int64 {
	t.Helper()
	var out []int64
	err := s.Ledger.Update(func(tx *audit.Tx) error {
		for i := range n {
			typ := audit.EvDatasetRead
			d := map[string]string{"purpose": "vaccination", "case": fmt.Sprintf("C-%s-%d", person, i), "bytes": "100", "sha256": strings.Repeat("a", 64), "outcome": "ok"}
			if i%5 == 4 {
				typ = audit.EvDatasetExported
				d = map[string]string{"purpose": "vaccination", "case": fmt.Sprintf("C-%s-%d", person, i), "bytes": "100", "sha256": strings.Repeat("b", 64), "recipient_fingerprint": "age1xyz", "request": "R1"}
			}
			ev, err := tx.Append(audit.Event{Time: time.Date(2026, month, 1+i%28, 10, 0, 0, 0, ReportZone), Actor: person, Type: typ, DatasetID: "ds-000000000001", Details: d})
			if err != nil {
				return err
			}
			out = append(out, ev.Index)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func reviewPeople(t *testing.T) *people {
	t.Helper()
	p := newPeople(t)
	p.add("officer.a", accounts.RoleOfficer)
	p.add("officer.b", accounts.RoleOfficer)
	p.add("auditor.a", accounts.RoleAuditor)
	p.add("dora", accounts.RoleDirector)
	return p
}

func TestParsePeriod(t *testing.T) {
	for in, want := range map[string][2]string{
		"2026":    {"2025-12-31T16:00:00Z", "2026-12-31T16:00:00Z"},
		"2026H1":  {"2025-12-31T16:00:00Z", "2026-06-30T16:00:00Z"},
		"2026h2":  {"2026-06-30T16:00:00Z", "2026-12-31T16:00:00Z"},
		"2026-03": {"2026-02-28T16:00:00Z", "2026-03-31T16:00:00Z"},
		"2026-12": {"2026-11-30T16:00:00Z", "2026-12-31T16:00:00Z"},
	} {
		p, err := ParsePeriod(in)
		if err != nil || p.From.Format(time.RFC3339) != want[0] || p.Until.Format(time.RFC3339) != want[1] {
			t.Errorf("ParsePeriod(%q) = %+v, %v; want %v", in, p, err, want)
		}
	}
	for _, in := range []string{"", "26", "2026H3", "2026-13", "2026-1", "x2026", "2026Q1"} {
		if _, err := ParsePeriod(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePeriod(%q): %v", in, err)
		}
	}
	now := time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)
	for kind, want := range map[string]string{"yearly": "2025", "semiannual": "2025H2", "monthly": "2026-02"} {
		if got := lastPeriod(kind, now); got.Name != want {
			t.Errorf("lastPeriod(%s) = %s, want %s", kind, got.Name, want)
		}
	}
}

// TestSampleRule: the sample size rule and the order by SHA-256(seed ‖
// index), computed here independently.
func TestSampleRule(t *testing.T) {
	for _, c := range []struct{ n, bp, min, want int }{
		{0, 100, 1, 0}, {1, 100, 1, 1}, {99, 100, 1, 1}, {100, 100, 1, 1}, {101, 100, 1, 2},
		{250, 100, 1, 3}, {10, 100, 3, 3}, {2, 100, 3, 2}, {10, 5000, 1, 5}, {10, 10000, 1, 10},
	} {
		if got := SampleSize(c.n, c.bp, c.min); got != c.want {
			t.Errorf("SampleSize(%d, %d, %d) = %d, want %d", c.n, c.bp, c.min, got, c.want)
		}
	}
	var pop []AccessRecord
	for i := range int64(40) {
		pop = append(pop, AccessRecord{Index: 100 + i, Person: []string{"x", "y"}[i%2]})
	}
	got := DrawSample(pop, "seed-1", 1000, 1) // 10%: 2 of each person's 20
	// Independent: the two smallest keys per person.
	want := []int64{}
	for _, person := range []string{"x", "y"} {
		var idx []int64
		for _, r := range pop {
			if r.Person == person {
				idx = append(idx, r.Index)
			}
		}
		slices.SortFunc(idx, func(a, b int64) int {
			ka, kb := SampleKey("seed-1", a), SampleKey("seed-1", b)
			return bytes.Compare(ka[:], kb[:])
		})
		want = append(want, idx[:2]...)
	}
	slices.Sort(want)
	var gotIdx []int64
	for _, r := range got {
		gotIdx = append(gotIdx, r.Index)
	}
	if !slices.Equal(gotIdx, want) {
		t.Fatalf("sample %v, want %v", gotIdx, want)
	}
	if other := DrawSample(pop, "seed-2", 1000, 1); slices.EqualFunc(other, got, func(a, b AccessRecord) bool { return a.Index == b.Index }) {
		t.Error("another seed drew the same sample of 4 out of 40: the seed is not used")
	}
}

// TestSameSeedRedrawsSameSample: two reviews of the same period with the
// same seed draw the same records, and the draw recorded on the ledger
// can be redone from the events alone.
func TestSameSeedRedrawsSameSample(t *testing.T) {
	p := reviewPeople(t)
	ctx := context.Background()
	a := reads(t, p.s, "officer.a", 150, time.March)
	b := reads(t, p.s, "officer.b", 30, time.May)
	jan := reads(t, p.s, "officer.b", 5, time.January)
	first, err := p.s.StartReview(ctx, p.actor["auditor.a"], ReviewStart{Period: "2026", Seed: "fixed-seed-115"})
	if err != nil {
		t.Fatal(err)
	}
	// officer.a: ceil(150 × 1%) = 2; officer.b: 35 records, ceil(0.35) = 1.
	if len(first.Sample) != 3 || first.Population != 185 || first.Persons != 2 || first.ID != "RV1" {
		t.Fatalf("review: %+v", first)
	}
	reads(t, p.s, "officer.a", 3, time.March) // later records do not change a redraw at the recorded size
	second, err := p.s.StartReview(ctx, p.actor["auditor.a"], ReviewStart{Period: "2026", Seed: "fixed-seed-115", Rate: "1%", MinPerPerson: 1})
	if err != nil {
		t.Fatal(err)
	}
	third, err := p.s.StartReview(ctx, p.actor["auditor.a"], ReviewStart{Period: "2026", Seed: "another-seed"})
	if err != nil {
		t.Fatal(err)
	}
	// Redraw from the ledger alone, with the review.started event's facts.
	evs := events(t, p.s, audit.EvReviewStarted)
	d := evs[0].Details
	if d["seed"] != "fixed-seed-115" || d["method"] != SampleMethod || d["sample_sha256"] != first.SampleSHA256 || d["sample_count"] != "3" {
		t.Fatalf("review.started: %v", d)
	}
	all, _ := p.s.Ledger.Events(0, 100000)
	var pop []AccessRecord
	per, _ := ParsePeriod(d["period"])
	var size int64
	fmt.Sscan(d["ledger_size"], &size)
	for _, ev := range all[:size] {
		if slices.Contains(AccessRecordTypes, ev.Type) && per.Contains(ev.Time) {
			pop = append(pop, accessRecord(ev))
		}
	}
	var redrawn []int64
	for _, r := range DrawSample(pop, d["seed"], 100, 1) {
		redrawn = append(redrawn, r.Index)
	}
	if IndexesDigest(redrawn) != d["sample_sha256"] || !slices.Equal(redrawn, first.Indexes()) {
		t.Fatalf("redrawn %v, recorded %v", redrawn, first.Indexes())
	}
	// The second review saw 3 more of officer.a's records: 153 → still 2.
	if second.Population != 188 {
		t.Fatalf("second population %d", second.Population)
	}
	for _, i := range first.Indexes() {
		if !slices.Contains(a, i) && !slices.Contains(b, i) && !slices.Contains(jan, i) {
			t.Errorf("sampled %d is not an access record of the period", i)
		}
	}
	if slices.Equal(third.Indexes(), first.Indexes()) {
		t.Error("another seed drew the same sample")
	}
	show, err := p.s.ShowReview(ctx, p.actor["dora"], first.ID)
	if err != nil || !slices.Equal(show.Indexes(), first.Indexes()) {
		t.Fatalf("show: %v %v", show.Indexes(), err)
	}
	if _, err := p.s.StartReview(ctx, p.actor["officer.a"], ReviewStart{Period: "2026"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("an officer started a review: %v", err)
	}
	if r, err := p.s.StartReview(ctx, p.actor["auditor.a"], ReviewStart{Period: "2026"}); err != nil || len(r.Seed) != 32 {
		t.Fatalf("a random seed: %q %v", r.Seed, err)
	}
	for _, bad := range []ReviewStart{{Period: "2027"}, {Period: "2026", Rate: "2"}, {Period: "2026", Seed: "has space"}, {Period: "2026", MinPerPerson: -1}} {
		if _, err := p.s.StartReview(ctx, p.actor["auditor.a"], bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

// TestReviewCannotCloseWithOpenInvestigations: an anomaly opens an
// investigation; the review refuses to close (recorded) until it is
// closed with an outcome.
func TestReviewCannotCloseWithOpenInvestigations(t *testing.T) {
	p := reviewPeople(t)
	ctx := context.Background()
	reads(t, p.s, "officer.a", 10, time.March)
	reads(t, p.s, "officer.b", 10, time.April)
	aud := p.actor["auditor.a"]
	v, err := p.s.StartReview(ctx, aud, ReviewStart{Period: "2026", Seed: "s", Rate: "10%"})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Sample) != 2 {
		t.Fatalf("sample %v", v.Indexes())
	}
	x, y := v.Sample[0].Index, v.Sample[1].Index
	if _, err := p.s.RecordFinding(ctx, aud, v.ID, ReviewStep{Record: x, Verdict: VerdictJustified, Note: "case file matches the query"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.s.RecordFinding(ctx, aud, v.ID, ReviewStep{Record: x, Verdict: VerdictAnomaly, Note: "second opinion on it"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("a second finding: %v", err)
	}
	if _, err := p.s.RecordFinding(ctx, aud, v.ID, ReviewStep{Record: 0, Verdict: VerdictJustified, Note: "not in the sample"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a record outside the sample: %v", err)
	}
	if _, err := p.s.RecordFinding(ctx, aud, v.ID, ReviewStep{Record: y, Verdict: VerdictAnomaly, Note: "no case file for this query"}); err != nil {
		t.Fatal(err)
	}
	_, err = p.s.CloseReview(ctx, aud, v.ID)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "open investigation") {
		t.Fatalf("closed with an open investigation: %v", err)
	}
	refused := events(t, p.s, audit.EvAccessRefused)
	if last := refused[len(refused)-1]; last.Details["action"] != string(ActRunReview) || !strings.Contains(last.Details["rule"], "investigation") {
		t.Fatalf("the refusal is not recorded: %+v", last)
	}
	if _, err := p.s.CloseInvestigation(ctx, aud, v.ID, ReviewStep{Record: x, Note: "nothing to investigate"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("closed the investigation of a justified record: %v", err)
	}
	if _, err := p.s.CloseInvestigation(ctx, p.actor["sue"], v.ID, ReviewStep{Record: y, Note: "case file found"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a supervisor closed an investigation: %v", err)
	}
	got, err := p.s.CloseInvestigation(ctx, aud, v.ID, ReviewStep{Record: y, Note: "case file C-9 was filed late; reminded the officer"})
	if err != nil || len(got.OpenInvestigations()) != 0 {
		t.Fatalf("close investigation: %v %v", got.OpenInvestigations(), err)
	}
	closed, err := p.s.CloseReview(ctx, aud, v.ID)
	if err != nil || closed.Closed == nil || closed.Closed.By != "auditor.a" || closed.State() != "closed" {
		t.Fatalf("close: %+v %v", closed.Closed, err)
	}
	if _, err := p.s.RecordFinding(ctx, aud, v.ID, ReviewStep{Record: y, Verdict: VerdictJustified, Note: "after the close"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("a finding after the close: %v", err)
	}
	ce := events(t, p.s, audit.EvReviewClosed)
	if len(ce) != 1 || ce[0].Details["anomalies"] != "1" || ce[0].Details["justified"] != "1" || ce[0].Index != closed.Closed.Event {
		t.Fatalf("review.closed: %+v", ce)
	}
	fe := events(t, p.s, audit.EvReviewFinding)
	if len(fe) != 2 || fe[1].Details["investigation"] != "opened" || fe[1].Details["record"] != fmt.Sprint(y) {
		t.Fatalf("review.finding: %+v", fe)
	}
}

// TestReviewNeedsAFindingPerRecord: a sampled record without a finding
// keeps the review open.
func TestReviewNeedsAFindingPerRecord(t *testing.T) {
	p := reviewPeople(t)
	ctx := context.Background()
	reads(t, p.s, "officer.a", 3, time.March)
	v, err := p.s.StartReview(ctx, p.actor["auditor.a"], ReviewStart{Period: "2026-03", Seed: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.s.CloseReview(ctx, p.actor["auditor.a"], v.ID); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "without a finding") {
		t.Fatalf("closed with a record without a finding: %v", err)
	}
}

// goldenReview makes the review the golden reports show: fixed clock and
// seed, one justified record, one anomaly investigated and closed.
func goldenReview(t *testing.T) (*people, string) {
	t.Helper()
	p := reviewPeople(t)
	ctx := context.Background()
	reads(t, p.s, "officer.a", 120, time.March)
	reads(t, p.s, "officer.b", 7, time.October)
	aud := p.actor["auditor.a"]
	v, err := p.s.StartReview(ctx, aud, ReviewStart{Period: "2026", Seed: "golden-seed-115"})
	if err != nil {
		t.Fatal(err)
	}
	for i, smp := range v.Sample {
		verdict, note := VerdictJustified, "case file and purpose match <the> query"
		if i == 1 {
			verdict, note = VerdictAnomaly, "no case file for this query"
		}
		p.clk.advance(time.Hour)
		if _, err := p.s.RecordFinding(ctx, aud, v.ID, ReviewStep{Record: smp.Index, Verdict: verdict, Note: note}); err != nil {
			t.Fatal(err)
		}
	}
	p.clk.advance(24 * time.Hour)
	if _, err := p.s.CloseInvestigation(ctx, aud, v.ID, ReviewStep{Record: v.Sample[1].Index, Note: "the case file was filed late; officer reminded"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.s.CloseReview(ctx, aud, v.ID); err != nil {
		t.Fatal(err)
	}
	return p, v.ID
}

// TestReviewReportGolden: the report in both languages and both formats,
// with Republic of China dates in Chinese.
func TestReviewReportGolden(t *testing.T) {
	p, id := goldenReview(t)
	ctx := context.Background()
	for _, lang := range ReportLangs {
		for _, format := range []string{FormatHTML, FormatCSV} {
			got, err := p.s.ReviewReport(ctx, p.actor["dora"], id, format, lang)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join("testdata", "report", "review-"+lang+"."+format)
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test ./service -run TestReviewReportGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file; if the change is intended, run with -update and review the diff\n%s", file, got)
			}
			s := string(got)
			if lang == LangZhTW {
				// The review started on 2026-12-01 Taipei: ROC year 115.
				if !strings.Contains(s, "115/03/") {
					t.Errorf("%s: no ROC table date", file)
				}
				if format == FormatHTML && (!strings.Contains(s, "中華民國115年12月1日") || !strings.Contains(s, "中華民國115年1月1日")) {
					t.Errorf("%s: no ROC long date", file)
				}
			} else if !strings.Contains(s, "2026-03-") {
				t.Errorf("%s: no table date", file)
			}
			if format == FormatHTML {
				for _, must := range []string{"@page { size: A4", "golden-seed-115", SampleMethod, "&lt;the&gt;"} {
					if !strings.Contains(s, must) {
						t.Errorf("%s lacks %q", file, must)
					}
				}
				for _, external := range []string{"http://", "https://", "<link", "<script", "src="} {
					if strings.Contains(s, external) {
						t.Errorf("%s has an external resource or script: %q", file, external)
					}
				}
			}
		}
	}
	if _, err := p.s.ReviewReport(ctx, p.actor["dora"], id, "pdf", ""); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
	if _, err := p.s.ReviewReport(ctx, p.actor["dora"], id, "html", "fr"); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
	if _, err := p.s.ReviewReport(ctx, p.actor["officer.a"], id, "html", ""); !errors.Is(err, ErrForbidden) {
		t.Fatal(err)
	}
}

// TestMessageCatalog: every language has every message.
func TestMessageCatalog(t *testing.T) {
	for _, lang := range ReportLangs {
		for k := range messages[LangZhTW] {
			if messages[lang][k] == "" {
				t.Errorf("%s lacks %s", lang, k)
			}
		}
		if len(messages[lang]) != len(messages[LangZhTW]) {
			t.Errorf("%s has %d messages, zh-TW %d", lang, len(messages[lang]), len(messages[LangZhTW]))
		}
	}
	at := time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC) // 1 December in Taipei
	if LongDate(LangZhTW, at) != "中華民國115年12月1日" || ShortDate(LangZhTW, at) != "115/12/01" ||
		LongDate(LangEn, at) != "1 December 2026" || ShortDate(LangEn, at) != "2026-12-01" {
		t.Errorf("dates: %s %s %s %s", LongDate(LangZhTW, at), ShortDate(LangZhTW, at), LongDate(LangEn, at), ShortDate(LangEn, at))
	}
}
