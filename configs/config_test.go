package configs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimal = `
data_dir: data
sources:
  moi:
    address: 127.0.0.1:2222
    user: hbxfer
    key_file: id_ed25519
    known_hosts: known_hosts
jobs:
  - name: registry-extract
    source: moi
    schedule: "CRON_TZ=Asia/Taipei 0 2 * * *"
    remote_dir: /outbox
    pattern: "HR_FULL_*.txt"
    kind: extract
    checksum: sidecar
    records:
      trailer: '^TRL(\d+)$'
    purpose: vaccination
`

func TestExampleParses(t *testing.T) {
	cfg, err := Parse(Example, "/etc/custodian")
	if err != nil {
		t.Fatalf("the shipped example must be valid: %v", err)
	}
	if len(cfg.Jobs) != 2 || cfg.Jobs[1].Kind != "change" {
		t.Fatalf("unexpected jobs: %+v", cfg.Jobs)
	}
}

func TestDefaultsAndPaths(t *testing.T) {
	cfg, err := Parse([]byte(minimal), "/etc/custodian")
	if err != nil {
		t.Fatal(err)
	}
	j := cfg.Jobs[0]
	if j.AfterPull != (AfterPull{Action: AfterPullKeep}) || j.Retry.Attempts != DefaultRetryAttempts || j.Records.Encoding != "utf-8" {
		t.Errorf("defaults not applied: %+v", j)
	}
	s := cfg.Sources["moi"]
	if s.Sessions != DefaultSessions || s.IOTimeout.Duration != DefaultIOTimeout {
		t.Errorf("source defaults not applied: %+v", s)
	}
	if cfg.DataDir != "/etc/custodian/data" || s.KeyFile != "/etc/custodian/id_ed25519" {
		t.Errorf("relative paths not resolved: %q %q", cfg.DataDir, s.KeyFile)
	}
}

func TestSettleAcceptsSecondsAndDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"30": 30 * time.Second, "1.5": 1500 * time.Millisecond, "2m": 2 * time.Minute} {
		cfg, err := Parse([]byte(minimal+"    settle: "+in+"\n"), "/")
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got := cfg.Jobs[0].Settle.Duration; got != want {
			t.Errorf("settle %s = %v, want %v", in, got, want)
		}
	}
}

func TestValidationReportsEveryProblemWithPath(t *testing.T) {
	tests := []struct {
		name    string
		replace [2]string
		want    []string
	}{
		{"bad schedule", [2]string{`"CRON_TZ=Asia/Taipei 0 2 * * *"`, `"every night"`}, []string{"jobs[0].schedule:", "CRON_TZ="}},
		{"time zone without fields", [2]string{`"CRON_TZ=Asia/Taipei 0 2 * * *"`, `"CRON_TZ=Asia/Taipei"`}, []string{"jobs[0].schedule:", "five schedule fields"}},
		{"unknown source", [2]string{"source: moi", "source: nope"}, []string{`jobs[0].source: "nope" is not defined`, "moi"}},
		{"bad kind", [2]string{"kind: extract", "kind: full"}, []string{`jobs[0].kind: "full"`, "extract, change"}},
		{"bad purpose", [2]string{"purpose: vaccination", "purpose: marketing"}, []string{`jobs[0].purpose: "marketing"`, "vaccination"}},
		{"no known_hosts", [2]string{"    known_hosts: known_hosts\n", ""}, []string{"sources.moi.known_hosts: required"}},
		{"checksum none", [2]string{"checksum: sidecar", "checksum: none"}, []string{"jobs[0].checksum: none is refused unless allow_unverified"}},
		{"bad regex", [2]string{`'^TRL(\d+)$'`, `'^TRL(\d+$'`}, []string{"jobs[0].records.trailer:"}},
		{"data_dir too long for a socket", [2]string{"data_dir: data", "data_dir: /" + strings.Repeat("d", 100)}, []string{"data_dir:", "Unix sockets allow 107"}},
		{"relative remote dir", [2]string{"remote_dir: /outbox", "remote_dir: outbox"}, []string{"jobs[0].remote_dir:"}},
		{"bad after_pull", [2]string{"purpose: vaccination", "purpose: vaccination\n    after_pull: move:archive"}, []string{"jobs[0].after_pull:", "move:/absolute/dir"}},
		{"change without sequence", [2]string{"kind: extract", "kind: change"}, []string{"jobs[0].sequence: required"}},
		{"emergency without approval", [2]string{"purpose: vaccination", "purpose: emergency"}, []string{"jobs[0].emergency_approval: required"}},
		{"two problems at once", [2]string{"kind: extract\n    checksum: sidecar", "kind: nope\n    checksum: nope"}, []string{"jobs[0].kind:", "jobs[0].checksum:", "2 problem(s)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(minimal, tc.replace[0], tc.replace[1], 1)
			if in == minimal {
				t.Fatalf("replacement %q not found", tc.replace[0])
			}
			_, err := Parse([]byte(in), "/")
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("want ErrInvalid, got %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestUnknownKeyRejected(t *testing.T) {
	_, err := Parse([]byte(minimal+"    insecure_ignore_host_key: true\n"), "/")
	if !errors.Is(err, ErrParse) || !strings.Contains(err.Error(), "insecure_ignore_host_key") {
		t.Fatalf("unknown key must be refused by name, got %v", err)
	}
}

func TestLoadResolvesAgainstFileDir(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(f, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != filepath.Join(dir, "data") || cfg.SocketPath() != filepath.Join(dir, "data", "custodian.sock") {
		t.Fatalf("paths: %q %q", cfg.DataDir, cfg.SocketPath())
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add(Example)
	f.Add([]byte("jobs: [{}]"))
	f.Add([]byte("sources: {a: ~}\njobs: [~]"))
	f.Add([]byte("settle: [1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "/")
		if err == nil && cfg.Validate() != nil {
			t.Fatal("Parse accepted a configuration that Validate rejects")
		}
	})
}

// TestEveryProblemAtOnce: values that cannot be decoded (durations, whole
// numbers) do not stop the list; each problem names its path and the
// accepted form, together with the validation problems.
func TestEveryProblemAtOnce(t *testing.T) {
	in := strings.Replace(minimal, "purpose: vaccination", "purpose: marketing\n    settle: soon\n    retry: {initial: later, attempts: 2.5}", 1)
	in = strings.Replace(in, "known_hosts: known_hosts", "known_hosts: known_hosts\n    sessions: 0.5\n    io_timeout: forever", 1)
	_, err := Parse([]byte(in), "/")
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("want ErrInvalid listing every problem, got %v", err)
	}
	for _, w := range []string{
		`jobs[0].purpose: "marketing"`,
		`jobs[0].settle: "soon" is not a duration; use`,
		`jobs[0].retry.initial: "later" is not a duration; use`,
		`jobs[0].retry.attempts: 2.5 is not a whole number; use`,
		`sources.moi.sessions: 0.5 is not a whole number; use`,
		`sources.moi.io_timeout: "forever" is not a duration; use`,
		"6 problem(s)",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func TestNumbersMustBeWholeAndInRange(t *testing.T) {
	tests := []struct {
		name, replace, with string
		want                []string
		not                 string
	}{
		{"fractional sessions", "known_hosts: known_hosts", "known_hosts: known_hosts\n    sessions: 0.5", []string{"sources.moi.sessions: 0.5 is not a whole number", "1 to 64"}, ""},
		{"text for a number", "known_hosts: known_hosts", "known_hosts: known_hosts\n    packet_size: big", []string{`sources.moi.packet_size: "big" is not a whole number`}, ""},
		{"huge settle", "purpose: vaccination", "purpose: vaccination\n    settle: 1e300", []string{`jobs[0].settle: "1e300" is out of range`}, "negative"},
		{"settle not a number", "purpose: vaccination", "purpose: vaccination\n    settle: .nan", []string{`jobs[0].settle: ".nan" is not a duration`}, ""},
		{"huge duration", "purpose: vaccination", "purpose: vaccination\n    settle: 999999999h", []string{`jobs[0].settle: "999999999h"`}, "negative"},
		{"fractional record length", `trailer: '^TRL(\d+)$'`, `trailer: '^TRL(\d+)$'` + "\n      record_length: 12.5", []string{"jobs[0].records.record_length: 12.5 is not a whole number"}, ""},
		{"bool as text", "purpose: vaccination", "purpose: vaccination\n    allow_weak: maybe", []string{`jobs[0].allow_weak: "maybe" is not accepted; use true or false`}, ""},
		{"mapping for a string", "kind: extract", "kind: {a: b}", []string{"jobs[0].kind: a mapping is not accepted"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(minimal, tc.replace, tc.with, 1)
			if in == minimal {
				t.Fatalf("replacement %q not found", tc.replace)
			}
			_, err := Parse([]byte(in), "/")
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if tc.not != "" && strings.Contains(err.Error(), tc.not) {
				t.Errorf("error must not say %q:\n%v", tc.not, err)
			}
		})
	}
}

func TestDataDirMustBeADirectory(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	in := strings.Replace(minimal, "data_dir: data", "data_dir: "+file, 1)
	_, err := Parse([]byte(in), dir)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "data_dir: "+file+" exists and is not a directory") {
		t.Fatalf("a regular file as data_dir must be refused by name, got %v", err)
	}
	in = strings.Replace(minimal, "data_dir: data", "data_dir: "+filepath.Join(file, "sub"), 1)
	if _, err := Parse([]byte(in), dir); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "data_dir:") {
		t.Fatalf("a data_dir under a regular file must be refused, got %v", err)
	}
	// Not there yet is fine: init creates it. An existing directory is fine.
	for _, d := range []string{filepath.Join(dir, "new"), dir} {
		in := strings.Replace(minimal, "data_dir: data", "data_dir: "+d, 1)
		if _, err := Parse([]byte(in), dir); err != nil {
			t.Fatalf("data_dir %s: %v", d, err)
		}
	}
}

func TestUnknownKeyReportedWithPathAndOtherProblems(t *testing.T) {
	in := strings.Replace(minimal, "purpose: vaccination", "purpose: marketing\n    insecure_ignore_host_key: true", 1)
	_, err := Parse([]byte(in), "/")
	if !errors.Is(err, ErrParse) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("want ErrParse and ErrInvalid, got %v", err)
	}
	for _, w := range []string{"jobs[0].insecure_ignore_host_key: unknown key; accepted keys:", `jobs[0].purpose: "marketing"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func TestMergesAndDuplicateKeys(t *testing.T) {
	merged := strings.Replace(minimal, "jobs:\n  - name: registry-extract", "x-defaults: &defaults {kind: change, sequence: '_(\\d+)'}\njobs:\n  - <<: *defaults\n    name: registry-extract", 1)
	// x-defaults is not an option: refused by name; the merge itself is fine.
	_, err := Parse([]byte(merged), "/")
	if err == nil || !strings.Contains(err.Error(), "x-defaults: unknown key") || strings.Count(err.Error(), "\n") != 1 {
		t.Fatalf("want exactly the unknown top-level key, got %v", err)
	}
	merged = strings.Replace(minimal, "jobs:\n  - name: registry-extract", "jobs:\n  - &first\n    name: registry-extract", 1) +
		"  - <<: *first\n    name: second\n    kind: change\n    sequence: '_(\\d+)'\n"
	cfg, err := Parse([]byte(merged), "/")
	if err != nil {
		t.Fatalf("merge keys must be accepted: %v", err)
	}
	if j := cfg.Jobs[1]; j.Kind != "change" || j.Purpose != "vaccination" || j.Source != "moi" {
		t.Fatalf("merged job: %+v", j)
	}
	dup := strings.Replace(minimal, "purpose: vaccination", "purpose: marketing\n    kind: change", 1)
	_, err = Parse([]byte(dup), "/")
	for _, w := range []string{"jobs[0].kind: defined twice", `jobs[0].purpose: "marketing"`, "2 problem(s)"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
}

func TestMaxInflated(t *testing.T) {
	cfg, err := Parse([]byte(minimal), "/")
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Jobs[0].Records; r.MaxInflated != 64<<30 || r.MaxInflateRatio != 200 {
		t.Fatalf("defaults: %+v", r)
	}
	for in, want := range map[string]ByteSize{"1048576": 1 << 20, "64GiB": 64 << 30, `"500 MB"`: 500e6, "2tib": 2 << 40, "1kb": 1000} {
		cfg, err := Parse([]byte(strings.Replace(minimal, `trailer: '^TRL(\d+)$'`, `trailer: '^TRL(\d+)$'`+"\n      max_inflated: "+in+"\n      max_inflate_ratio: 1000", 1)), "/")
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if r := cfg.Jobs[0].Records; r.MaxInflated != want || r.MaxInflateRatio != 1000 {
			t.Errorf("max_inflated %s = %d, want %d", in, r.MaxInflated, want)
		}
	}
	for in, want := range map[string]string{
		"max_inflated: 1.5GiB":         `jobs[0].records.max_inflated: "1.5GiB" is not a size; use a whole number of bytes, or one with a unit`,
		"max_inflated: 64GB2":          `jobs[0].records.max_inflated: "64GB2" is not a size`,
		"max_inflated: 64PiB":          `jobs[0].records.max_inflated: "64PiB": unknown unit "PiB"`,
		"max_inflated: 99999999999TiB": `jobs[0].records.max_inflated: "99999999999TiB" is out of range`,
		"max_inflated: 0":              `jobs[0].records.max_inflated: "0" is not accepted; use a positive size`,
		"max_inflate_ratio: 1":         "jobs[0].records.max_inflate_ratio: 1 is out of range; use a whole number from 2 to 1032",
		"max_inflate_ratio: 5000":      "jobs[0].records.max_inflate_ratio: 5000 is out of range",
		"max_inflate_ratio: 10.5":      "jobs[0].records.max_inflate_ratio: 10.5 is not a whole number; use a whole number from 2 to 1032",
		"max_inflated: {size: 64GiB}":  "jobs[0].records.max_inflated: a mapping is not accepted; use a size such as 64GiB",
	} {
		_, err := Parse([]byte(strings.Replace(minimal, `trailer: '^TRL(\d+)$'`, `trailer: '^TRL(\d+)$'`+"\n      "+in, 1)), "/")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: want %q, got %v", in, want, err)
		}
	}
	if s := ByteSize(64 << 30).String(); s != "64GiB" {
		t.Errorf("String() = %q", s)
	}
}

// TestAfterPullParsedOnce: after_pull is parsed into its typed value when
// the configuration is loaded, in the YAML forms keep, delete and move:DIR.
func TestAfterPullParsedOnce(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want AfterPull
	}{
		{"keep", AfterPull{Action: AfterPullKeep}},
		{"delete", AfterPull{Action: AfterPullDelete}},
		{"move:/archive/in", AfterPull{Action: AfterPullMove, Dir: "/archive/in"}},
	} {
		cfg, err := Parse([]byte(strings.Replace(minimal, "purpose: vaccination", "purpose: vaccination\n    after_pull: "+tc.yaml, 1)), "/")
		if err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		if got := cfg.Jobs[0].AfterPull; got != tc.want || got.String() != tc.yaml {
			t.Errorf("%s: got %+v (%s)", tc.yaml, got, got)
		}
	}
	for _, bad := range []string{"move:archive", "move:/a/../b", "/archive", "remove", "move:"} {
		if _, err := ParseAfterPull(bad); err == nil || !strings.Contains(err.Error(), "use keep, delete or move:/absolute/dir") {
			t.Errorf("%q: %v", bad, err)
		}
		_, err := Parse([]byte(strings.Replace(minimal, "purpose: vaccination", "purpose: vaccination\n    after_pull: '"+bad+"'", 1)), "/")
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("jobs[0].after_pull: %q is not accepted", bad)) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	_, err := Parse([]byte(strings.Replace(minimal, "purpose: vaccination", "purpose: vaccination\n    after_pull: [delete]", 1)), "/")
	if err == nil || !strings.Contains(err.Error(), "jobs[0].after_pull: a list is not accepted; use a single value") {
		t.Errorf("a list: %v", err)
	}
}
