package audit

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkScanDirection compares a scan of the same 200,000 events
// (of a dataset event's size) oldest first and newest first; keep rejects
// every one, as a search that matches nothing does. Newest first read
// leaf by leaf backwards took twice as long; in forward blocks it takes
// the same.
func BenchmarkScanDirection(b *testing.B) {
	l, _ := openTest(b, newTestKey(b, "scan"))
	const n = 300_000
	for at := 0; at < n; at += 10_000 {
		if err := l.Update(func(tx *Tx) error {
			for i := range 10_000 {
				if _, err := tx.Append(Event{Time: baseTime, Actor: fmt.Sprintf("p%d", (at+i)%7), Type: EvDaemonStarted, Details: map[string]string{"x": strings.Repeat("some text of an ordinary length ", 20)}}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	keep := func(leaf []byte) bool { return bytes.Contains(leaf, []byte(`"actor":"nobody"`)) }
	visit := func(Event) bool { return true }
	b.Run("asc", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := l.ScanEvents(0, 200_000, keep, visit); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("desc", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := l.ScanEventsDesc(200_000, 0, 200_000, keep, visit); err != nil {
				b.Fatal(err)
			}
		}
	})
}
