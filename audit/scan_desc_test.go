package audit

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
)

// TestScanEventsDesc: newest first, pages that each look at a few events
// and continue below the last one looked at cover every event once, in
// descending order, whatever the page size, the starting bound and the
// lower bound; a visit that stops ends the page at that event; keep
// passes over events without decoding them.
func TestScanEventsDesc(t *testing.T) {
	l, _ := openTest(t, newTestKey(t, "scan"))
	const n = 23
	if err := l.Update(func(tx *Tx) error {
		for i := range n {
			if _, err := tx.Append(Event{Time: baseTime, Actor: fmt.Sprintf("p%d", i%3), Type: EvDaemonStarted}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, before := range []int64{0, 1, 2, 10, n - 1, n, n + 5} {
		for _, from := range []int64{0, 3} {
			for _, max := range []int64{1, 2, 5, 100} {
				var got []int64
				b := before
				for pages := 0; ; pages++ {
					next, scanned, err := l.ScanEventsDesc(b, from, max, nil, func(ev Event) bool {
						got = append(got, ev.Index)
						return true
					})
					if err != nil {
						t.Fatal(err)
					}
					if scanned > max || pages > n+1 {
						t.Fatalf("before %d from %d max %d: scanned %d, page %d", b, from, max, scanned, pages)
					}
					if scanned < max || next <= from {
						break
					}
					b = next
				}
				var want []int64
				top := int64(n)
				if before > 0 && before < n {
					top = before
				}
				for i := top - 1; i >= from; i-- {
					want = append(want, i)
				}
				if !slices.Equal(got, want) {
					t.Errorf("before %d from %d max %d: %v, want %v", before, from, max, got, want)
				}
			}
		}
	}
	// A visit that stops: next is that event (the next page is below it).
	var seen []int64
	next, scanned, err := l.ScanEventsDesc(0, 0, 100, nil, func(ev Event) bool {
		seen = append(seen, ev.Index)
		return len(seen) < 4
	})
	if err != nil || next != n-4 || scanned != 4 || !slices.Equal(seen, []int64{n - 1, n - 2, n - 3, n - 4}) {
		t.Fatalf("stopped scan: next %d scanned %d %v %v", next, scanned, seen, err)
	}
	// keep rejects on the bytes: those events are looked at, not visited.
	seen = nil
	_, scanned, err = l.ScanEventsDesc(0, 0, 100, func(leaf []byte) bool { return bytes.Contains(leaf, []byte(`"actor":"p1"`)) },
		func(ev Event) bool { seen = append(seen, ev.Index); return true })
	if err != nil || scanned != n {
		t.Fatal(scanned, err)
	}
	for _, i := range seen {
		if i%3 != 1 {
			t.Errorf("event %d passed keep", i)
		}
	}
	if len(seen) != n/3+1 {
		t.Errorf("%d events kept, want %d", len(seen), n/3+1)
	}
	if _, _, err := l.ScanEventsDesc(-1, 0, 1, nil, func(Event) bool { return true }); err == nil {
		t.Error("a negative before must be refused")
	}
}
