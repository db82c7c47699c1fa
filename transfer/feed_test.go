package transfer

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"custodian/audit"
	"custodian/configs"
	"custodian/internal/synth"
)

func render(t *testing.T, o synth.Options) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, _, err := synth.WriteFile(&b, o); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func hexSum(h interface{ Sum([]byte) []byte }) string { return hex.EncodeToString(h.Sum(nil)) }

func TestSidecarForms(t *testing.T) {
	content := render(t, synth.Options{Records: 20, Seed: 1})
	s256 := sha256.Sum256(content)
	s512 := sha512.Sum512(content)
	m5 := md5.Sum(content)
	cases := []struct {
		name      string
		sidecar   string
		body      string
		allowWeak bool
		want      string
		warning   bool
	}{
		{"two spaces", ".sha256", hex.EncodeToString(s256[:]) + "  HR_1.txt\n", false, string(audit.StateVerified), false},
		{"binary star", ".sha256", hex.EncodeToString(s256[:]) + " *HR_1.txt\n", false, string(audit.StateVerified), false},
		{"bare digest", ".sha256", strings.ToUpper(hex.EncodeToString(s256[:])) + "\r\n", false, string(audit.StateVerified), false},
		{"sha512", ".sha512", hex.EncodeToString(s512[:]) + "  HR_1.txt\n", false, string(audit.StateVerified), false},
		{"md5 refused without allow_weak", ".md5", hex.EncodeToString(m5[:]) + "  HR_1.txt\n", false, "failed", false},
		{"md5 with allow_weak", ".md5", hex.EncodeToString(m5[:]) + "  HR_1.txt\n", true, string(audit.StateVerified), true},
		{"sidecar names another file", ".sha256", hex.EncodeToString(s256[:]) + "  HR_2.txt\n", false, "failed", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, startInProcess(t, nil), func(j *configs.Job, _ *configs.Source) { j.AllowWeak = tc.allowWeak; j.Retry.Attempts = 1 })
			e.write("HR_1.txt", content)
			e.write("HR_1.txt"+tc.sidecar, []byte(tc.body))
			o := e.outcome(e.run(), "HR_1.txt")
			if o.Outcome != tc.want {
				t.Fatalf("want %s, got %+v", tc.want, o)
			}
			if tc.warning {
				evs := e.events("dataset.received")
				if len(evs) != 1 || !strings.Contains(evs[0].Details["warning"], "md5") {
					t.Fatalf("a weak digest must leave a warning on the ledger: %+v", evs)
				}
			}
			e.checkInvariants()
		})
	}
}

func TestManifest(t *testing.T) {
	a := render(t, synth.Options{Records: 10, Seed: 1})
	b := render(t, synth.Options{Records: 12, Seed: 2})
	line := func(name string, c []byte, records int) string {
		s := sha256.Sum256(c)
		return fmt.Sprintf("%s,%d,%s,%d\n", name, len(c), hex.EncodeToString(s[:]), records)
	}
	cases := []struct {
		name     string
		manifest string
		files    map[string][]byte
		want     map[string]string
	}{
		{"csv ok", "name,size,sha256,records\n" + line("HR_A.txt", a, 10) + line("HR_B.txt", b, 12),
			map[string][]byte{"HR_A.txt": a, "HR_B.txt": b}, map[string]string{"HR_A.txt": string(audit.StateVerified), "HR_B.txt": string(audit.StateVerified)}},
		{"sha256sum style", hexOf(a) + "  HR_A.txt\n" + hexOf(b) + "  HR_B.txt\n",
			map[string][]byte{"HR_A.txt": a, "HR_B.txt": b}, map[string]string{"HR_A.txt": string(audit.StateVerified), "HR_B.txt": string(audit.StateVerified)}},
		{"manifest count disagrees", "name,size,sha256,records\n" + line("HR_A.txt", a, 11),
			map[string][]byte{"HR_A.txt": a}, map[string]string{"HR_A.txt": string(audit.StateQuarantined)}},
		{"file missing from manifest fails the batch", "name,size,sha256,records\n" + line("HR_A.txt", a, 10),
			map[string][]byte{"HR_A.txt": a, "HR_B.txt": b}, map[string]string{"HR_A.txt": "failed", "HR_B.txt": "failed"}},
		{"manifest lists a file the server lacks", "name,size,sha256,records\n" + line("HR_A.txt", a, 10) + line("HR_B.txt", b, 12),
			map[string][]byte{"HR_A.txt": a}, map[string]string{"HR_A.txt": "failed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, startInProcess(t, nil), func(j *configs.Job, _ *configs.Source) {
				j.Checksum, j.Manifest = "manifest", "MANIFEST_*.csv"
			})
			for n, c := range tc.files {
				e.write(n, c)
			}
			e.write("MANIFEST_20261130.csv", []byte(tc.manifest))
			res := e.run()
			for n, want := range tc.want {
				if o := e.outcome(res, n); o.Outcome != want {
					t.Errorf("%s: want %s, got %+v", n, want, o)
				}
			}
			if strings.Contains(tc.name, "batch") || strings.Contains(tc.name, "lacks") {
				if ds, _ := e.led.Datasets(); len(ds) != 0 || len(e.events("batch.failed")) != 1 {
					t.Errorf("a failed batch stores nothing and is on the ledger: %d datasets", len(ds))
				}
			}
			e.checkInvariants()
		})
	}
}

func hexOf(c []byte) string { s := sha256.Sum256(c); return hex.EncodeToString(s[:]) }

func TestChecksumNone(t *testing.T) {
	e := newEnv(t, startInProcess(t, nil), func(j *configs.Job, _ *configs.Source) { j.Checksum, j.AllowUnverified = "none", true })
	e.write("HR_1.txt", render(t, synth.Options{Records: 5, Seed: 1}))
	o := e.outcome(e.run(), "HR_1.txt")
	if o.Outcome != string(audit.StateUnverified) {
		t.Fatalf("checksum none must be recorded as unverified: %+v", o)
	}
	e.checkInvariants()
}

func TestReadyMarkerAndSettle(t *testing.T) {
	e := newEnv(t, startInProcess(t, nil), func(j *configs.Job, _ *configs.Source) { j.ReadyMarker = ".done" })
	e.put(synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1}})
	if o := e.outcome(e.run(), "HR_1.txt"); o.Outcome != "waiting" || !strings.Contains(o.Reason, "HR_1.txt.done") {
		t.Fatalf("without its marker the file must wait: %+v", o)
	}
	e.write("HR_1.txt.done", nil)
	if o := e.outcome(e.run(), "HR_1.txt"); o.Outcome != string(audit.StateVerified) {
		t.Fatalf("with its marker the file is pulled: %+v", o)
	}

	s := newEnv(t, startInProcess(t, nil), func(j *configs.Job, _ *configs.Source) { j.Settle.Duration = time.Hour })
	s.put(synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1}})
	if o := s.outcome(s.run(), "HR_1.txt"); o.Outcome != "waiting" {
		t.Fatalf("a file modified within the settle time must wait: %+v", o)
	}
	s.runner.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if o := s.outcome(s.run(), "HR_1.txt"); o.Outcome != string(audit.StateVerified) {
		t.Fatalf("a settled file is pulled: %+v", o)
	}
	e.checkInvariants()
	s.checkInvariants()
}

func TestAfterPull(t *testing.T) {
	for _, tc := range []struct{ mode, gone, there string }{
		{"delete", "HR_1.txt", ""},
		{"move:/archive", "HR_1.txt", "../archive/HR_1.txt"},
		{"keep", "", "HR_1.txt"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			p := startInProcess(t, nil)
			mustMkdir(t, filepath.Join(filepath.Dir(p.dir), "archive"))
			e := newEnv(t, p, func(j *configs.Job, _ *configs.Source) { j.AfterPull = afterPull(t, tc.mode) })
			e.put(synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1}})
			if o := e.outcome(e.run(), "HR_1.txt"); o.Outcome != string(audit.StateVerified) {
				t.Fatalf("%+v", o)
			}
			if tc.gone != "" {
				if _, err := os.Stat(filepath.Join(p.dir, tc.gone)); !os.IsNotExist(err) {
					t.Errorf("%s should be gone from the server: %v", tc.gone, err)
				}
			}
			if tc.there != "" {
				if _, err := os.Stat(filepath.Join(p.dir, tc.there)); err != nil {
					t.Errorf("%s should be on the server: %v", tc.there, err)
				}
			}
			if tc.mode != "keep" {
				typ := "remote." + strings.SplitN(tc.mode, ":", 2)[0]
				if evs := e.events(typ); len(evs) != 1 || evs[0].DatasetID == "" {
					t.Errorf("want one %s event naming the dataset: %+v", typ, evs)
				}
				// The file is gone or moved, yet nothing is pulled again.
				if res := e.run(); len(res.Files) != 0 {
					t.Errorf("second run pulled again: %+v", res)
				}
			}
			e.checkInvariants()
		})
	}
}

func TestRemoteNamesAreData(t *testing.T) {
	e := newEnv(t, startInProcess(t, nil), nil)
	e.put(synth.FileSpec{Name: "HR_ok.txt", Options: synth.Options{Records: 5, Seed: 1}})
	bad := []string{"HR_\x01ctl.txt", "HR_\xff\xfe.txt", "HR_del\x7f.txt"}
	for _, n := range bad {
		e.write(n, []byte("HDR|x\nTRL0\n"))
	}
	res := e.run()
	if o := e.outcome(res, "HR_ok.txt"); o.Outcome != string(audit.StateVerified) {
		t.Fatalf("%+v", o)
	}
	if got := len(e.events("file.refused")); got != len(bad) {
		t.Fatalf("want %d refusals on the ledger, got %d", len(bad), got)
	}
	for _, ev := range e.events("file.refused") {
		if !strings.HasPrefix(ev.Details["name"], `"`) {
			t.Errorf("a refused name must be quoted, not raw: %q", ev.Details["name"])
		}
	}
	if ds, _ := e.led.Datasets(); len(ds) != 1 {
		t.Fatalf("only the good file may be stored: %d", len(ds))
	}
	e.checkInvariants()
}

func TestSequence(t *testing.T) {
	e := newEnv(t, startInProcess(t, nil), func(j *configs.Job, _ *configs.Source) {
		j.Kind, j.Sequence, j.Pattern = "change", `_(\d{4})\.txt$`, "HR_CHG_*.txt"
	})
	chg := func(seq int) synth.FileSpec {
		return synth.FileSpec{Name: fmt.Sprintf("HR_CHG_20261130_%04d.txt", seq), Options: synth.Options{Records: 5, Seed: uint64(seq), Seq: seq}}
	}
	// Arrive out of order: 2 before 1 in the listing makes no difference.
	e.put(chg(2), chg(1))
	res := e.run()
	for _, n := range []string{"HR_CHG_20261130_0001.txt", "HR_CHG_20261130_0002.txt"} {
		if o := e.outcome(res, n); o.Outcome != string(audit.StateVerified) {
			t.Fatalf("%s: %+v", n, o)
		}
	}
	// A gap: 4 arrives without 3; nothing after the gap is accepted silently.
	e.put(chg(4), chg(5))
	res = e.run()
	for _, n := range []string{"HR_CHG_20261130_0004.txt", "HR_CHG_20261130_0005.txt"} {
		if o := e.outcome(res, n); o.Outcome != string(audit.StateHeld) || !strings.Contains(o.Reason, "gap") {
			t.Fatalf("%s must be held for the gap: %+v", n, o)
		}
	}
	if !res.Failed() {
		t.Fatal("a held file must make the run fail")
	}
	// A repeat: another file claims sequence 2.
	e.put(synth.FileSpec{Name: "HR_CHG_20261201_0002.txt", Options: synth.Options{Records: 5, Seed: 9, Seq: 2}})
	if o := e.outcome(e.run(), "HR_CHG_20261201_0002.txt"); o.Outcome != string(audit.StateHeld) || !strings.Contains(o.Reason, "repeat") {
		t.Fatalf("a repeated sequence must be held: %+v", o)
	}
	e.checkInvariants()
}

func TestRecordLayouts(t *testing.T) {
	fixed := func(lines ...string) []byte { return []byte(strings.Join(lines, "\r\n") + "\r\n") }
	// Big5 bytes, including user-defined code points (0xFA40..), counted as bytes.
	big5 := string([]byte{0xA4, 0xA4, 0xB5, 0xD8, 0xFA, 0x40, 0x8E, 0xA1}) // 8 bytes
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	cases := []struct {
		name    string
		file    string
		content []byte
		edit    func(*configs.Job)
		want    string
		reason  string
		records int64
	}{
		{"fixed width ok, Big5 counted by bytes", "HR_1.txt", fixed("HDR|F", big5+"AB", "0123456789", "TRL2"),
			func(j *configs.Job) { j.Records.RecordLength = 10; j.Records.Encoding = "big5" }, string(audit.StateVerified), "", 2},
		{"fixed width bad line named", "HR_1.txt", fixed("HDR|F", "0123456789", "012345678", "0123456789", "TRL3"),
			func(j *configs.Job) { j.Records.RecordLength = 10 }, string(audit.StateQuarantined), "line 3: length 9 bytes, want 10", 3},
		{"no final newline", "HR_1.txt", []byte("HDR|x\na\nb\nTRL2"), nil, string(audit.StateVerified), "", 2},
		{"header count", "HR_1.txt", []byte("HDR|x|3\na\nb\nc\n"),
			func(j *configs.Job) { j.Records.Header, j.Records.Trailer = `^HDR\|x\|(\d+)$`, "" }, string(audit.StateVerified), "", 3},
		{"gzip counted after decompression, stored as received", "HR_1.txt.gz", gz([]byte("HDR|x\na\nb\nTRL2\n")),
			func(j *configs.Job) { j.Pattern = "HR_*.txt.gz" }, string(audit.StateVerified), "", 2},
		{"trailer missing", "HR_1.txt", []byte("HDR|x\na\nb\n"), nil, string(audit.StateQuarantined), "trailer", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, startInProcess(t, nil), func(j *configs.Job, _ *configs.Source) {
				if tc.edit != nil {
					tc.edit(j)
				}
			})
			e.write(tc.file, tc.content)
			e.write(tc.file+".sha256", []byte(hexOf(tc.content)+"  "+tc.file+"\n"))
			o := e.outcome(e.run(), tc.file)
			if o.Outcome != tc.want || !strings.Contains(o.Reason, tc.reason) || (tc.want == string(audit.StateVerified) && o.Records != tc.records) {
				t.Fatalf("want %s (%q, %d records), got %+v", tc.want, tc.reason, tc.records, o)
			}
			d, _, _ := e.led.Dataset(o.DatasetID)
			if got := e.decrypt(d.ObjectID); !bytes.Equal(got, tc.content) {
				t.Fatal("the object must hold the bytes as received")
			}
			e.checkInvariants()
		})
	}
}

// TestLogsCarryNoRecordContents runs every kind of outcome with debug logging
// and checks that no record line, national ID or key material reaches the log.
func TestLogsCarryNoRecordContents(t *testing.T) {
	var buf bytes.Buffer
	e := newEnv(t, startInProcess(t, nil), nil)
	e.runner.Log = zerolog.New(&buf).Level(zerolog.DebugLevel)
	e.put(synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 50, Seed: 1}},
		synth.FileSpec{Name: "HR_2.txt", Options: synth.Options{Records: 50, Seed: 2, TrailerDelta: 3}})
	e.write("HR_3.txt", render(t, synth.Options{Records: 50, Seed: 3}))
	e.run()
	e.run()
	if buf.Len() == 0 {
		t.Fatal("nothing was logged")
	}
	for _, n := range []string{"HR_1.txt", "HR_2.txt", "HR_3.txt"} {
		content, err := os.ReadFile(filepath.Join(e.p.dir, n))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range bytes.Split(content, []byte("\n"))[1:] {
			id, _, _ := bytes.Cut(line, []byte("|"))
			if len(id) == 10 && bytes.Contains(buf.Bytes(), id) {
				t.Fatalf("%s line %d: a national ID appears in the log", n, i+2)
			}
		}
	}
	key, _ := os.ReadFile(e.p.src.KeyFile)
	for _, l := range bytes.Split(key, []byte("\n")) {
		if len(l) > 20 && bytes.Contains(buf.Bytes(), l) {
			t.Fatal("key material appears in the log")
		}
	}
}
