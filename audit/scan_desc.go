package audit

import "fmt"

// descBlock is how many events ScanEventsDesc reads forwards at a time.
const descBlock = 1024

// ScanEventsDesc is [Ledger.ScanEvents] newest first: it reads the events
// below index before (0: from the newest) down to index from, in one read
// transaction, looking at no more than max of them. keep and visit are as
// for ScanEvents. It returns the lowest index looked at, which is the
// before of the next page (the scan reached from, or the first event, when
// next <= from), and how many were looked at.
//
// Reading the leaves backwards defeats the processor's prefetching (a
// search that sifts every leaf took twice as long at a million events),
// so the scan reads blocks of descBlock events forwards, from the newest
// block down, sifting each leaf with keep as it goes, and then hands the
// block's kept events to visit last first. keep may so see a few events
// below the one where visit stopped; it only reads bytes.
func (l *Ledger) ScanEventsDesc(before, from, max int64, keep func(leaf []byte) bool, visit func(Event) bool) (next, scanned int64, err error) {
	if before < 0 || from < 0 || max < 0 {
		return 0, 0, fmt.Errorf("audit: scan events: %w: before %d, from %d, max %d", ErrInvalidArgument, before, from, max)
	}
	next = before
	type leaf struct {
		k, v []byte
		i    int64
		kept bool
	}
	block := make([]leaf, 0, descBlock)
	err = l.view(func(b buckets) error {
		c := b.events.Cursor()
		hi := before // the block ends below hi
		if k, _ := c.Last(); k == nil {
			return nil
		} else if last, ok := parseIndex(k); !ok {
			return fmt.Errorf("%w: malformed event key %x", ErrCorrupt, k)
		} else if hi == 0 || hi > last+1 {
			hi = last + 1
		}
		for hi > from && scanned < max {
			lo := hi - min(descBlock, max-scanned)
			lo = maxInt64(lo, from)
			block = block[:0]
			for k, v := c.Seek(u64(lo)); k != nil; k, v = c.Next() {
				i, ok := parseIndex(k)
				if !ok {
					return fmt.Errorf("%w: malformed event key %x", ErrCorrupt, k)
				}
				if i >= hi {
					break
				}
				block = append(block, leaf{k, v, i, keep == nil || keep(v)})
			}
			for j := len(block) - 1; j >= 0; j-- {
				e := block[j]
				scanned++
				next = e.i
				if !e.kept {
					continue
				}
				ev, err := decodeEvent(e.k, e.v)
				if err != nil {
					return err
				}
				if !visit(ev) {
					return nil
				}
			}
			if len(block) == 0 {
				next = lo // no event in [lo, hi)
			}
			hi = lo
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("audit: scan events: %w", err)
	}
	return next, scanned, nil
}

func maxInt64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
