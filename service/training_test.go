package service

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"custodian/accounts"
	"custodian/audit"
)

// TestTrainingRecordAndReport: supervisors and admins record training;
// the report lists designated staff under three hours in the year.
func TestTrainingRecordAndReport(t *testing.T) {
	p := reviewPeople(t)
	p.add("cora", accounts.RoleContractor)
	ctx := context.Background()
	rec := func(by, user, hours, date string) (Training, error) {
		return p.s.RecordTraining(ctx, p.actor[by], TrainingRecord{Username: user, Hours: hours, Date: date, Course: "個資保護教育訓練"})
	}
	tr, err := rec("sue", "officer.a", "2", "2026-03-01")
	if err != nil || tr.ID != "T1" || tr.Hours != "2" {
		t.Fatalf("%+v %v", tr, err)
	}
	if _, err := rec("adam", "officer.a", "1.5", "2026-06-01"); err != nil {
		t.Fatal(err)
	}
	if _, err := rec("sue", "officer.b", "2.99", "2026-06-01"); err != nil {
		t.Fatal(err)
	}
	if _, err := rec("sue", "officer.b", "5", "2025-06-01"); err != nil { // another year
		t.Fatal(err)
	}
	if _, err := rec("auditor.a", "officer.b", "1", "2026-06-01"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("an auditor recorded training: %v", err)
	}
	for _, bad := range [][2]string{{"0", "2026-01-01"}, {"1.234", "2026-01-01"}, {"-1", "2026-01-01"}, {"25", "2026-01-01"}, {"1", "2026-13-01"}, {"1", "2027-01-01"}} {
		if _, err := rec("sue", "officer.b", bad[0], bad[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("%v: %v", bad, err)
		}
	}
	if _, err := rec("sue", "nobody", "1", "2026-01-01"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := p.s.RecordTraining(ctx, p.actor["sue"], TrainingRecord{Username: "officer.b", Hours: "1", Date: "2026-01-01", Course: "x", CertificateSHA256: "ABC"}); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
	evs := events(t, p.s, audit.EvTrainingRecorded)
	if len(evs) != 4 || evs[0].Actor != "sue" || evs[0].Details["username"] != "officer.a" || evs[0].Details["hours"] != "2" || evs[0].Details["training"] != "T1" {
		t.Fatalf("training.recorded: %+v", evs)
	}
	short, err := p.s.TrainingReport(ctx, p.actor["dora"], 2026)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range short {
		names = append(names, x.Username+"="+x.Hours+"/"+x.Missing)
	}
	// officer.a has 3.5; officer.b 2.99; sue (supervisor) and cora
	// (contractor) none; adam, auditor.a and dora are not designated.
	if got := strings.Join(names, " "); got != "cora=0/3 officer.b=2.99/0.01 sue=0/3" {
		t.Fatalf("short of training: %s", got)
	}
	if _, err := p.s.TrainingReport(ctx, p.actor["officer.a"], 2026); !errors.Is(err, ErrForbidden) {
		t.Fatal(err)
	}
}

// TestTrainingRuleRefusesReads: with training.enforce, a designated
// person short of three hours in the last twelve months is refused; with
// enough hours, or without enforcement, or not designated, allowed.
func TestTrainingRuleRefusesReads(t *testing.T) {
	p := reviewPeople(t)
	ctx := context.Background()
	now := p.clk.now() // 2026-12-01
	if err := p.s.trainingRule(p.actor["officer.a"], now); err != nil {
		t.Fatalf("without enforcement: %v", err)
	}
	p.s.config().Training.Enforce = true
	err := p.s.trainingRule(p.actor["officer.a"], now)
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "training:") || !strings.Contains(err.Error(), "3 hours") {
		t.Fatalf("untrained officer: %v", err)
	}
	if err := p.s.trainingRule(p.actor["auditor.a"], now); err != nil {
		t.Fatalf("an auditor reads no data and is not designated: %v", err)
	}
	for _, h := range []struct{ hours, date string }{{"1", "2025-11-30"}, {"2", "2026-01-15"}} {
		if _, err := p.s.RecordTraining(ctx, p.actor["sue"], TrainingRecord{Username: "officer.a", Hours: h.hours, Date: h.date, Course: "個資法"}); err != nil {
			t.Fatal(err)
		}
	}
	// 2025-11-30 is more than twelve months before 2026-12-01: 2 hours.
	if err := p.s.trainingRule(p.actor["officer.a"], now); !errors.Is(err, ErrForbidden) {
		t.Fatalf("training older than a year counted: %v", err)
	}
	if err := p.s.trainingRule(p.actor["officer.a"], now.AddDate(0, 0, -2)); err != nil {
		t.Fatalf("3 hours within the year before 2026-11-29: %v", err)
	}
	if _, err := p.s.RecordTraining(ctx, p.actor["sue"], TrainingRecord{Username: "officer.a", Hours: "1", Date: "2026-11-30", Course: "個資法"}); err != nil {
		t.Fatal(err)
	}
	if err := p.s.trainingRule(p.actor["officer.a"], now); err != nil {
		t.Fatalf("3 hours in the last year: %v", err)
	}
	if err := p.s.trainingRule(p.actor["officer.b"], now.Add(time.Hour)); !errors.Is(err, ErrForbidden) {
		t.Fatalf("officer.b: %v", err)
	}
}
