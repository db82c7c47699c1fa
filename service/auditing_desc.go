package service

import (
	"context"
	"errors"
	"fmt"

	"custodian/audit"
)

// searchDesc is SearchEvents newest first: the events below q.Before (0:
// from the newest) down to q.From, at most q.Limit of them, looking at
// no more than MaxScan. A page's Next is the Before of the next one, so
// pages follow each other with no event lost or repeated, as they do
// oldest first.
func (s *Service) searchDesc(ctx context.Context, q EventQuery, page EventPage) (EventPage, error) {
	if q.Before < 0 {
		return EventPage{}, fmt.Errorf("%w: before: %d is not an event index (0 or more)", ErrInvalid, q.Before)
	}
	if !q.Desc {
		return EventPage{}, fmt.Errorf("%w: before: only with newest first (desc)", ErrInvalid)
	}
	if q.Dataset != "" {
		return s.searchTimelineDesc(q, page)
	}
	visit, full := q.collect(ctx, &page)
	next, scanned, err := s.Ledger.ScanEventsDesc(q.Before, q.From, MaxScan, q.prefilter(), visit)
	if err != nil {
		return EventPage{}, err
	}
	if err := ctx.Err(); err != nil {
		return EventPage{}, err
	}
	page.Scanned = scanned
	if (*full || scanned == MaxScan) && next > q.From {
		page.Next = &next
	}
	return page, nil
}

// searchTimelineDesc is searchDesc for one dataset's events, read through
// the timeline index, newest first.
func (s *Service) searchTimelineDesc(q EventQuery, page EventPage) (EventPage, error) {
	tl, err := s.Ledger.Timeline(q.Dataset)
	if err != nil {
		if errors.Is(err, audit.ErrInvalidArgument) {
			return page, nil // no event names such an ID
		}
		return EventPage{}, err
	}
	for i := len(tl) - 1; i >= 0; i-- {
		if q.Before > 0 && tl[i].Index >= q.Before || tl[i].Index < q.From {
			continue
		}
		page.Scanned++
		if !q.match(&tl[i]) {
			continue
		}
		if len(page.Events) == q.Limit {
			// The next page starts with this event: below the one after it.
			next := tl[i].Index + 1
			page.Next = &next
			page.Scanned--
			return page, nil
		}
		page.Events = append(page.Events, ViewEvent(tl[i]))
	}
	return page, nil
}
