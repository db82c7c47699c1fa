package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"custodian/audit"
	"custodian/configs"
	"custodian/internal/sftpd"
	"custodian/internal/synth"
	"custodian/vault"
)

const faultFile = "/outbox/HR_FULL_1.txt"

// TestFaults injects one fault per case into the in-process server (or the
// vault) and checks the common promises: no plaintext on disk, nothing stored
// as verified that is not, the failure on the ledger with its reason, the
// retry policy applied, and the ledger still verifying.
func TestFaults(t *testing.T) {
	type check func(t *testing.T, e *env, res *RunResult)
	// failedNoDataset: the first attempt fails with first, is retried once
	// after the initial backoff, and the last attempt fails with final.
	failedNoDataset := func(first, final string) check {
		return func(t *testing.T, e *env, res *RunResult) {
			o := e.outcome(res, "HR_FULL_1.txt")
			if o.Outcome != "failed" || !strings.Contains(o.Reason, final) {
				t.Fatalf("want failed with %q, got %+v", final, o)
			}
			ds, _ := e.led.Datasets()
			for _, d := range ds {
				if d.RemotePath == faultFile {
					t.Fatalf("a failed transfer must store nothing: %+v", d)
				}
			}
			// Files in flight on the same connection share its fate (a stall
			// drops the connection); they are retried and must end
			// verified, which the caller checks. The faulty file fails once
			// and is retried once.
			var retried []audit.Event
			for _, ev := range e.events("file.transfer_failed") {
				if ev.Details["remote_path"] == faultFile {
					retried = append(retried, ev)
				}
			}
			if len(retried) != 1 || !strings.Contains(retried[0].Details["error"], first) {
				t.Fatalf("want 1 retried failure on the ledger with %q: %+v", first, retried)
			}
			if got := e.events("file.failed"); len(got) != 1 || !strings.Contains(got[0].Details["error"], final) {
				t.Fatalf("want the final failure on the ledger with its reason: %+v", got)
			}
			if len(e.slept) != 1 || e.slept[0] != time.Second {
				t.Fatalf("want one backoff of 1s before the retry, got %v", e.slept)
			}
		}
	}
	var once atomic.Bool
	cases := []struct {
		name  string
		hooks func() *sftpd.Hooks
		store func(Store) Store
		edit  func(*configs.Job, *configs.Source)
		check check
	}{
		{
			name: "connection dropped mid-file, then retried",
			hooks: func() *sftpd.Hooks {
				return &sftpd.Hooks{DropAfterBytes: sftpd.DropAfterOnce(map[string]int64{faultFile: 200_000})}
			},
			check: func(t *testing.T, e *env, res *RunResult) {
				if o := e.outcome(res, "HR_FULL_1.txt"); o.Outcome != string(audit.StateVerified) {
					t.Fatalf("the retry must succeed: %+v", o)
				}
				found := false
				for _, ev := range e.events("file.transfer_failed") {
					found = found || (ev.Details["remote_path"] == faultFile && strings.Contains(ev.Details["error"], "connection lost"))
				}
				if !found {
					t.Fatalf("want the dropped attempt on the ledger: %+v", e.events("file.transfer_failed"))
				}
				if len(e.slept) != 1 {
					t.Fatalf("want one backoff, got %v", e.slept)
				}
			},
		},
		{
			name: "connection dropped while reading the sidecar, then retried",
			hooks: func() *sftpd.Hooks {
				return &sftpd.Hooks{DropAfterBytes: sftpd.DropAfterOnce(map[string]int64{faultFile + ".sha256": 10})}
			},
			check: func(t *testing.T, e *env, res *RunResult) {
				if o := e.outcome(res, "HR_FULL_1.txt"); o.Outcome != string(audit.StateVerified) {
					t.Fatalf("a dropped sidecar read is a transfer fault, retried: %+v", o)
				}
				if len(e.slept) != 1 {
					t.Fatalf("want one backoff, got %v", e.slept)
				}
			},
		},
		{
			name: "file truncated",
			hooks: func() *sftpd.Hooks {
				return &sftpd.Hooks{ReadAt: func(path string, p []byte, off int64, n int, err error) (int, error) {
					if path == faultFile && off+int64(n) > 100_000 {
						return max(0, int(100_000-off)), io.EOF
					}
					return n, err
				}}
			},
			check: failedNoDataset("size mismatch", "size mismatch"),
		},
		{
			name: "bytes corrupted",
			hooks: func() *sftpd.Hooks {
				return &sftpd.Hooks{ReadAt: func(path string, p []byte, off int64, n int, err error) (int, error) {
					if path == faultFile && off <= 5000 && off+int64(n) > 5000 {
						p[5000-off] ^= 0x01
					}
					return n, err
				}}
			},
			check: func(t *testing.T, e *env, res *RunResult) {
				o := e.outcome(res, "HR_FULL_1.txt")
				if o.Outcome != string(audit.StateQuarantined) || !strings.Contains(o.Reason, "sha256 mismatch") {
					t.Fatalf("corrupted bytes must be quarantined: %+v", o)
				}
				if len(e.slept) != 0 {
					t.Fatalf("a verdict is not retried: %v", e.slept)
				}
			},
		},
		{
			name: "server stalls",
			hooks: func() *sftpd.Hooks {
				return &sftpd.Hooks{ReadAt: func(path string, p []byte, off int64, n int, err error) (int, error) {
					// One read per attempt (the one covering byte 65536) stalls
					// far longer than the IO timeout.
					if path == faultFile && off <= 65536 && off+int64(len(p)) > 65536 {
						time.Sleep(1500 * time.Millisecond)
					}
					return n, err
				}}
			},
			edit:  func(_ *configs.Job, s *configs.Source) { s.IOTimeout.Duration = 300 * time.Millisecond },
			check: failedNoDataset("receiving", "receiving"),
		},
		{
			name: "size changes during transfer",
			hooks: func() *sftpd.Hooks {
				once.Store(false)
				return &sftpd.Hooks{Stat: func(path string, fi os.FileInfo) os.FileInfo {
					// The listing and the open see the real size; every later
					// stat sees the file grown, as if the provider appended.
					if path == faultFile && once.Load() {
						return sftpd.OverrideInfo(fi, fi.Size()+100, fi.ModTime().Add(time.Second))
					}
					return fi
				}, ReadAt: func(path string, p []byte, off int64, n int, err error) (int, error) {
					if path == faultFile {
						once.Store(true)
					}
					return n, err
				}}
			},
			// The retry sees the grown size from the start, then fewer bytes.
			check: failedNoDataset("changed during transfer", "size mismatch"),
		},
		{
			name:  "disk write error",
			store: func(s Store) Store { return failingStore{s} },
			check: failedNoDataset("no space left", "no space left"),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var hooks *sftpd.Hooks
			if tc.hooks != nil {
				hooks = tc.hooks()
			}
			p := startInProcess(t, hooks)
			e := newEnv(t, p, tc.edit)
			if tc.store != nil {
				e.store = tc.store(e.store)
				e.runner.Store = e.store
			}
			e.put(synth.FileSpec{Name: "HR_FULL_1.txt", Options: synth.Options{Records: 20000, Seed: 1}},
				synth.FileSpec{Name: "HR_FULL_2.txt", Options: synth.Options{Records: 50, Seed: 2}})
			res := e.run()
			tc.check(t, e, res)
			// The other file of the job is unaffected.
			if o := e.outcome(res, "HR_FULL_2.txt"); tc.store == nil && o.Outcome != string(audit.StateVerified) {
				t.Errorf("the healthy file must be verified: %+v", o)
			}
			e.checkInvariants()
		})
	}
}

// failingStore fails every write of the big file after 64 KiB, as a full disk would.
type failingStore struct{ Store }

func (s failingStore) Create(ctx context.Context) (ObjectWriter, error) {
	w, err := s.Store.Create(ctx)
	if err != nil {
		return nil, err
	}
	return &failingWriter{ObjectWriter: w}, nil
}

type failingWriter struct {
	ObjectWriter
	n int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	if w.n > 64<<10 {
		return 0, errors.New("write vault/tmp: no space left on device")
	}
	return w.ObjectWriter.Write(p)
}

func (w *failingWriter) Close() (vault.ObjectInfo, error) { return w.ObjectWriter.Close() }

// TestChangeFileAfterAFailureWaits: when a change file cannot be
// transferred, the files after it in the sequence are not accepted (that
// would accept a gap); they wait, and a later run takes them in order.
func TestChangeFileAfterAFailureWaits(t *testing.T) {
	var broken atomic.Bool
	broken.Store(true)
	hooks := &sftpd.Hooks{ReadAt: func(path string, p []byte, off int64, n int, err error) (int, error) {
		if broken.Load() && strings.HasSuffix(path, "_0002.txt") {
			return 0, errors.New("disk error on the provider's side")
		}
		return n, err
	}}
	e := newEnv(t, startInProcess(t, hooks), func(j *configs.Job, _ *configs.Source) {
		j.Kind, j.Sequence, j.Pattern = "change", `_(\d{4})\.txt$`, "HR_CHG_*.txt"
	})
	chg := func(seq int) synth.FileSpec {
		return synth.FileSpec{Name: fmt.Sprintf("HR_CHG_%04d.txt", seq), Options: synth.Options{Records: 5, Seed: uint64(seq), Seq: seq}}
	}
	e.put(chg(1), chg(2), chg(3))
	res := e.run()
	if o := e.outcome(res, "HR_CHG_0001.txt"); o.Outcome != string(audit.StateVerified) {
		t.Fatalf("0001: %+v", o)
	}
	if o := e.outcome(res, "HR_CHG_0002.txt"); o.Outcome != "failed" {
		t.Fatalf("0002: %+v", o)
	}
	if o := e.outcome(res, "HR_CHG_0003.txt"); o.Outcome != "waiting" || !strings.Contains(o.Reason, "HR_CHG_0002.txt") {
		t.Fatalf("0003 must wait for 0002, not be accepted after a gap: %+v", o)
	}
	if ds, _ := e.led.Datasets(); len(ds) != 1 {
		t.Fatalf("only 0001 may be stored: %d datasets", len(ds))
	}
	broken.Store(false)
	res = e.run()
	for _, n := range []string{"HR_CHG_0002.txt", "HR_CHG_0003.txt"} {
		if o := e.outcome(res, n); o.Outcome != string(audit.StateVerified) {
			t.Fatalf("once 0002 can be read, %s follows: %+v", n, o)
		}
	}
	e.checkInvariants()
}

// TestChangeFilesInFlightCommitInOrder: change files are read several at a
// time, but the ledger records them in sequence order even when an earlier
// one arrives last.
func TestChangeFilesInFlightCommitInOrder(t *testing.T) {
	hooks := &sftpd.Hooks{ReadAt: func(path string, p []byte, off int64, n int, err error) (int, error) {
		if strings.HasSuffix(path, "_0001.txt") {
			time.Sleep(150 * time.Millisecond) // the first file is the slowest
		}
		return n, err
	}}
	e := newEnv(t, startInProcess(t, hooks), func(j *configs.Job, s *configs.Source) {
		j.Kind, j.Sequence, j.Pattern = "change", `_(\d{4})\.txt$`, "HR_CHG_*.txt"
		s.Sessions = 4
	})
	for seq := 1; seq <= 6; seq++ {
		e.put(synth.FileSpec{Name: fmt.Sprintf("HR_CHG_%04d.txt", seq), Options: synth.Options{Records: 5, Seed: uint64(seq), Seq: seq}})
	}
	res := e.run()
	if res.Failed() || len(res.Files) != 6 {
		t.Fatalf("%+v", res)
	}
	var order []string
	for _, ev := range e.events("dataset.received") {
		order = append(order, ev.Details["remote_path"])
	}
	for i := 1; i < len(order); i++ {
		if order[i-1] >= order[i] {
			t.Fatalf("the ledger must record change files in sequence order: %v", order)
		}
	}
	e.checkInvariants()
}
