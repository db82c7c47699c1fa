package transfer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"

	"custodian/audit"
)

// ScrubItem is one vault object a scrub checks, with the state its dataset
// had when that object was the dataset's current one: its size, SHA-256,
// record count and counting rule. For the current object that is the
// dataset's current state; for an earlier receipt (a re-pulled file) it is
// the last state that named it.
type ScrubItem struct {
	ObjectID string        `json:"object_id"`
	Dataset  audit.Dataset `json:"dataset"`
}

// ScrubPlan lists every vault object the ledger's first LedgerSize events
// refer to (every dataset's Objects()), sorted by object ID. The ledger
// only grows, so the plan for a given size never changes: a scrub that took
// an hour while jobs went on receiving files is compared with the ledger as
// it was when the scrub began.
type ScrubPlan struct {
	LedgerSize int64       `json:"ledger_size"`
	Items      []ScrubItem `json:"items"`
	// Destroyed lists the datasets destroyed in those events, sorted:
	// their objects were erased on purpose and are not checked.
	Destroyed []string `json:"destroyed,omitempty"`
}

// PlanScrub replays the ledger's first size events (their dataset states)
// and returns the objects a scrub must check.
func PlanScrub(l *audit.Ledger, size int64) (ScrubPlan, error) {
	plan := ScrubPlan{LedgerSize: size}
	datasets := map[string]audit.Dataset{}
	asCurrent := map[string]audit.Dataset{} // object ID -> last state naming it as current
	const page = 1000
	for from := int64(0); from < size; {
		evs, err := l.Events(from, int(min(page, size-from)))
		if err != nil {
			return plan, err
		}
		if len(evs) == 0 {
			return plan, fmt.Errorf("the ledger has %d events, not %d", from, size)
		}
		for _, ev := range evs {
			if d := ev.Dataset; d != nil {
				datasets[d.ID] = *d
				if d.ObjectID != "" {
					asCurrent[d.ObjectID] = *d
				}
			}
		}
		from += int64(len(evs))
	}
	seen := map[string]bool{}
	for _, d := range datasets {
		if !d.State.Stored() {
			plan.Destroyed = append(plan.Destroyed, d.ID)
			continue
		}
		for _, obj := range d.Objects() {
			if seen[obj] {
				continue
			}
			seen[obj] = true
			st, ok := asCurrent[obj]
			if !ok {
				// An earlier object no state named as current: nothing on
				// the ledger says what it holds, so the scrub fails it.
				st = audit.Dataset{ID: d.ID, ObjectID: obj}
			}
			plan.Items = append(plan.Items, ScrubItem{ObjectID: obj, Dataset: st})
		}
	}
	slices.SortFunc(plan.Items, func(a, b ScrubItem) int { return strings.Compare(a.ObjectID, b.ObjectID) })
	slices.Sort(plan.Destroyed)
	return plan, nil
}

// ScrubDigest is the digest of what a scrub checked: the SHA-256, in hex, of
// one line "OBJECT_ID SHA256\n" per item (SHA256 being the hex digest the
// ledger records for the object's contents), the lines sorted. The daemon
// records it with every scrub report, so a later scrub, by anyone or by the
// daemon itself, can show it checked the same objects against the same
// digests.
func ScrubDigest(items []ScrubItem) string {
	lines := make([]string, len(items))
	for i, it := range items {
		lines[i] = it.ObjectID + " " + it.Dataset.SHA256 + "\n"
	}
	slices.Sort(lines)
	h := sha256.New()
	for _, l := range lines {
		io.WriteString(h, l)
	}
	return hex.EncodeToString(h.Sum(nil))
}
