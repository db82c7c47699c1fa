package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// IntegritySequence is the Dataset.Integrity key holding a change file's
// sequence number, in decimal (part of the ledger format).
const IntegritySequence = "sequence"

// bucketSequence maps a job name to the highest sequence number among the
// job's datasets in an accepted state (State.Accepted), so that a run finds
// where its change-file chain stands without reading every dataset. It is
// derived: Verify and VerifyIncremental recompute it from the dataset
// states. Ledgers written before it existed get it, built from their
// dataset records, on their first writable open.
var bucketSequence = []byte("sequence")

// chainSequence returns the job and sequence number d adds to its job's
// chain, if any: a dataset in an accepted state with a sequence number.
func chainSequence(d *Dataset) (job string, seq int64, ok bool) {
	st := d.State
	if st == StateDestroyed {
		st = d.DestroyedFrom
	}
	if !st.Accepted() {
		return "", 0, false
	}
	s, present := d.Integrity[IntegritySequence]
	if !present {
		return "", 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return "", 0, false
	}
	return d.Job, n, true
}

func getSequence(b *bolt.Bucket, job string) (int64, bool) {
	if b == nil {
		return 0, false
	}
	v := b.Get([]byte(job))
	if v == nil {
		return 0, false
	}
	return parseIndex(v)
}

// noteSequence raises job's chain position to seq if it is higher.
func noteSequence(b *bolt.Bucket, job string, seq int64) error {
	if cur, ok := getSequence(b, job); ok && cur >= seq {
		return nil
	}
	return b.Put([]byte(job), u64(seq))
}

// buildSequence fills an empty sequence bucket from the dataset records.
func buildSequence(btx *bolt.Tx, b *bolt.Bucket) error {
	ds := btx.Bucket(bucketDatasets)
	if ds == nil {
		return nil
	}
	return ds.ForEach(func(k, v []byte) error {
		if !bytes.Contains(v, []byte(`"`+IntegritySequence+`":`)) {
			return nil
		}
		var d Dataset
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("%w: dataset %q: %v", ErrCorrupt, k, err)
		}
		if job, seq, ok := chainSequence(&d); ok {
			return noteSequence(b, job, seq)
		}
		return nil
	})
}

// LastSequence returns the highest sequence number accepted on job's
// change-file chain (verified, unverified or released), if any.
func (l *Ledger) LastSequence(job string) (int64, bool, error) {
	var (
		n  int64
		ok bool
	)
	err := l.view(func(b buckets) error {
		n, ok = getSequence(b.sequence, job)
		if b.sequence == nil {
			// A read-only handle on a ledger from before the index:
			// compute it.
			n, ok = -1, false
			return b.datasets.ForEach(func(k, v []byte) error {
				var d Dataset
				if err := json.Unmarshal(v, &d); err != nil {
					return fmt.Errorf("%w: dataset %q: %v", ErrCorrupt, k, err)
				}
				if j, s, good := chainSequence(&d); good && j == job && s > n {
					n, ok = s, true
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("audit: last sequence: %w", err)
	}
	return n, ok, nil
}

// sequenceWant accumulates the expected index from dataset states.
type sequenceWant map[string]int64

func (w sequenceWant) add(d *Dataset) {
	if job, seq, ok := chainSequence(d); ok {
		if cur, have := w[job]; !have || seq > cur {
			w[job] = seq
		}
	}
}

// compare reports every difference between the index and w through add.
// A missing bucket (a ledger from before the index, read-only) is not
// compared.
func (w sequenceWant) compare(b *bolt.Bucket, add func(kind, format string, args ...any)) {
	if b == nil {
		return
	}
	_ = b.ForEach(func(k, v []byte) error {
		job := string(k)
		got, ok := parseIndex(v)
		want, have := w[job]
		switch {
		case !ok:
			add(ProblemSequence, "sequence index entry for job %q is malformed", job)
		case !have:
			add(ProblemSequence, "sequence index says job %q accepted sequence %d, but no dataset of that job is accepted with a sequence number", job, got)
		case got != want:
			add(ProblemSequence, "sequence index says job %q accepted up to %d, the dataset states say %d", job, got, want)
		}
		delete(w, job)
		return nil
	})
	jobs := make([]string, 0, len(w))
	for j := range w {
		jobs = append(jobs, j)
	}
	slices.Sort(jobs)
	for _, j := range jobs {
		add(ProblemSequence, "sequence index entry for job %q (accepted up to %d) is missing", j, w[j])
	}
}
