package transfer

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"custodian/audit"
	"custodian/configs"
	"custodian/internal/sftpd"
	"custodian/internal/sshdtest"
	"custodian/internal/synth"
)

// TestConformanceMultiStream pulls a file large enough to be read as ranges
// over several sessions and connections, with small files beside it, from
// both servers: the digests are those of the files on the server and the
// vault objects decrypt to their bytes.
func TestConformanceMultiStream(t *testing.T) {
	// Start with a window of four channels' worth, so that four streams
	// are used however fast the loopback is (the adaptive window would
	// stay small there).
	saved := defaultRanges
	defaultRanges.Initial = 4 * defaultRanges.PerStream
	t.Cleanup(func() { defaultRanges = saved })
	var bigOpens atomic.Int64
	hooks := &sftpd.Hooks{DropAfterBytes: func(path string) int64 {
		if strings.HasSuffix(path, "/HR_FULL_BIG.txt") {
			bigOpens.Add(1)
		}
		return 0
	}}
	for _, pv := range providers {
		t.Run(pv.name, func(t *testing.T) {
			p := pv.start(t)
			if p.srv != nil {
				p = startInProcess(t, hooks) // the same server, counting opens
			}
			e := newEnv(t, p, func(_ *configs.Job, s *configs.Source) { s.Sessions, s.Connections = 4, 2 })
			specs := []synth.FileSpec{
				{Name: "HR_FULL_BIG.txt", Options: synth.Options{Records: 70000, Seed: 11}}, // ≈ 5.5 MiB
				{Name: "HR_FULL_S1.txt", Options: synth.Options{Records: 200, Seed: 12}},
				{Name: "HR_FULL_S2.txt", Options: synth.Options{Records: 3000, Seed: 13}}, // above smallFile
			}
			e.put(specs...)
			res := e.run()
			if res.Failed() || len(res.Files) != len(specs) {
				t.Fatalf("run failed: %+v", res)
			}
			for _, s := range specs {
				raw, err := os.ReadFile(filepath.Join(p.dir, s.Name))
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(raw)
				o := e.outcome(res, s.Name)
				if o.Outcome != string(audit.StateVerified) || o.SHA256 != hex.EncodeToString(sum[:]) || o.Size != int64(len(raw)) {
					t.Fatalf("%s: %+v; want verified with the file's digest", s.Name, o)
				}
				if s.Name == "HR_FULL_BIG.txt" && int64(len(raw)) < 2*channelWindow {
					t.Fatalf("%s is %d bytes: too small to be read over several streams", s.Name, len(raw))
				}
				d, _, _ := e.led.Dataset(o.DatasetID)
				if got := e.decrypt(d.ObjectID); string(got) != string(raw) {
					t.Fatalf("%s: the object does not decrypt to the file", s.Name)
				}
			}
			if p.srv != nil {
				if st := p.srv.Stats(); st.Sessions < 4 || st.ConnsAccepted < 2 || bigOpens.Load() != 4 {
					t.Fatalf("server saw %d sessions on %d connections and %d opens of the big file; want 4 sessions on 2, and 4 streams", st.Sessions, st.ConnsAccepted, bigOpens.Load())
				}
			}
			e.checkInvariants()
		})
	}
}

// TestMultiStreamCorruptRange: one flipped byte in the middle of a range read
// over another session than the first is caught by the one digest.
func TestMultiStreamCorruptRange(t *testing.T) {
	const name = "/outbox/HR_FULL_BIG.txt"
	const at = 3<<20 + 77
	p := startInProcess(t, &sftpd.Hooks{ReadAt: func(path string, b []byte, off int64, n int, err error) (int, error) {
		if path == name && off <= at && off+int64(n) > at {
			b[at-off] ^= 0x20
		}
		return n, err
	}})
	e := newEnv(t, p, func(_ *configs.Job, s *configs.Source) { s.Sessions = 4 })
	e.put(synth.FileSpec{Name: "HR_FULL_BIG.txt", Options: synth.Options{Records: 70000, Seed: 11}})
	res := e.run()
	o := e.outcome(res, "HR_FULL_BIG.txt")
	if o.Outcome != string(audit.StateQuarantined) || !strings.Contains(o.Reason, "mismatch") {
		t.Fatalf("want quarantined for the digest, got %+v", o)
	}
	e.checkInvariants()
}

// TestSessionLimitFallback: against the real sshd with MaxSessions 2, asking
// for 6 sessions on one connection neither fails nor retries: Dial notes the
// limit and opens more connections, each within it, and a pull works.
func TestSessionLimitFallback(t *testing.T) {
	s := sshdtest.StartWith(t, sshdtest.LaunchOptions{MaxSessions: 2})
	outbox := filepath.Join(s.Root, "outbox")
	mustMkdir(t, outbox)
	p := &provider{kind: "openssh", dir: outbox, remoteDir: outbox,
		src: &configs.Source{Address: s.Addr, User: s.User, KeyFile: s.ClientKeyPath, KnownHosts: s.KnownHostsPath}}
	e := newEnv(t, p, func(_ *configs.Job, src *configs.Source) { src.Sessions, src.Connections = 6, 1 })

	r, err := Dial(t.Context(), "moi", e.cfg.Sources["moi"])
	if err != nil {
		t.Fatalf("Dial with sessions above MaxSessions: %v", err)
	}
	if r.Sessions() != 6 || r.Connections() != 3 {
		t.Fatalf("%d sessions on %d connections; want 6 on 3", r.Sessions(), r.Connections())
	}
	if n := strings.Join(r.Notes(), "; "); !strings.Contains(n, "allows 2 SFTP sessions per connection") {
		t.Fatalf("notes %q do not name the limit", n)
	}
	r.Close()

	e.put(synth.FileSpec{Name: "HR_FULL_BIG.txt", Options: synth.Options{Records: 70000, Seed: 11}},
		synth.FileSpec{Name: "HR_FULL_S1.txt", Options: synth.Options{Records: 20, Seed: 12}})
	res := e.run()
	if res.Failed() || len(res.Files) != 2 || len(e.slept) != 0 {
		t.Fatalf("run %+v, backoffs %v; want both files verified without a retry", res, e.slept)
	}
	if got := e.events("source.connect_failed"); len(got) != 0 {
		t.Fatalf("connect failures on the ledger: %+v", got)
	}
	if got := e.events("source.session_limit"); len(got) != 1 || !strings.Contains(got[0].Details["note"], "allows 2") {
		t.Fatalf("want the session limit on the ledger once: %+v", got)
	}
	e.checkInvariants()
}

// TestNoSessionsNotRetried: a server that allows no session at all fails
// the run at once with a clear error, without the retry backoff.
func TestNoSessionsNotRetried(t *testing.T) {
	s := sshdtest.StartWith(t, sshdtest.LaunchOptions{MaxSessions: -1})
	outbox := filepath.Join(s.Root, "outbox")
	mustMkdir(t, outbox)
	p := &provider{kind: "openssh", dir: outbox, remoteDir: outbox,
		src: &configs.Source{Address: s.Addr, User: s.User, KeyFile: s.ClientKeyPath, KnownHosts: s.KnownHostsPath}}
	e := newEnv(t, p, nil)
	res := e.run()
	if !strings.Contains(res.Error, "refuses every SFTP session") || len(e.slept) != 0 {
		t.Fatalf("run error %q after backoffs %v; want the refusal at once", res.Error, e.slept)
	}
}
