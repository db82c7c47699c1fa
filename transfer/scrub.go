package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"custodian/audit"
	"custodian/transfer/integrity"
	"custodian/vault"
)

// The counting rule used at ingest is kept with each dataset, so the scrub
// recounts with the same rule even after the job's configuration changed.
const (
	keyHeader       = "count.header"
	keyTrailer      = "count.trailer"
	keyRecordLength = "count.record_length"
	keyGzip         = "count.gzip"
	// The decompression ceilings in effect (gzip only), so the scrub stops
	// exactly where ingest stopped; datasets recorded without them are
	// scrubbed with the defaults, which are never unbounded.
	keyMaxInflated     = "count.max_inflated"
	keyMaxInflateRatio = "count.max_inflate_ratio"
)

// buildSpec makes a counting rule; maxInflated and maxRatio (zero: the
// defaults) bound gzip decompression.
func buildSpec(header, trailer string, recordLength int, gz bool, maxInflated int64, maxRatio int) (integrity.CountSpec, error) {
	spec := integrity.CountSpec{RecordLength: recordLength, Gzip: gz, MaxInflated: maxInflated, MaxInflateRatio: maxRatio}
	var err error
	if header != "" {
		if spec.Header, err = regexp.Compile(header); err != nil {
			return spec, fmt.Errorf("header regex: %w", err)
		}
	}
	if trailer != "" {
		if spec.Trailer, err = regexp.Compile(trailer); err != nil {
			return spec, fmt.Errorf("trailer regex: %w", err)
		}
	}
	return spec, nil
}

func specIntegrity(s integrity.CountSpec) map[string]string {
	m := map[string]string{}
	if s.Header != nil {
		m[keyHeader] = s.Header.String()
	}
	if s.Trailer != nil {
		m[keyTrailer] = s.Trailer.String()
	}
	if s.RecordLength > 0 {
		m[keyRecordLength] = strconv.Itoa(s.RecordLength)
	}
	if s.Gzip {
		m[keyGzip] = "true"
		n, r := s.InflateLimits()
		m[keyMaxInflated] = strconv.FormatInt(n, 10)
		m[keyMaxInflateRatio] = strconv.Itoa(r)
	}
	return m
}

func specFromIntegrity(m map[string]string) (integrity.CountSpec, error) {
	var n, ratio int
	var maxInflated int64
	for _, f := range []struct {
		key string
		set func(string) error
	}{
		{keyRecordLength, func(v string) (err error) { n, err = strconv.Atoi(v); return err }},
		{keyMaxInflated, func(v string) (err error) { maxInflated, err = strconv.ParseInt(v, 10, 64); return err }},
		{keyMaxInflateRatio, func(v string) (err error) { ratio, err = strconv.Atoi(v); return err }},
	} {
		if v := m[f.key]; v != "" {
			if err := f.set(v); err != nil {
				return integrity.CountSpec{}, fmt.Errorf("%s: %q", f.key, v)
			}
		}
	}
	return buildSpec(m[keyHeader], m[keyTrailer], n, m[keyGzip] == "true", maxInflated, ratio)
}

// CheckObject decrypts one dataset's object as a stream (plaintext stays in
// memory buffers) and checks its size, SHA-256 and record count against the
// ledger. A nil error means the object is exactly what was received.
func CheckObject(ctx context.Context, v *vault.Vault, ident *vault.Identity, d audit.Dataset) error {
	spec, err := specFromIntegrity(d.Integrity)
	if err != nil {
		return fmt.Errorf("dataset %s: counting rule: %w", d.ID, err)
	}
	rc, err := v.Open(d.ObjectID, ident)
	if err != nil {
		return fmt.Errorf("object %s: %w", d.ObjectID, err)
	}
	defer rc.Close()
	sum := sha256.New()
	counter := integrity.NewCounter(spec)
	n, err := io.Copy(io.MultiWriter(sum, counter), ctxReader{ctx, rc})
	if err != nil {
		return fmt.Errorf("object %s: decrypting after %d bytes: %w", d.ObjectID, n, err)
	}
	counter.Close()
	if n != d.Size {
		return fmt.Errorf("object %s: %d bytes, ledger says %d", d.ObjectID, n, d.Size)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != d.SHA256 {
		return fmt.Errorf("object %s: SHA-256 %s, ledger says %s", d.ObjectID, got, d.SHA256)
	}
	if r := counter.Result(); r.Records != d.Records {
		why := ""
		for _, p := range r.Problems {
			if strings.HasPrefix(p, "gzip: ") {
				why = " (" + p + ")"
				break
			}
		}
		return fmt.Errorf("object %s: %d records, ledger says %d%s", d.ObjectID, r.Records, d.Records, why)
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

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
