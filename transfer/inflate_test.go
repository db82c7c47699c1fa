package transfer

import (
	"bytes"
	"compress/gzip"
	"context"
	"strconv"
	"strings"
	"testing"

	"custodian/audit"
	"custodian/configs"
	"custodian/transfer/integrity"
)

// lfBomb is a gzip file of n empty records (line feeds) between a header
// and a trailer declaring n: about 1000:1.
func lfBomb(t testing.TB, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	w.Write([]byte("HDR|bomb\n"))
	w.Write(bytes.Repeat([]byte("\n"), n))
	w.Write([]byte("TRL" + strconv.Itoa(n) + "\n"))
	w.Close()
	return b.Bytes()
}

// TestGzipBombQuarantined pulls gzip files that inflate far beyond the
// configured ceilings over SFTP: each is stored encrypted exactly as
// received, quarantined with a reason naming the limit and its key, and
// decompression stopped at the limit (fewer records counted than the file
// holds). The scrub recounts with the same ceiling and agrees.
func TestGzipBombQuarantined(t *testing.T) {
	const n = 24 << 20 // 24 MiB inflated from about 24 KiB
	bomb := lfBomb(t, n)
	cases := []struct {
		name string
		edit func(*configs.Records)
		want string
	}{
		{"default ratio", nil, "records.max_inflate_ratio"},
		{"configured size", func(r *configs.Records) { r.MaxInflated, r.MaxInflateRatio = 1<<20, configs.MaxInflateRatio },
			"gzip: more than 1 MiB after decompression, the ceiling set by records.max_inflated"},
		{"configured ratio", func(r *configs.Records) { r.MaxInflateRatio = 50 }, "more than 50:1, the ceiling set by records.max_inflate_ratio"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, startInProcess(t, nil), func(j *configs.Job, _ *configs.Source) {
				j.Pattern = "HR_*.txt.gz"
				if tc.edit != nil {
					tc.edit(&j.Records)
				}
			})
			e.write("HR_1.txt.gz", bomb)
			e.write("HR_1.txt.gz.sha256", []byte(hexOf(bomb)+"  HR_1.txt.gz\n"))
			o := e.outcome(e.run(), "HR_1.txt.gz")
			if o.Outcome != string(audit.StateQuarantined) || !strings.Contains(o.Reason, tc.want) {
				t.Fatalf("want quarantined naming %s, got %+v", tc.want, o)
			}
			if o.Records >= n {
				t.Fatalf("%d records counted: decompression did not stop", o.Records)
			}
			d, _, _ := e.led.Dataset(o.DatasetID)
			if got := e.decrypt(d.ObjectID); !bytes.Equal(got, bomb) || d.Size != int64(len(bomb)) {
				t.Fatal("the object must hold the bytes as received")
			}
			// The scrub applies the same ceiling: it stops where ingest
			// stopped, so its count agrees with the ledger.
			if err := e.v.CheckObject(context.Background(), e.ident, d); err != nil {
				t.Fatalf("scrub of the quarantined bomb: %v", err)
			}
			e.checkInvariants()
		})
	}
}

// TestScrubInflateCeiling: a gzip payload within its job's ceilings is
// verified and scrubbed with those ceilings; a dataset recorded before the
// ceilings existed is scrubbed with the defaults, so the scrub stops
// decompressing early and says why instead of inflating without bound.
func TestScrubInflateCeiling(t *testing.T) {
	const n = 8 << 20
	bomb := lfBomb(t, n)
	e := newEnv(t, startInProcess(t, nil), func(j *configs.Job, _ *configs.Source) {
		j.Pattern = "HR_*.txt.gz"
		j.Records.MaxInflated, j.Records.MaxInflateRatio = 16<<20, configs.MaxInflateRatio
	})
	e.write("HR_1.txt.gz", bomb)
	e.write("HR_1.txt.gz.sha256", []byte(hexOf(bomb)+"  HR_1.txt.gz\n"))
	o := e.outcome(e.run(), "HR_1.txt.gz")
	if o.Outcome != string(audit.StateVerified) || o.Records != n {
		t.Fatalf("within its ceilings the file is verified: %+v", o)
	}
	d, _, _ := e.led.Dataset(o.DatasetID)
	if d.Integrity[integrity.KeyCountMaxInflated] != strconv.Itoa(16<<20) || d.Integrity[integrity.KeyCountMaxInflateRatio] != "1032" {
		t.Fatalf("the ceilings in effect must be kept with the dataset: %v", d.Integrity)
	}
	if err := e.v.CheckObject(context.Background(), e.ident, d); err != nil {
		t.Fatalf("scrub: %v", err)
	}
	legacy := d
	legacy.Integrity = map[string]string{}
	for k, v := range d.Integrity {
		if k != integrity.KeyCountMaxInflated && k != integrity.KeyCountMaxInflateRatio {
			legacy.Integrity[k] = v
		}
	}
	err := e.v.CheckObject(context.Background(), e.ident, legacy)
	if err == nil || !strings.Contains(err.Error(), "records.max_inflate_ratio") {
		t.Fatalf("a legacy dataset is scrubbed under the default ceiling, which this payload exceeds: %v", err)
	}
}
