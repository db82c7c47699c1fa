package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"custodian/audit"
)

// This file holds the access records (clause 五(一)): the ledger events
// that record a person reading or exporting a dataset's data, the periods
// they are grouped by, and the supervisors' co-signatures of them (the
// electronic query record sheet).

// AccessRecordTypes are the event types that are access records: the one
// list the sampling review draws from and supervisors co-sign.
var AccessRecordTypes = []audit.EventType{audit.EvDatasetRead, audit.EvDatasetExported}

// ReportZone is the time zone periods and report dates are read in:
// Taiwan's (UTC+8, without daylight saving since 1979), so that the year
// 2026 is the year as the agency counts it.
var ReportZone = time.FixedZone("UTC+8", 8*3600)

// Period is a span of time access records are grouped by: a year
// ("2026"), a half year ("2026H1", "2026H2") or a month ("2026-03"), in
// ReportZone. A record is in the period when From <= its time < Until.
type Period struct {
	Name  string    `json:"name"`
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
}

// Contains reports whether t is in the period.
func (p Period) Contains(t time.Time) bool { return !t.Before(p.From) && t.Before(p.Until) }

// ParsePeriod reads a period name.
func ParsePeriod(s string) (Period, error) {
	bad := fmt.Errorf("%w: period: %q is not a period; use a year (2026), a half (2026H1, 2026H2) or a month (2026-03)", ErrInvalid, s)
	s = strings.TrimSpace(s)
	if len(s) < 4 {
		return Period{}, bad
	}
	year, err := strconv.Atoi(s[:4])
	if err != nil || year < 1912 || year > 9998 {
		return Period{}, bad
	}
	start := func(m int) time.Time { return time.Date(year, time.Month(m), 1, 0, 0, 0, 0, ReportZone) }
	var from, until time.Time
	switch rest := s[4:]; {
	case rest == "":
		from, until = start(1), start(1).AddDate(1, 0, 0)
	case rest == "H1" || rest == "h1":
		from, until = start(1), start(7)
	case rest == "H2" || rest == "h2":
		from, until = start(7), start(1).AddDate(1, 0, 0)
	case len(rest) == 3 && rest[0] == '-':
		m, err := strconv.Atoi(rest[1:])
		if err != nil || m < 1 || m > 12 {
			return Period{}, bad
		}
		from = start(m)
		until = from.AddDate(0, 1, 0)
	default:
		return Period{}, bad
	}
	return Period{Name: strings.ToUpper(s), From: from.UTC(), Until: until.UTC()}, nil
}

// lastPeriod is the last complete period of kind (review.period) before now.
func lastPeriod(kind string, now time.Time) Period {
	t := now.In(ReportZone)
	var name string
	switch kind {
	case "monthly":
		t = t.AddDate(0, -1, 0)
		name = fmt.Sprintf("%04d-%02d", t.Year(), t.Month())
	case "semiannual":
		if t.Month() <= 6 {
			name = fmt.Sprintf("%04dH2", t.Year()-1)
		} else {
			name = fmt.Sprintf("%04dH1", t.Year())
		}
	default:
		name = strconv.Itoa(t.Year() - 1)
	}
	p, _ := ParsePeriod(name)
	return p
}

// AccessRecord is one access record as reviews and co-signatures show it.
type AccessRecord struct {
	Index   int64     `json:"index"` // its ledger index
	Time    time.Time `json:"time"`
	Person  string    `json:"person"` // the event's actor
	Type    string    `json:"type"`
	Dataset string    `json:"dataset,omitempty"`
	Purpose string    `json:"purpose,omitempty"`
	Case    string    `json:"case,omitempty"`
	// Cosigned is set when a supervisor co-signed the record.
	Cosigned *Cosignature `json:"cosigned,omitempty"`
}

// Cosignature is a supervisor's co-signature of one access record.
type Cosignature struct {
	By    string    `json:"by"`
	At    time.Time `json:"at"`
	Event int64     `json:"event"` // the index of the access.cosigned event
}

func isAccessRecord(t audit.EventType) bool { return slices.Contains(AccessRecordTypes, t) }

func accessRecord(ev audit.Event) AccessRecord {
	return AccessRecord{Index: ev.Index, Time: ev.Time, Person: ev.Actor, Type: string(ev.Type), Dataset: ev.DatasetID,
		Purpose: ev.Details["purpose"], Case: ev.Details["case"]}
}

// accessRecords returns the access records of period p (of user, if not
// empty) among the first size events of the ledger, and size: the ledger's
// size when the scan began.
func (s *Service) accessRecords(ctx context.Context, p Period, user string) ([]AccessRecord, int64, error) {
	size, err := s.Ledger.Size()
	if err != nil {
		return nil, 0, err
	}
	var out []AccessRecord
	for at := int64(0); at < size; {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		evs, err := s.Ledger.Events(at, int(min(scanChunk, size-at)))
		if err != nil {
			return nil, 0, err
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			at = ev.Index + 1
			if isAccessRecord(ev.Type) && p.Contains(ev.Time) && (user == "" || ev.Actor == user) {
				out = append(out, accessRecord(ev))
			}
		}
	}
	return out, size, nil
}

// IndexesDigest is the digest that stands for a set of ledger indexes on
// the ledger: the lower-case hex SHA-256 of the indexes in ascending order,
// each written in decimal and followed by a newline.
func IndexesDigest(indexes []int64) string {
	sorted := slices.Clone(indexes)
	slices.Sort(sorted)
	h := sha256.New()
	for _, i := range sorted {
		h.Write([]byte(strconv.FormatInt(i, 10) + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// stateCosigned holds one record per co-signed ledger index.
const stateCosigned = "cosigned"

func cosignKey(i int64) string { return fmt.Sprintf("%020d", i) }

// withCosignatures fills in the co-signatures of records.
func (s *Service) withCosignatures(recs []AccessRecord) error {
	return s.Ledger.ViewState(stateCosigned, func(r audit.Records) error {
		for i := range recs {
			if b := r.Get(cosignKey(recs[i].Index)); b != nil {
				var c Cosignature
				if err := json.Unmarshal(b, &c); err != nil {
					return fmt.Errorf("co-signature of %d: stored record unreadable: %w", recs[i].Index, err)
				}
				recs[i].Cosigned = &c
			}
		}
		return nil
	})
}

// AccessQuery selects access records: a period, one person's only, only
// those without a co-signature.
type AccessQuery struct {
	Period     string `json:"period"`
	User       string `json:"user,omitempty"`
	Uncosigned bool   `json:"uncosigned,omitempty"`
}

// AccessRecords lists the access records of a period with their
// co-signatures.
func (s *Service) AccessRecords(ctx context.Context, a Actor, q AccessQuery) ([]AccessRecord, error) {
	if err := s.authorize(a, ActReadAccess, Resource{Kind: "ledger"}); err != nil {
		return nil, err
	}
	p, err := ParsePeriod(q.Period)
	if err != nil {
		return nil, err
	}
	recs, _, err := s.accessRecords(ctx, p, q.User)
	if err != nil {
		return nil, err
	}
	if err := s.withCosignatures(recs); err != nil {
		return nil, err
	}
	out := []AccessRecord{}
	for _, r := range recs {
		if !q.Uncosigned || r.Cosigned == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// Cosigned is the outcome of a co-signature.
type Cosigned struct {
	Event         int64   `json:"event"` // the access.cosigned event's index
	Count         int     `json:"count"`
	IndexesSHA256 string  `json:"indexes_sha256"`
	Indexes       []int64 `json:"indexes"`
	// SkippedOwn counts the signer's own records, which another
	// supervisor must co-sign.
	SkippedOwn int `json:"skipped_own,omitempty"`
}

// CosignAccess co-signs every access record of the period (of q.User if
// set) that has no co-signature yet, except the supervisor's own: the set
// is recorded on the ledger as one access.cosigned event with a digest of
// the indexes, and each record keeps its co-signature.
func (s *Service) CosignAccess(ctx context.Context, a Actor, q AccessQuery) (Cosigned, error) {
	res := Resource{Kind: "ledger"}
	if err := s.authorize(a, ActCosignAccess, res); err != nil {
		return Cosigned{}, err
	}
	if err := s.open(); err != nil {
		return Cosigned{}, err
	}
	p, err := ParsePeriod(q.Period)
	if err != nil {
		return Cosigned{}, err
	}
	recs, _, err := s.accessRecords(ctx, p, q.User)
	if err != nil {
		return Cosigned{}, err
	}
	now := s.now()
	var out Cosigned
	err = s.Ledger.Update(func(tx *audit.Tx) error {
		w, err := tx.State(stateCosigned)
		if err != nil {
			return err
		}
		out = Cosigned{Indexes: []int64{}}
		for _, r := range recs {
			switch {
			case w.Get(cosignKey(r.Index)) != nil:
			case r.Person == a.Name:
				out.SkippedOwn++
			default:
				out.Indexes = append(out.Indexes, r.Index)
			}
		}
		if len(out.Indexes) == 0 {
			return fmt.Errorf("%w: no access records of %s%s are waiting for a co-signature (%d of them are your own)", ErrConflict, p.Name, forUser(q.User), out.SkippedOwn)
		}
		out.Count = len(out.Indexes)
		out.IndexesSHA256 = IndexesDigest(out.Indexes)
		ev, err := tx.Append(eventAt(now, a, audit.EvAccessCosigned, map[string]string{"period": p.Name, "user": q.User,
			"count": strconv.Itoa(out.Count), "indexes_sha256": out.IndexesSHA256,
			"first": strconv.FormatInt(out.Indexes[0], 10), "last": strconv.FormatInt(out.Indexes[len(out.Indexes)-1], 10)}))
		if err != nil {
			return err
		}
		out.Event = ev.Index
		b, err := json.Marshal(Cosignature{By: a.Name, At: now, Event: ev.Index})
		if err != nil {
			return err
		}
		for _, i := range out.Indexes {
			if err := w.Put(cosignKey(i), b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Cosigned{}, err
	}
	return out, nil
}

func forUser(u string) string {
	if u == "" {
		return ""
	}
	return " by " + u
}

// eventAt is event with its time set (the service's clock).
func eventAt(now time.Time, a Actor, typ audit.EventType, more map[string]string) audit.Event {
	ev := event(a, typ, more)
	ev.Time = now
	return ev
}
