package audit

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// genSparseEvent is event i of a stream with one dataset per 20 events, as
// a daemon pulling one file per run records it: the receipt, the remote
// file's deletion, and job and daemon events naming no dataset.
func genSparseEvent(i int) Event {
	ds := i / 20
	ev := Event{Time: baseTime.Add(time.Duration(i) * time.Second), Actor: "system:custodiand", Job: "daily-extract"}
	switch i % 20 {
	case 0:
		ev.Type = "dataset.received"
		ev.Dataset = testDataset(ds, StateVerified)
	case 1:
		ev.Type = "remote.delete"
		ev.DatasetID = fmt.Sprintf("ds-%06d", ds)
		ev.Details = map[string]string{"remote_path": fmt.Sprintf("/out/extract-%06d.csv.gpg", ds)}
	default:
		ev.Type = "job.finished"
		ev.Details = map[string]string{"files": "1", "skipped": "0"}
	}
	return ev
}

// BenchmarkVerifyIncremental compares, on ledgers of 100,000 events, the
// daemon's start-up check (VerifyIncremental from a verified checkpoint
// 1,000 events back) with the full Verify, in CPU time per check (the
// full Verify uses every core; CPU time does not depend on what else the
// machine runs). "dense" has a dataset every 4 events (genEvent: 25,000
// datasets), "sparse" one every 20 (5,000).
func BenchmarkVerifyIncremental(b *testing.B) {
	const n, fresh = 100_000, 1_000
	for _, p := range []struct {
		name string
		gen  func(int) Event
	}{{"dense", genEvent}, {"sparse", genSparseEvent}} {
		key := newTestKey(b, "custodian.bench/ledger")
		path := filepath.Join(b.TempDir(), "ledger.db")
		l, err := Open(path, Options{Signer: key.signer, NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		add := func(from, to int) {
			for i := from; i < to; i += 1000 {
				err := l.Update(func(tx *Tx) error {
					for j := i; j < min(i+1000, to); j++ {
						if _, err := tx.Append(p.gen(j)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		add(0, n-fresh)
		verified, err := l.Checkpoint()
		if err != nil {
			b.Fatal(err)
		}
		add(n-fresh, n)
		l.Close()
		if l, err = Open(path, Options{ReadOnly: true}); err != nil {
			b.Fatal(err)
		}
		b.Run(p.name+"/incremental", func(b *testing.B) {
			cpu := cpuTime()
			for range b.N {
				rep, err := VerifyIncremental(l, IncrementalOptions{VerifierKey: key.vkey, Verified: verified})
				if err != nil {
					b.Fatal(err)
				}
				if !rep.OK || rep.NewEvents != fresh {
					b.Fatalf("incremental verify:\n%v", rep)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu).Milliseconds())/float64(b.N), "cpu-ms/op")
		})
		b.Run(p.name+"/full", func(b *testing.B) {
			cpu := cpuTime()
			for range b.N {
				rep, err := Verify(l, VerifyOptions{VerifierKey: key.vkey})
				if err != nil {
					b.Fatal(err)
				}
				if !rep.OK {
					b.Fatalf("verify:\n%v", rep)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu).Milliseconds())/float64(b.N), "cpu-ms/op")
		})
		l.Close()
	}
}
