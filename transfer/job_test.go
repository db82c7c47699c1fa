package transfer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"custodian/audit"
	"custodian/configs"
	"custodian/internal/sftpd"
	"custodian/internal/synth"
)

// TestConformance runs the same cases against the in-process server and the
// real OpenSSH sshd.
func TestConformance(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, p *provider)
	}{
		{"RoundTrip", testRoundTrip},
		{"ChecksumMismatch", testChecksumMismatch},
		{"CountMismatch", testCountMismatch},
		{"RestartWithoutReingest", testRestartWithoutReingest},
		{"WrongHostKey", testWrongHostKey},
		{"TamperedCiphertext", testTamperedCiphertext},
	}
	for _, pv := range providers {
		t.Run(pv.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, pv.start(t)) })
			}
		})
	}
}

func testRoundTrip(t *testing.T, p *provider) {
	e := newEnv(t, p, nil)
	specs := []synth.FileSpec{
		{Name: "HR_FULL_20261130.txt", Options: synth.Options{Records: 30000, Seed: 1}},
		{Name: "HR_FULL_20261129.txt", Options: synth.Options{Records: 1, Seed: 2, CRLF: true}},
		{Name: "HR_FULL_20261128.txt", Options: synth.Options{Records: 0, Seed: 3}},
	}
	e.put(specs...)
	res := e.run()
	if res.Failed() || len(res.Files) != 3 {
		t.Fatalf("run failed: %+v", res)
	}
	for _, s := range specs {
		o := e.outcome(res, s.Name)
		if o.Outcome != string(audit.StateVerified) || o.Records != int64(s.Records) {
			t.Errorf("%s: %+v", s.Name, o)
		}
		d, ok, err := e.led.Dataset(o.DatasetID)
		if err != nil || !ok {
			t.Fatalf("dataset %s: %v %v", o.DatasetID, ok, err)
		}
		want, err := os.ReadFile(filepath.Join(p.dir, s.Name))
		if err != nil {
			t.Fatal(err)
		}
		if got := e.decrypt(d.ObjectID); !bytes.Equal(got, want) {
			t.Errorf("%s: decrypted object differs from the served file (%d vs %d bytes)", s.Name, len(got), len(want))
		}
		if err := e.v.CheckObject(context.Background(), e.ident, d); err != nil {
			t.Errorf("scrub %s: %v", s.Name, err)
		}
		if d.Purpose != "vaccination" || d.Custodian != "officer.a" || d.RemotePath != p.remoteDir+"/"+s.Name {
			t.Errorf("dataset metadata: %+v", d)
		}
	}
	e.checkInvariants()
}

func testChecksumMismatch(t *testing.T, p *provider) {
	e := newEnv(t, p, nil)
	e.put(synth.FileSpec{Name: "HR_FULL_1.txt", Options: synth.Options{Records: 100, Seed: 1}})
	e.write("HR_FULL_1.txt.sha256", []byte(strings.Repeat("ab", 32)+"  HR_FULL_1.txt\n"))
	res := e.run()
	o := e.outcome(res, "HR_FULL_1.txt")
	if o.Outcome != string(audit.StateQuarantined) || !strings.Contains(o.Reason, "sha256 mismatch") || !res.Failed() {
		t.Fatalf("want quarantined for checksum mismatch, got %+v", o)
	}
	d, _, _ := e.led.Dataset(o.DatasetID)
	if d.State != audit.StateQuarantined || !e.v.Exists(d.ObjectID) {
		t.Fatalf("quarantined dataset must be stored encrypted: %+v", d)
	}
	e.checkInvariants()
}

func testCountMismatch(t *testing.T, p *provider) {
	e := newEnv(t, p, nil)
	e.put(synth.FileSpec{Name: "HR_FULL_1.txt", Options: synth.Options{Records: 100, Seed: 1, TrailerDelta: -1}})
	res := e.run()
	o := e.outcome(res, "HR_FULL_1.txt")
	if o.Outcome != string(audit.StateQuarantined) || !strings.Contains(o.Reason, "declares 99 records, counted 100") {
		t.Fatalf("want quarantined for count mismatch, got %+v", o)
	}
	e.checkInvariants()
}

func testRestartWithoutReingest(t *testing.T, p *provider) {
	e := newEnv(t, p, nil)
	e.put(synth.FileSpec{Name: "HR_FULL_1.txt", Options: synth.Options{Records: 10, Seed: 1}},
		synth.FileSpec{Name: "HR_FULL_2.txt", Options: synth.Options{Records: 10, Seed: 2}})
	if res := e.run(); len(res.Files) != 2 {
		t.Fatalf("first run: %+v", res)
	}
	e.restart()
	res := e.run()
	if len(res.Files) != 0 || res.Skipped != 2 {
		t.Fatalf("after restart nothing may be ingested again: %+v", res)
	}
	ds, _ := e.led.Datasets()
	if len(ds) != 2 {
		t.Fatalf("want 2 datasets, got %d", len(ds))
	}
	e.checkInvariants()
}

func testWrongHostKey(t *testing.T, p *provider) {
	other, _, err := sftpd.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		line string
		want error
	}{
		{"changed", hostPattern(p.src.Address) + " " + string(bytes.TrimSpace(sshMarshal(other))), ErrHostKeyChanged},
		{"unknown", "[127.0.0.2]:22 " + string(bytes.TrimSpace(sshMarshal(other))), ErrHostKeyUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kh := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(kh, []byte(tc.line+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, p, func(_ *configs.Job, s *configs.Source) { s.KnownHosts = kh })
			e.put(synth.FileSpec{Name: "HR_FULL_1.txt", Options: synth.Options{Records: 10, Seed: 1}})
			res := e.run()
			if !res.Failed() || !strings.Contains(res.Error, "host key") {
				t.Fatalf("want a host key failure, got %+v", res)
			}
			_, err := Dial(context.Background(), "moi", e.cfg.Sources["moi"])
			if !errors.Is(err, tc.want) {
				t.Fatalf("Dial: want %v, got %v", tc.want, err)
			}
			evs := e.events("source.connect_failed")
			if len(evs) != 1 || !strings.Contains(evs[0].Details["error"], "host key") {
				t.Fatalf("the failure must be on the ledger once (host keys are never retried): %+v", evs)
			}
			if len(e.slept) != 0 {
				t.Fatalf("a host key failure must not be retried, slept %v", e.slept)
			}
			if ds, _ := e.led.Datasets(); len(ds) != 0 {
				t.Fatalf("nothing may be stored: %+v", ds)
			}
			e.checkInvariants()
		})
	}
}

func testTamperedCiphertext(t *testing.T, p *provider) {
	e := newEnv(t, p, nil)
	e.put(synth.FileSpec{Name: "HR_FULL_1.txt", Options: synth.Options{Records: 5000, Seed: 1}})
	res := e.run()
	d, _, _ := e.led.Dataset(e.outcome(res, "HR_FULL_1.txt").DatasetID)
	path, err := e.v.Path(d.ObjectID)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{10, len(orig) / 2, len(orig) - 1} {
		b := bytes.Clone(orig)
		b[off] ^= 0x40
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := e.v.CheckObject(context.Background(), e.ident, d); err == nil {
			t.Errorf("flipped byte at %d of %d not detected", off, len(orig))
		}
	}
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.v.CheckObject(context.Background(), e.ident, d); err != nil {
		t.Fatalf("restored object: %v", err)
	}
}
