package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"custodian/audit"
	"custodian/proof"
)

// This file holds the auditor's reads: proofs an auditor keeps and checks
// offline, the checkpoints the daemon keeps, and the filtered event log.
// All are reads of the ledger (ActReadLedger) and record nothing.

// ProveEvent returns event index with its inclusion proof against the
// ledger's latest signed checkpoint, checked before it is returned.
func (s *Service) ProveEvent(ctx context.Context, a Actor, index int64) (proof.Inclusion, error) {
	if err := s.authorize(a, ActReadLedger, Resource{Kind: "ledger"}); err != nil {
		return proof.Inclusion{}, err
	}
	if index < 0 {
		return proof.Inclusion{}, fmt.Errorf("%w: index: give an event index (0 or more); find one with `custodian audit log` or `custodian dataset timeline ID`", ErrInvalid)
	}
	p, err := proof.Prove(s.Ledger, index)
	return p, proofError(err)
}

// ProveConsistency returns the consistency proof between two checkpoints
// of the ledger (note texts); an empty newCP means the current checkpoint.
func (s *Service) ProveConsistency(ctx context.Context, a Actor, oldCP, newCP string) (proof.Consistency, error) {
	if err := s.authorize(a, ActReadLedger, Resource{Kind: "ledger"}); err != nil {
		return proof.Consistency{}, err
	}
	if strings.TrimSpace(oldCP) == "" {
		return proof.Consistency{}, fmt.Errorf("%w: old: give the old checkpoint (the signed note text)", ErrInvalid)
	}
	p, err := proof.ProveConsistency(s.Ledger, []byte(oldCP), []byte(newCP))
	return p, proofError(err)
}

func proofError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, proof.ErrArgument):
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case errors.Is(err, proof.ErrMismatch):
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return err
}

// KeptCheckpoints lists the checkpoints the daemon kept (checkpoints.dir).
func (s *Service) KeptCheckpoints(ctx context.Context, a Actor) ([]proof.Kept, error) {
	if err := s.authorize(a, ActReadLedger, Resource{Kind: "ledger"}); err != nil {
		return nil, err
	}
	return proof.ListKept(s.config().CheckpointDir())
}

// EventQuery selects ledger events. Empty fields select everything.
type EventQuery struct {
	From  int64 `json:"from"`  // first index scanned
	Limit int   `json:"limit"` // at most this many events returned
	// Since and Until bound the event time: Since <= time < Until.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
	Actor string    `json:"actor,omitempty"`
	// Dataset is a dataset ID: events on its timeline.
	Dataset string `json:"dataset,omitempty"`
	// Type is a prefix of the event type: "dataset." or "dataset.released".
	Type string `json:"type,omitempty"`
	// Purpose matches details "purpose" or the purpose of the dataset state
	// an event records; Unit matches details "unit".
	Purpose string `json:"purpose,omitempty"`
	Unit    string `json:"unit,omitempty"`
	// Desc lists newest first (auditing_desc.go): the events below index
	// Before (0: from the newest) down to From. The page's Next is then the
	// Before of the next page.
	Desc   bool  `json:"desc,omitempty"`
	Before int64 `json:"before,omitempty"`
}

// EventPage is one page of a search.
type EventPage struct {
	Events []EventView `json:"events"`
	// Next is the index the next page starts from (newest first: the
	// Before of the next page); absent when the scan reached the end of the
	// ledger (newest first: its first event, or From).
	Next *int64 `json:"next,omitempty"`
	// Scanned is the number of events looked at.
	Scanned int64 `json:"scanned"`
}

// MaxScan bounds the events one search looks at, so that one page
// answers quickly however long the ledger is; a page that stops there has
// fewer events and a Next to continue from. Events are first sifted on
// their stored bytes (prefilter), so passing over one that does not match
// costs little.
const MaxScan = 200_000

const scanChunk = 4096

func (q EventQuery) match(ev *audit.Event) bool {
	switch {
	case !q.Since.IsZero() && ev.Time.Before(q.Since),
		!q.Until.IsZero() && !ev.Time.Before(q.Until),
		q.Actor != "" && ev.Actor != q.Actor,
		q.Dataset != "" && ev.DatasetID != q.Dataset,
		q.Type != "" && !strings.HasPrefix(string(ev.Type), q.Type),
		q.Unit != "" && ev.Details["unit"] != q.Unit:
		return false
	}
	if q.Purpose != "" && ev.Details["purpose"] != q.Purpose && (ev.Dataset == nil || ev.Dataset.Purpose != q.Purpose) {
		return false
	}
	return true
}

// SearchEvents returns up to q.Limit events from index q.From on that
// match every filter of q, in index order (newest first with q.Desc).
func (s *Service) SearchEvents(ctx context.Context, a Actor, q EventQuery) (EventPage, error) {
	if err := s.authorize(a, ActReadLedger, Resource{Kind: "ledger"}); err != nil {
		return EventPage{}, err
	}
	if q.From < 0 {
		return EventPage{}, fmt.Errorf("%w: from: %d is not an event index (0 or more)", ErrInvalid, q.From)
	}
	if q.Limit < 1 || q.Limit > MaxLogLimit {
		return EventPage{}, fmt.Errorf("%w: limit: %d is out of range; use 1 to %d", ErrInvalid, q.Limit, MaxLogLimit)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return EventPage{}, fmt.Errorf("%w: since (%s) must be before until (%s)", ErrInvalid, q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339))
	}
	page := EventPage{Events: []EventView{}}
	if q.Desc || q.Before != 0 {
		return s.searchDesc(ctx, q, page)
	}
	if q.Dataset != "" {
		// A dataset's events are on its timeline: no scan of the log.
		return s.searchTimeline(q, page)
	}
	visit, full := q.collect(ctx, &page)
	next, scanned, err := s.Ledger.ScanEvents(q.From, MaxScan, q.prefilter(), visit)
	if err != nil {
		return EventPage{}, err
	}
	if err := ctx.Err(); err != nil {
		return EventPage{}, err
	}
	page.Scanned = scanned
	if n, err := s.Ledger.Size(); err == nil && next >= n {
		return page, nil // the end
	}
	if *full || scanned == MaxScan {
		page.Next = &next
	}
	return page, nil
}

// collect is a scan's visit for q: it puts each matching event on page
// until the page holds q.Limit (then *full) or ctx ends.
func (q EventQuery) collect(ctx context.Context, page *EventPage) (visit func(audit.Event) bool, full *bool) {
	full = new(bool)
	return func(ev audit.Event) bool {
		if ctx.Err() != nil {
			return false
		}
		if !q.match(&ev) {
			return true
		}
		page.Events = append(page.Events, ViewEvent(ev))
		*full = len(page.Events) == q.Limit
		return !*full
	}, full
}

// searchTimeline is SearchEvents for one dataset's events, read through
// the timeline index.
func (s *Service) searchTimeline(q EventQuery, page EventPage) (EventPage, error) {
	tl, err := s.Ledger.Timeline(q.Dataset)
	if err != nil {
		if errors.Is(err, audit.ErrInvalidArgument) {
			return page, nil // no event names such an ID
		}
		return EventPage{}, err
	}
	for i := range tl {
		if tl[i].Index < q.From {
			continue
		}
		page.Scanned++
		if !q.match(&tl[i]) {
			continue
		}
		if len(page.Events) == q.Limit {
			next := tl[i].Index
			page.Next = &next
			page.Scanned--
			return page, nil
		}
		page.Events = append(page.Events, ViewEvent(tl[i]))
	}
	return page, nil
}

// prefilter returns a test on an event's stored bytes that every event
// matching q passes (and most others fail), or nil. The leaf is the
// canonical JSON (docs/ledger-format.md): a string filter's value appears
// in it as encoding/json writes it, and "time" is the second field.
func (q EventQuery) prefilter() func([]byte) bool {
	var needles [][]byte
	str := func(v string) []byte { b, _ := json.Marshal(v); return b }
	if q.Actor != "" {
		needles = append(needles, append([]byte(`"actor":`), str(q.Actor)...))
	}
	if q.Type != "" {
		t := str(q.Type)
		needles = append(needles, append([]byte(`"type":`), t[:len(t)-1]...)) // a prefix: no closing quote
	}
	if q.Purpose != "" {
		needles = append(needles, append([]byte(`"purpose":`), str(q.Purpose)...))
	}
	if q.Unit != "" {
		needles = append(needles, append([]byte(`"unit":`), str(q.Unit)...))
	}
	timed := !q.Since.IsZero() || !q.Until.IsZero()
	if len(needles) == 0 && !timed {
		return nil
	}
	timeKey := []byte(`"time":"`)
	return func(leaf []byte) bool {
		for _, n := range needles {
			if !bytes.Contains(leaf, n) {
				return false
			}
		}
		if timed {
			i := bytes.Index(leaf, timeKey)
			if i < 0 {
				return true // decode and let match decide
			}
			rest := leaf[i+len(timeKey):]
			j := bytes.IndexByte(rest, '"')
			if j < 0 {
				return true
			}
			t, err := time.Parse(time.RFC3339Nano, string(rest[:j]))
			if err != nil {
				return true
			}
			if !q.Since.IsZero() && t.Before(q.Since) || !q.Until.IsZero() && !t.Before(q.Until) {
				return false
			}
		}
		return true
	}
}
