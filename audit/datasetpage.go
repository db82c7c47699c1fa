package audit

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// DatasetFilter selects datasets by their metadata; empty fields select
// everything.
type DatasetFilter struct {
	Job     string
	State   State
	Purpose string
	// Since and Until bound ReceivedAt: Since <= received < Until.
	Since, Until time.Time
}

// DatasetPage returns the datasets that match f, newest first (by
// ReceivedAt, then ID), skipping offset and at most limit of them, with
// the number that match in all.
//
// It walks the dataset time index (bucketDatasetTime) from the newest
// entry before Until back to Since, matching each entry's job, state and
// purpose, and decodes only the records of the page. A read-only handle
// on a ledger written before that index falls back to reading the
// datasets bucket without decoding every record: the few fields a filter and the order need are read from
// each record's JSON (json.Marshal of [Dataset], whose top-level keys come
// before any nested map and cannot occur unescaped inside a string), and
// only the records of the page are decoded. A record whose fields cannot
// be read that way is decoded in full, so the answer is the same.
func (l *Ledger) DatasetPage(f DatasetFilter, offset, limit int) ([]Dataset, int, error) {
	if offset < 0 || limit < 0 {
		return nil, 0, fmt.Errorf("audit: dataset page: %w: offset %d, limit %d", ErrInvalidArgument, offset, limit)
	}
	type hit struct {
		sec  int64 // ReceivedAt: Unix seconds and nanoseconds
		nsec int
		key  []byte
	}
	var out []Dataset
	var total int
	err := l.view(func(b buckets) error {
		if b.datasetTime != nil {
			var err error
			out, total, err = pageByTime(b, f, offset, limit)
			return err
		}
		var hits []hit
		c := b.datasets.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			m, recv, err := matchRaw(f, v)
			if err != nil {
				return fmt.Errorf("%w: dataset %q: %v", ErrCorrupt, k, err)
			}
			if m {
				hits = append(hits, hit{recv.Unix(), recv.Nanosecond(), k})
			}
		}
		total = len(hits)
		slices.SortFunc(hits, func(a, b hit) int {
			return cmp.Or(cmp.Compare(b.sec, a.sec), cmp.Compare(b.nsec, a.nsec), bytes.Compare(b.key, a.key))
		})
		if offset >= len(hits) {
			return nil
		}
		hits = hits[offset:]
		if limit > 0 && len(hits) > limit {
			hits = hits[:limit]
		}
		out = make([]Dataset, 0, len(hits))
		for _, h := range hits {
			var d Dataset
			if err := json.Unmarshal(b.datasets.Get(h.key), &d); err != nil {
				return fmt.Errorf("%w: dataset %q: %v", ErrCorrupt, h.key, err)
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("audit: dataset page: %w", err)
	}
	return out, total, nil
}

// pageByTime is DatasetPage over the dataset time index.
func pageByTime(b buckets, f DatasetFilter, offset, limit int) ([]Dataset, int, error) {
	job, st, purpose := []byte(f.Job), []byte(f.State), []byte(f.Purpose)
	var since []byte
	if !f.Since.IsZero() {
		since = timeKeyPrefix(f.Since)
	}
	c := b.datasetTime.Cursor()
	var k, v []byte
	if f.Until.IsZero() {
		k, v = c.Last()
	} else if k, _ = c.Seek(timeKeyPrefix(f.Until)); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev() // the last entry received before Until
	}
	var ids [][]byte
	total := 0
	for ; k != nil; k, v = c.Prev() {
		if len(k) <= timePrefix {
			return nil, 0, fmt.Errorf("%w: malformed dataset time key %x", ErrCorrupt, k)
		}
		if since != nil && bytes.Compare(k[:timePrefix], since) < 0 {
			break
		}
		fields, ok := parseDatasetTimeValue(v)
		if !ok {
			return nil, 0, fmt.Errorf("%w: malformed dataset time entry %x", ErrCorrupt, k)
		}
		if len(job) > 0 && !bytes.Equal(fields[0], job) ||
			len(st) > 0 && !bytes.Equal(fields[1], st) ||
			len(purpose) > 0 && !bytes.Equal(fields[2], purpose) {
			continue
		}
		if total >= offset && (limit == 0 || total < offset+limit) {
			ids = append(ids, k[timePrefix:])
		}
		total++
	}
	out := make([]Dataset, 0, len(ids))
	for _, id := range ids {
		raw := b.datasets.Get(id)
		if raw == nil {
			return nil, 0, fmt.Errorf("%w: dataset time index names missing dataset %q", ErrCorrupt, id)
		}
		var d Dataset
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, 0, fmt.Errorf("%w: dataset %q: %v", ErrCorrupt, id, err)
		}
		out = append(out, d)
	}
	return out, total, nil
}

// DatasetCount returns the number of datasets (the bucket's key count).
func (l *Ledger) DatasetCount() (int, error) {
	var n int
	err := l.view(func(b buckets) error {
		n = b.datasets.Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("audit: dataset count: %w", err)
	}
	return n, nil
}

// matchRaw reports whether the dataset record v matches f, and its
// ReceivedAt.
func matchRaw(f DatasetFilter, v []byte) (bool, time.Time, error) {
	// json.Marshal writes the fields in the struct's order: job, state,
	// purpose, received_at. Each is looked for after the one before.
	job, at, ok1 := rawString(v, 0, `"job":"`)
	st, at, ok2 := rawString(v, at, `"state":"`)
	purpose, at, ok3 := rawString(v, at, `"purpose":"`)
	recvRaw, _, ok4 := rawString(v, at, `"received_at":"`)
	var recv time.Time
	var err error
	if ok4 {
		recv, err = time.Parse(time.RFC3339Nano, string(recvRaw))
	}
	if !ok1 || !ok2 || !ok3 || !ok4 || err != nil || bytes.IndexByte(job, '\\') >= 0 || bytes.IndexByte(purpose, '\\') >= 0 || bytes.IndexByte(st, '\\') >= 0 {
		// Not the shape json.Marshal writes, or escaped text: decode.
		var d Dataset
		if err := json.Unmarshal(v, &d); err != nil {
			return false, time.Time{}, err
		}
		return f.Match(d), d.ReceivedAt, nil
	}
	switch {
	case f.Job != "" && string(job) != f.Job,
		f.State != "" && string(st) != string(f.State),
		f.Purpose != "" && string(purpose) != f.Purpose,
		!f.Since.IsZero() && recv.Before(f.Since),
		!f.Until.IsZero() && !recv.Before(f.Until):
		return false, recv, nil
	}
	return true, recv, nil
}

// Match reports whether d matches f (the definition matchRaw follows).
func (f DatasetFilter) Match(d Dataset) bool {
	switch {
	case f.Job != "" && d.Job != f.Job,
		f.State != "" && d.State != f.State,
		f.Purpose != "" && d.Purpose != f.Purpose,
		!f.Since.IsZero() && d.ReceivedAt.Before(f.Since),
		!f.Until.IsZero() && !d.ReceivedAt.Before(f.Until):
		return false
	}
	return true
}

// rawString returns the raw (still escaped) text of the string after the
// first occurrence of key (`"name":"`) at or after from, up to its closing
// quote, and the position after that quote.
func rawString(v []byte, from int, key string) ([]byte, int, bool) {
	i := bytes.Index(v[from:], []byte(key))
	if i < 0 {
		return nil, from, false
	}
	start := from + i + len(key)
	s := v[start:]
	for j := 0; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return s[:j], start + j + 1, true
		}
	}
	return nil, from, false
}
