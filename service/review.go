package service

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"custodian/audit"
	"custodian/configs"
)

// This file holds the sampling review of access records (抽查, clause 六):
// an auditor draws a reproducible random sample of each person's access
// records in a period, records a finding for each sampled record, closes
// the investigation every anomaly opens, and closes the review.
//
// The draw (method custodian-sample/v1, docs/auditing.md): the population
// is every access record (AccessRecordTypes) among ledger events 0 to
// ledger_size−1 whose time is in the period. Each person's records are
// ordered by SHA-256(seed ‖ index), the seed's UTF-8 bytes followed by the
// record's ledger index as 8 bytes big-endian, comparing digests as byte
// strings (ties cannot happen: the indexes differ); the first
// max(ceil(n × rate), min(min_per_person, n)) are drawn, n being the
// person's records. Everything the draw needs (period, rate, minimum,
// seed, ledger size) is on the review.started event, so anyone can redraw
// the sample from an exported ledger.

// SampleMethod names the drawing method.
const SampleMethod = "custodian-sample/v1"

const stateReviews = "reviews"

// Verdicts of a finding.
const (
	VerdictJustified = "justified"
	VerdictAnomaly   = "anomaly"
)

// Review is a sampling review with its sample and findings.
type Review struct {
	ID           string     `json:"id"`
	Period       string     `json:"period"`
	From         time.Time  `json:"from"`
	Until        time.Time  `json:"until"`
	Rate         string     `json:"rate"`
	MinPerPerson int        `json:"min_per_person"`
	Seed         string     `json:"seed"`
	Method       string     `json:"method"`
	LedgerSize   int64      `json:"ledger_size"`
	Population   int        `json:"population"` // access records in the period
	Persons      int        `json:"persons"`    // people with access records in the period
	SampleSHA256 string     `json:"sample_sha256"`
	Sample       []Sampled  `json:"sample"`
	Started      Signature  `json:"started"`
	Closed       *Signature `json:"closed,omitempty"`
}

// Signature is a step a person took, with the event recording it.
type Signature struct {
	By    string    `json:"by"`
	At    time.Time `json:"at"`
	Event int64     `json:"event"`
}

// Sampled is one sampled record and its finding.
type Sampled struct {
	AccessRecord
	Finding *Finding `json:"finding,omitempty"`
}

// Finding is an auditor's verdict on one sampled record.
type Finding struct {
	Verdict string `json:"verdict"` // justified or anomaly
	Note    string `json:"note"`
	Signature
	// Investigation is opened by an anomaly.
	Investigation *Investigation `json:"investigation,omitempty"`
}

// Investigation follows an anomaly until it is closed with an outcome.
type Investigation struct {
	Outcome string     `json:"outcome,omitempty"`
	Closed  *Signature `json:"closed,omitempty"`
}

// State is open or closed.
func (r *Review) State() string {
	if r.Closed != nil {
		return "closed"
	}
	return "open"
}

// OpenInvestigations lists the ledger indexes of sampled records whose
// investigation is open.
func (r *Review) OpenInvestigations() []int64 {
	var out []int64
	for _, s := range r.Sample {
		if s.Finding != nil && s.Finding.Investigation != nil && s.Finding.Investigation.Closed == nil {
			out = append(out, s.Index)
		}
	}
	return out
}

func (r *Review) pending() []int64 {
	var out []int64
	for _, s := range r.Sample {
		if s.Finding == nil {
			out = append(out, s.Index)
		}
	}
	return out
}

func (r *Review) sampled(index int64) *Sampled {
	for i := range r.Sample {
		if r.Sample[i].Index == index {
			return &r.Sample[i]
		}
	}
	return nil
}

// Indexes lists the sampled ledger indexes.
func (r *Review) Indexes() []int64 {
	out := make([]int64, len(r.Sample))
	for i, s := range r.Sample {
		out[i] = s.Index
	}
	return out
}

// SampleKey is a record's sort key in the draw: SHA-256(seed ‖ index).
func SampleKey(seed string, index int64) [32]byte {
	b := make([]byte, 0, len(seed)+8)
	b = append(b, seed...)
	b = binary.BigEndian.AppendUint64(b, uint64(index))
	return sha256.Sum256(b)
}

// SampleSize is how many of a person's n records are drawn at rate (basis
// points) with at least min: max(ceil(n × rate), min(min, n)).
func SampleSize(n, rateBP, min int) int {
	k := (n*rateBP + 9999) / 10000
	return max(k, minInt(min, n))
}

func minInt(a, b int) int {
	if a < b {
		return a
	}
	return b
}

// DrawSample draws the sample from the population (custodian-sample/v1),
// returned in ledger order.
func DrawSample(population []AccessRecord, seed string, rateBP, min int) []AccessRecord {
	byPerson := map[string][]AccessRecord{}
	for _, r := range population {
		byPerson[r.Person] = append(byPerson[r.Person], r)
	}
	var out []AccessRecord
	for _, recs := range byPerson {
		keys := map[int64][32]byte{}
		for _, r := range recs {
			keys[r.Index] = SampleKey(seed, r.Index)
		}
		slices.SortFunc(recs, func(a, b AccessRecord) int {
			ka, kb := keys[a.Index], keys[b.Index]
			return strings.Compare(string(ka[:]), string(kb[:]))
		})
		out = append(out, recs[:SampleSize(len(recs), rateBP, min)]...)
	}
	slices.SortFunc(out, func(a, b AccessRecord) int { return cmp.Compare(a.Index, b.Index) })
	return out
}

// ReviewStart asks for a review. Empty fields take the review: block's
// defaults; an empty period is the last complete one; an empty seed is
// drawn at random.
type ReviewStart struct {
	Period       string `json:"period,omitempty"`
	Rate         string `json:"rate,omitempty"`
	MinPerPerson int    `json:"min_per_person,omitempty"`
	Seed         string `json:"seed,omitempty"`
}

// MaxSeed bounds a seed's length.
const MaxSeed = 128

func randomSeed() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func getReview(r audit.Records, id string) (*Review, error) {
	b := r.Get(id)
	if b == nil {
		return nil, fmt.Errorf("%w: no review %q", ErrNotFound, id)
	}
	var v Review
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("review %s: stored record unreadable: %w", id, err)
	}
	return &v, nil
}

func putReview(w audit.RecordsWriter, v *Review) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return w.Put(v.ID, b)
}

// StartReview draws the sample of a period's access records and records
// the review (review.started) with everything needed to redraw it.
func (s *Service) StartReview(ctx context.Context, a Actor, req ReviewStart) (Review, error) {
	if err := s.authorize(a, ActRunReview, Resource{Kind: "review"}); err != nil {
		return Review{}, err
	}
	if err := s.open(); err != nil {
		return Review{}, err
	}
	cfg := s.config().Review
	now := s.now()
	var p Period
	var err error
	if strings.TrimSpace(req.Period) == "" {
		p = lastPeriod(cfg.Period, now)
	} else if p, err = ParsePeriod(req.Period); err != nil {
		return Review{}, err
	}
	if !p.From.Before(now) {
		return Review{}, fmt.Errorf("%w: period: %s has not begun", ErrInvalid, p.Name)
	}
	rate := req.Rate
	if rate == "" {
		rate = cfg.Rate
	}
	if rate == "" {
		rate = configs.DefaultReviewRate
	}
	bp, err := configs.ParseRate(rate)
	if err != nil {
		return Review{}, fmt.Errorf("%w: rate: %v", ErrInvalid, err)
	}
	minN := req.MinPerPerson
	if minN == 0 {
		minN = max(cfg.MinPerPerson, 1)
	}
	if minN < 1 || minN > 1000 {
		return Review{}, fmt.Errorf("%w: min-per-person: %d is out of range; use 1 to 1000", ErrInvalid, minN)
	}
	seed := req.Seed
	if seed == "" {
		if seed, err = randomSeed(); err != nil {
			return Review{}, err
		}
	}
	if len(seed) > MaxSeed || strings.IndexFunc(seed, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) >= 0 {
		return Review{}, fmt.Errorf("%w: seed: use 1 to %d printable characters without spaces", ErrInvalid, MaxSeed)
	}
	pop, size, err := s.accessRecords(ctx, p, "")
	if err != nil {
		return Review{}, err
	}
	persons := map[string]bool{}
	for _, r := range pop {
		persons[r.Person] = true
	}
	drawn := DrawSample(pop, seed, bp, minN)
	v := &Review{Period: p.Name, From: p.From, Until: p.Until, Rate: configs.FormatRate(bp), MinPerPerson: minN, Seed: seed,
		Method: SampleMethod, LedgerSize: size, Population: len(pop), Persons: len(persons), Sample: make([]Sampled, len(drawn))}
	for i, r := range drawn {
		v.Sample[i] = Sampled{AccessRecord: r}
	}
	v.SampleSHA256 = IndexesDigest(v.Indexes())
	err = s.Ledger.Update(func(tx *audit.Tx) error {
		w, err := tx.State(stateReviews)
		if err != nil {
			return err
		}
		n, err := w.NextSequence()
		if err != nil {
			return err
		}
		v.ID = fmt.Sprintf("RV%d", n)
		ev, err := tx.Append(eventAt(now, a, audit.EvReviewStarted, map[string]string{
			"review": v.ID, "period": v.Period, "from": v.From.Format(time.RFC3339), "until": v.Until.Format(time.RFC3339),
			"rate": v.Rate, "min_per_person": strconv.Itoa(v.MinPerPerson), "seed": v.Seed, "method": v.Method,
			"ledger_size": strconv.FormatInt(v.LedgerSize, 10), "population": strconv.Itoa(v.Population),
			"persons": strconv.Itoa(v.Persons), "sample_count": strconv.Itoa(len(v.Sample)), "sample_sha256": v.SampleSHA256}))
		if err != nil {
			return err
		}
		v.Started = Signature{By: a.Name, At: now, Event: ev.Index}
		return putReview(w, v)
	})
	if err != nil {
		return Review{}, err
	}
	return *v, nil
}

// ShowReview returns a review with its sample and findings.
func (s *Service) ShowReview(ctx context.Context, a Actor, id string) (Review, error) {
	if err := s.authorize(a, ActReadReview, Resource{Kind: "review", ID: id}); err != nil {
		return Review{}, err
	}
	return s.review(id)
}

func (s *Service) review(id string) (Review, error) {
	var v *Review
	err := s.Ledger.ViewState(stateReviews, func(r audit.Records) (err error) {
		v, err = getReview(r, id)
		return err
	})
	if err != nil {
		return Review{}, err
	}
	return *v, nil
}

// Reviews lists the reviews, oldest first, without their samples.
func (s *Service) Reviews(ctx context.Context, a Actor) ([]Review, error) {
	if err := s.authorize(a, ActReadReview, Resource{Kind: "review"}); err != nil {
		return nil, err
	}
	out := []Review{}
	err := s.Ledger.ViewState(stateReviews, func(r audit.Records) error {
		return r.ForEach(func(k string, b []byte) error {
			var v Review
			if err := json.Unmarshal(b, &v); err != nil {
				return fmt.Errorf("review %s: stored record unreadable: %w", k, err)
			}
			v.Sample = nil
			out = append(out, v)
			return nil
		})
	})
	slices.SortFunc(out, func(x, y Review) int { return cmp.Compare(x.Started.Event, y.Started.Event) })
	return out, err
}

// ReviewStep is one step on a review: a finding, an investigation closed.
type ReviewStep struct {
	Record  int64  `json:"record"`            // the sampled record's ledger index
	Verdict string `json:"verdict,omitempty"` // a finding's: justified or anomaly
	Note    string `json:"note,omitempty"`    // a finding's note, or an investigation's outcome
}

// stepReview applies one step to an open review in one transaction with
// its event; a conflict with the review's state is recorded as a refusal.
func (s *Service) stepReview(a Actor, id string, step func(v *Review, now time.Time) (audit.Event, error)) (Review, error) {
	res := Resource{Kind: "review", ID: id}
	if err := s.authorize(a, ActRunReview, res); err != nil {
		return Review{}, err
	}
	if err := s.open(); err != nil {
		return Review{}, err
	}
	now := s.now()
	var v *Review
	var refusal error
	err := s.Ledger.Update(func(tx *audit.Tx) error {
		w, err := tx.State(stateReviews)
		if err != nil {
			return err
		}
		if v, err = getReview(w, id); err != nil {
			return err
		}
		if v.Closed != nil {
			refusal = fmt.Errorf("%w: review %s was closed by %s; nothing follows", ErrConflict, id, v.Closed.By)
			return refusal
		}
		ev, err := step(v, now)
		if err != nil {
			if CodeOf(err) == ErrConflict {
				refusal = err
			}
			return err
		}
		ev.Time = now
		ev, err = tx.Append(ev)
		if err != nil {
			return err
		}
		setEvent(v, ev.Index)
		return putReview(w, v)
	})
	if refusal != nil {
		return Review{}, s.refused(a, ActRunReview, res, refusal)
	}
	if err != nil {
		return Review{}, err
	}
	return *v, nil
}

// setEvent fills the index of the event just appended into the
// signature the step left at -1.
func setEvent(v *Review, index int64) {
	if v.Closed != nil && v.Closed.Event < 0 {
		v.Closed.Event = index
	}
	for i := range v.Sample {
		f := v.Sample[i].Finding
		if f == nil {
			continue
		}
		if f.Event < 0 {
			f.Event = index
		}
		if f.Investigation != nil && f.Investigation.Closed != nil && f.Investigation.Closed.Event < 0 {
			f.Investigation.Closed.Event = index
		}
	}
}

// RecordFinding records the verdict on one sampled record; an anomaly
// opens an investigation.
func (s *Service) RecordFinding(ctx context.Context, a Actor, id string, f ReviewStep) (Review, error) {
	if f.Verdict != VerdictJustified && f.Verdict != VerdictAnomaly {
		return Review{}, fmt.Errorf("%w: verdict: %q; use --justified or --anomaly", ErrInvalid, f.Verdict)
	}
	if len(strings.TrimSpace(f.Note)) < MinReason {
		return Review{}, fmt.Errorf("%w: note: say what was checked in at least %d characters (--note)", ErrInvalid, MinReason)
	}
	return s.stepReview(a, id, func(v *Review, now time.Time) (audit.Event, error) {
		r := v.sampled(f.Record)
		if r == nil {
			return audit.Event{}, fmt.Errorf("%w: record %d is not in review %s's sample; `custodian review show %s` lists it", ErrNotFound, f.Record, id, id)
		}
		if r.Finding != nil {
			return audit.Event{}, fmt.Errorf("%w: record %d already has a finding (%s by %s)", ErrConflict, f.Record, r.Finding.Verdict, r.Finding.By)
		}
		r.Finding = &Finding{Verdict: f.Verdict, Note: strings.TrimSpace(f.Note), Signature: Signature{By: a.Name, At: now, Event: -1}}
		d := map[string]string{"review": id, "record": strconv.FormatInt(f.Record, 10), "person": r.Person, "verdict": f.Verdict, "note": r.Finding.Note}
		if f.Verdict == VerdictAnomaly {
			r.Finding.Investigation = &Investigation{}
			d["investigation"] = "opened"
		}
		return event(a, audit.EvReviewFinding, d), nil
	})
}

// CloseInvestigation closes the investigation of an anomaly with its
// outcome.
func (s *Service) CloseInvestigation(ctx context.Context, a Actor, id string, st ReviewStep) (Review, error) {
	if len(strings.TrimSpace(st.Note)) < MinReason {
		return Review{}, fmt.Errorf("%w: outcome: say what the investigation found in at least %d characters (--outcome)", ErrInvalid, MinReason)
	}
	return s.stepReview(a, id, func(v *Review, now time.Time) (audit.Event, error) {
		r := v.sampled(st.Record)
		switch {
		case r == nil:
			return audit.Event{}, fmt.Errorf("%w: record %d is not in review %s's sample", ErrNotFound, st.Record, id)
		case r.Finding == nil || r.Finding.Investigation == nil:
			return audit.Event{}, fmt.Errorf("%w: record %d has no investigation; an anomaly finding opens one", ErrConflict, st.Record)
		case r.Finding.Investigation.Closed != nil:
			return audit.Event{}, fmt.Errorf("%w: the investigation of record %d was closed by %s", ErrConflict, st.Record, r.Finding.Investigation.Closed.By)
		}
		r.Finding.Investigation.Outcome = strings.TrimSpace(st.Note)
		r.Finding.Investigation.Closed = &Signature{By: a.Name, At: now, Event: -1}
		return event(a, audit.EvReviewInvestigationClosed, map[string]string{"review": id, "record": strconv.FormatInt(st.Record, 10),
			"outcome": r.Finding.Investigation.Outcome}), nil
	})
}

// CloseReview closes a review whose every sampled record has a finding and
// whose every investigation is closed; it refuses (and records the
// refusal) otherwise.
func (s *Service) CloseReview(ctx context.Context, a Actor, id string) (Review, error) {
	return s.stepReview(a, id, func(v *Review, now time.Time) (audit.Event, error) {
		if open := v.OpenInvestigations(); len(open) > 0 {
			return audit.Event{}, fmt.Errorf("%w: review %s has %d open investigation(s) (records %s); close each with `custodian review investigation close %s RECORD --outcome TEXT`",
				ErrConflict, id, len(open), joinIndexes(open), id)
		}
		if p := v.pending(); len(p) > 0 {
			return audit.Event{}, fmt.Errorf("%w: review %s has %d sampled record(s) without a finding (records %s); record one with `custodian review finding %s RECORD --justified|--anomaly --note TEXT`",
				ErrConflict, id, len(p), joinIndexes(p), id)
		}
		anomalies := 0
		for _, r := range v.Sample {
			if r.Finding.Verdict == VerdictAnomaly {
				anomalies++
			}
		}
		v.Closed = &Signature{By: a.Name, At: now, Event: -1}
		return event(a, audit.EvReviewClosed, map[string]string{"review": id, "sample_count": strconv.Itoa(len(v.Sample)),
			"justified": strconv.Itoa(len(v.Sample) - anomalies), "anomalies": strconv.Itoa(anomalies)}), nil
	})
}

func joinIndexes(xs []int64) string {
	s := make([]string, 0, min(len(xs), 10))
	for i, x := range xs {
		if i == 10 {
			s = append(s, "…")
			break
		}
		s = append(s, strconv.FormatInt(x, 10))
	}
	return strings.Join(s, ", ")
}
