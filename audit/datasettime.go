package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketDatasetTime orders the datasets by the time they were received,
// for a list that pages newest first without reading every dataset
// record ([Ledger.DatasetPage]). Its key is the received time (Unix
// seconds offset by 2^63, then nanoseconds, each 64-bit big-endian, so
// that keys sort by time) followed by the dataset ID; its value holds the
// fields a list filters on (job, state, purpose), each as its byte length
// (64-bit big-endian) and its bytes. It is derived: Verify and
// VerifyIncremental recompute it from the dataset states; ledgers written
// before it existed get it, built from their dataset records, on their
// first writable open.
var bucketDatasetTime = []byte("dataset_time")

// ProblemDatasetTime: the dataset time index differs from the dataset
// states.
const ProblemDatasetTime = "dataset-time"

const timePrefix = 16 // bytes of a dataset time key before the ID

// timeKeyPrefix is the time part of a dataset time key.
func timeKeyPrefix(t time.Time) []byte {
	k := make([]byte, timePrefix, timePrefix+32)
	binary.BigEndian.PutUint64(k, uint64(t.Unix())^(1<<63))
	binary.BigEndian.PutUint64(k[8:], uint64(t.Nanosecond()))
	return k
}

func datasetTimeKey(d *Dataset) []byte { return append(timeKeyPrefix(d.ReceivedAt), d.ID...) }

func datasetTimeValue(d *Dataset) []byte {
	v := make([]byte, 0, 24+len(d.Job)+len(d.State)+len(d.Purpose))
	for _, s := range []string{d.Job, string(d.State), d.Purpose} {
		v = binary.BigEndian.AppendUint64(v, uint64(len(s)))
		v = append(v, s...)
	}
	return v
}

// parseDatasetTimeValue splits a value into job, state and purpose.
func parseDatasetTimeValue(v []byte) (f [3][]byte, ok bool) {
	for i := range f {
		if len(v) < 8 {
			return f, false
		}
		n := binary.BigEndian.Uint64(v)
		v = v[8:]
		if n > uint64(len(v)) {
			return f, false
		}
		f[i], v = v[:n], v[n:]
	}
	return f, len(v) == 0
}

// noteDatasetTime records d's state in the index, moving its entry if its
// received time changed (prev is its earlier state, if any).
func noteDatasetTime(b *bolt.Bucket, prev, d *Dataset) error {
	if b == nil {
		return fmt.Errorf("dataset time index: %w: bucket missing", ErrFormat)
	}
	if prev != nil && !prev.ReceivedAt.Equal(d.ReceivedAt) {
		if err := b.Delete(datasetTimeKey(prev)); err != nil {
			return fmt.Errorf("dataset time index %s: %w", d.ID, err)
		}
	}
	if err := b.Put(datasetTimeKey(d), datasetTimeValue(d)); err != nil {
		return fmt.Errorf("dataset time index %s: %w", d.ID, err)
	}
	return nil
}

// buildDatasetTime fills an empty dataset time bucket from the records.
func buildDatasetTime(btx *bolt.Tx, b *bolt.Bucket) error {
	ds := btx.Bucket(bucketDatasets)
	if ds == nil {
		return nil
	}
	return ds.ForEach(func(k, v []byte) error {
		var d Dataset
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("%w: dataset %q: %v", ErrCorrupt, k, err)
		}
		return b.Put(datasetTimeKey(&d), datasetTimeValue(&d))
	})
}

// datasetTimeWant accumulates the expected index from dataset states.
type datasetTimeWant map[string][]byte

func (w datasetTimeWant) add(rec []byte) {
	var d Dataset
	if json.Unmarshal(rec, &d) == nil {
		w[string(datasetTimeKey(&d))] = datasetTimeValue(&d)
	}
}

// compare reports every difference between the index and w through add.
// A missing bucket (a ledger from before the index, read-only) is not
// compared.
func (w datasetTimeWant) compare(b *bolt.Bucket, add func(kind, format string, args ...any)) {
	if b == nil {
		return
	}
	name := func(k []byte) string {
		if len(k) < timePrefix {
			return fmt.Sprintf("%x", k)
		}
		sec := int64(binary.BigEndian.Uint64(k) ^ (1 << 63))
		nsec := binary.BigEndian.Uint64(k[8:])
		if nsec > math.MaxInt32 {
			return fmt.Sprintf("%x", k)
		}
		return fmt.Sprintf("%q at %s", k[timePrefix:], time.Unix(sec, int64(nsec)).UTC().Format(time.RFC3339Nano))
	}
	_ = b.ForEach(func(k, v []byte) error {
		want, have := w[string(k)]
		switch {
		case !have:
			add(ProblemDatasetTime, "dataset time index names dataset %s, which no dataset state has", name(k))
		case !bytes.Equal(v, want):
			add(ProblemDatasetTime, "dataset time index entry of dataset %s differs from its state's job, state or purpose", name(k))
		}
		delete(w, string(k))
		return nil
	})
	for _, k := range slices.Sorted(maps.Keys(w)) {
		add(ProblemDatasetTime, "dataset time index entry of dataset %s is missing", name([]byte(k)))
	}
}
