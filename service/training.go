package service

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"custodian/accounts"
	"custodian/audit"
)

// This file holds training records (clause 四(四)): designated staff
// attend at least MinTrainingHours of training on personal data a year.
// Supervisors and admins record the hours; the training report lists who
// is short in a calendar year; with training: {enforce: true} a data read
// by a designated person with fewer than MinTrainingHours in the twelve
// months before it is refused (trainingRule, which the read path calls).
// Enforcement looks back twelve months rather than at the calendar year so
// that the first of January does not lock everyone out.

// MinTrainingHours is the yearly minimum of clause 四(四).
const MinTrainingHours = 3

// DesignatedRoles are the roles of designated staff: the people who handle
// registry data or decide on its use.
var DesignatedRoles = []accounts.Role{accounts.RoleOfficer, accounts.RoleContractor, accounts.RoleSupervisor}

const stateTraining = "training"

// Training is one training record. Hours are kept in hundredths so that
// sums are exact.
type Training struct {
	ID                string    `json:"id"`
	Username          string    `json:"username"`
	Centihours        int       `json:"centihours"`
	Hours             string    `json:"hours"`
	Date              string    `json:"date"` // YYYY-MM-DD
	Course            string    `json:"course"`
	CertificateSHA256 string    `json:"certificate_sha256,omitempty"`
	RecordedBy        string    `json:"recorded_by"`
	RecordedAt        time.Time `json:"recorded_at"`
	Event             int64     `json:"event"`
}

// TrainingRecord asks for training hours to be recorded.
type TrainingRecord struct {
	Username          string `json:"username"`
	Hours             string `json:"hours"` // decimal, up to two places: "3", "1.5"
	Date              string `json:"date"`  // YYYY-MM-DD
	Course            string `json:"course"`
	CertificateSHA256 string `json:"certificate_sha256,omitempty"`
}

// parseHours reads hours with up to two decimals, in hundredths.
func parseHours(s string) (int, error) {
	bad := fmt.Errorf("%w: hours: %q; give hours with up to two decimals, more than 0 and at most 24 (e.g. 3 or 1.5)", ErrInvalid, s)
	whole, frac, _ := strings.Cut(strings.TrimSpace(s), ".")
	if len(frac) > 2 || whole == "" || strings.ContainsAny(s, "+-") {
		return 0, bad
	}
	for len(frac) < 2 {
		frac += "0"
	}
	w, err1 := strconv.Atoi(whole)
	f, err2 := strconv.Atoi(frac)
	c := w*100 + f
	if err1 != nil || err2 != nil || c <= 0 || c > 2400 {
		return 0, bad
	}
	return c, nil
}

func formatHours(c int) string {
	s := fmt.Sprintf("%d.%02d", c/100, c%100)
	return strings.TrimRight(strings.TrimRight(s, "0"), ".")
}

// RecordTraining records hours of training a person attended.
func (s *Service) RecordTraining(ctx context.Context, a Actor, req TrainingRecord) (Training, error) {
	res := Resource{Kind: "account", ID: req.Username}
	if err := s.authorize(a, ActRecordTraining, res); err != nil {
		return Training{}, err
	}
	if err := s.open(); err != nil {
		return Training{}, err
	}
	c, err := parseHours(req.Hours)
	if err != nil {
		return Training{}, err
	}
	now := s.now()
	day, err := time.ParseInLocation(time.DateOnly, req.Date, ReportZone)
	if err != nil {
		return Training{}, fmt.Errorf("%w: date: %q is not a date; use YYYY-MM-DD", ErrInvalid, req.Date)
	}
	if day.After(now) {
		return Training{}, fmt.Errorf("%w: date: %s is in the future; record training once attended", ErrInvalid, req.Date)
	}
	course := strings.TrimSpace(req.Course)
	if course == "" || len(course) > 200 {
		return Training{}, fmt.Errorf("%w: course: name the course (1 to 200 characters)", ErrInvalid)
	}
	if x := req.CertificateSHA256; x != "" {
		if b, err := hex.DecodeString(x); err != nil || len(b) != 32 || strings.ToLower(x) != x {
			return Training{}, fmt.Errorf("%w: certificate-sha256: give the lower-case hex SHA-256 of the certificate file (64 digits)", ErrInvalid)
		}
	}
	acct, err := s.account(req.Username)
	if err != nil {
		return Training{}, err
	}
	if acct == nil {
		return Training{}, fmt.Errorf("%w: no account %q; list them with `custodian account list`", ErrNotFound, req.Username)
	}
	t := Training{Username: req.Username, Centihours: c, Hours: formatHours(c), Date: req.Date, Course: course,
		CertificateSHA256: req.CertificateSHA256, RecordedBy: a.Name, RecordedAt: now}
	err = s.Ledger.Update(func(tx *audit.Tx) error {
		w, err := tx.State(stateTraining)
		if err != nil {
			return err
		}
		n, err := w.NextSequence()
		if err != nil {
			return err
		}
		t.ID = fmt.Sprintf("T%d", n)
		ev, err := tx.Append(eventAt(now, a, audit.EvTrainingRecorded, map[string]string{"training": t.ID, "username": t.Username,
			"hours": t.Hours, "date": t.Date, "course": t.Course, "certificate_sha256": t.CertificateSHA256}))
		if err != nil {
			return err
		}
		t.Event = ev.Index
		b, err := json.Marshal(t)
		if err != nil {
			return err
		}
		return w.Put(t.ID, b)
	})
	if err != nil {
		return Training{}, err
	}
	return t, nil
}

func (s *Service) trainings() ([]Training, error) {
	var out []Training
	err := s.Ledger.ViewState(stateTraining, func(r audit.Records) error {
		return r.ForEach(func(k string, b []byte) error {
			var t Training
			if err := json.Unmarshal(b, &t); err != nil {
				return fmt.Errorf("training %s: stored record unreadable: %w", k, err)
			}
			out = append(out, t)
			return nil
		})
	})
	return out, err
}

// centihoursBetween sums username's training on dates in [from, until).
func centihoursBetween(ts []Training, username string, from, until time.Time) int {
	sum := 0
	for _, t := range ts {
		day, err := time.ParseInLocation(time.DateOnly, t.Date, ReportZone)
		if err == nil && t.Username == username && !day.Before(from) && day.Before(until) {
			sum += t.Centihours
		}
	}
	return sum
}

func designated(roles []accounts.Role) bool {
	return slices.ContainsFunc(roles, func(r accounts.Role) bool { return slices.Contains(DesignatedRoles, r) })
}

// TrainingShort is a designated person short of the yearly hours.
type TrainingShort struct {
	Username string          `json:"username"`
	FullName string          `json:"full_name"`
	Roles    []accounts.Role `json:"roles"`
	Hours    string          `json:"hours"`
	Missing  string          `json:"missing"`
}

// TrainingReport lists the active designated staff with fewer than
// MinTrainingHours of training dated in year (in ReportZone).
func (s *Service) TrainingReport(ctx context.Context, a Actor, year int) ([]TrainingShort, error) {
	if err := s.authorize(a, ActReadTraining, Resource{Kind: "account"}); err != nil {
		return nil, err
	}
	if year < 1912 || year > 9998 {
		return nil, fmt.Errorf("%w: year: %d; give a year such as 2026", ErrInvalid, year)
	}
	return s.trainingShortfall(year)
}

// trainingShortfall lists the designated staff under the yearly hours in
// year (TrainingReport without the caller; the daemon's notice uses it).
func (s *Service) trainingShortfall(year int) ([]TrainingShort, error) {
	ts, err := s.trainings()
	if err != nil {
		return nil, err
	}
	all, err := s.allAccounts()
	if err != nil {
		return nil, err
	}
	from := time.Date(year, 1, 1, 0, 0, 0, 0, ReportZone)
	until := from.AddDate(1, 0, 0)
	out := []TrainingShort{}
	for _, acct := range all {
		if acct.State == accounts.StateDisabled || !designated(acct.Roles) {
			continue
		}
		if c := centihoursBetween(ts, acct.Username, from, until); c < MinTrainingHours*100 {
			out = append(out, TrainingShort{Username: acct.Username, FullName: acct.FullName, Roles: acct.Roles,
				Hours: formatHours(c), Missing: formatHours(MinTrainingHours*100 - c)})
		}
	}
	return out, nil
}

// trainingRule is the training rule of data reads: with training:
// {enforce: true}, a designated person (DesignatedRoles) with fewer than
// MinTrainingHours of training dated in the twelve months up to now is
// refused (ErrForbidden, the rule named "training"). The read path calls
// it after authorizing and records the refusal as it records others.
func (s *Service) trainingRule(a Actor, now time.Time) error {
	if !s.config().Training.Enforce || !designated(a.Roles) {
		return nil
	}
	ts, err := s.trainings()
	if err != nil {
		return err
	}
	until := now.In(ReportZone).AddDate(0, 0, 1)
	until = time.Date(until.Year(), until.Month(), until.Day(), 0, 0, 0, 0, ReportZone)
	from := until.AddDate(-1, 0, 0)
	if c := centihoursBetween(ts, a.Name, from, until); c < MinTrainingHours*100 {
		return fmt.Errorf("%w: training: %s has %s hour(s) of training since %s; designated staff need %d hours a year (clause 四(四)) before reading data; a supervisor records training with `custodian training record`",
			ErrForbidden, a.Name, formatHours(c), from.Format(time.DateOnly), MinTrainingHours)
	}
	return nil
}
