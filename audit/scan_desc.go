package audit

import "fmt"

// ScanEventsDesc is [Ledger.ScanEvents] newest first: it reads the events
// below index before (0: from the newest) down to index from, in one read
// transaction, looking at no more than max of them. keep and visit are as
// for ScanEvents. It returns the lowest index looked at, which is the
// before of the next page (the scan reached from, or the first event, when
// next <= from), and how many were looked at. A bbolt cursor walks the
// keys backwards as cheaply as forwards, so the newest page of a long
// ledger costs what the oldest does.
func (l *Ledger) ScanEventsDesc(before, from, max int64, keep func(leaf []byte) bool, visit func(Event) bool) (next, scanned int64, err error) {
	if before < 0 || from < 0 || max < 0 {
		return 0, 0, fmt.Errorf("audit: scan events: %w: before %d, from %d, max %d", ErrInvalidArgument, before, from, max)
	}
	next = before
	err = l.view(func(b buckets) error {
		c := b.events.Cursor()
		k, v := c.Last()
		if before > 0 {
			if k, v = c.Seek(u64(before)); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil && scanned < max; k, v = c.Prev() {
			i, ok := parseIndex(k)
			if !ok {
				return fmt.Errorf("%w: malformed event key %x", ErrCorrupt, k)
			}
			if before > 0 && i >= before {
				continue
			}
			if i < from {
				break
			}
			scanned++
			next = i
			if keep != nil && !keep(v) {
				continue
			}
			ev, err := decodeEvent(k, v)
			if err != nil {
				return err
			}
			if !visit(ev) {
				return nil
			}
		}
		if k == nil {
			next = 0 // the first event was looked at
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("audit: scan events: %w", err)
	}
	return next, scanned, nil
}
