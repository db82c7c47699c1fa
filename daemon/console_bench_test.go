package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"custodian/accounts"
	"custodian/audit"
	"custodian/configs"
	"custodian/service"
	"custodian/web"
)

// The console at scale: BenchmarkConsole builds, once per test binary, a
// real installation (daemon.Init, a real bbolt ledger, vault and accounts)
// whose ledger holds benchDatasets datasets and benchEvents events, then
// asks each main console page for it over HTTP (httptest, the daemon's
// HTTPS handler, a logged-in session cookie). It asserts no times: the
// numbers are reported as ns/op (docs/benchmarks.md). Run it with
//
//	go test ./daemon -run '^$' -bench Console -benchtime 20x

const (
	benchDatasets = 100_000
	benchEvents   = 1_000_000
)

type consoleBench struct {
	d       *Daemon
	h       http.Handler
	cookies map[string]*http.Cookie // per test person
	dataset string                  // a dataset ID with a timeline
	err     error
	dir     string
}

var (
	benchOnce sync.Once
	benchInst consoleBench
)

// benchConsole returns the shared installation, building it on first use.
func benchConsole(b *testing.B) *consoleBench {
	b.Helper()
	benchOnce.Do(func() {
		start := time.Now()
		benchInst.err = benchInst.build()
		fmt.Fprintf(os.Stderr, "console bench: built %d datasets and %d events in %s\n", benchDatasets, benchEvents, time.Since(start).Round(time.Second))
	})
	if benchInst.err != nil {
		b.Fatal(benchInst.err)
	}
	return &benchInst
}

// TestMain removes the benchmark's installation (about 600 MB) when the
// test binary ends; tests never build it.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchInst.d != nil {
		benchInst.d.Close()
	}
	if benchInst.dir != "" {
		os.RemoveAll(benchInst.dir)
	}
	os.Exit(code)
}

// build makes the installation in a new temporary directory, kept for the
// test binary's life.
func (cb *consoleBench) build() error {
	dir, err := os.MkdirTemp("", "cdb")
	if err != nil {
		return err
	}
	cb.dir = dir
	etc := filepath.Join(dir, "etc")
	if err := os.MkdirAll(etc, 0o700); err != nil {
		return err
	}
	for _, f := range []string{"id", "kh"} {
		if err := os.WriteFile(filepath.Join(etc, f), []byte("unused\n"), 0o600); err != nil {
			return err
		}
	}
	y := `data_dir: data
unit: test-unit
accounts: {require_totp: []}
sources:
  moi: {address: "127.0.0.1:1", user: hbxfer, key_file: id, known_hosts: kh}
jobs:
  - name: extract
    source: moi
    officer: officer.a
    remote_dir: /outbox
    pattern: "HR_*.txt"
    purpose: vaccination
  - name: changes
    source: moi
    officer: officer.a
    remote_dir: /changes
    pattern: "CH_*.txt"
    purpose: vaccination
`
	cfg, err := configs.Parse([]byte(y), etc)
	if err != nil {
		return err
	}
	cfg.DataDir = filepath.Join(dir, "data")
	issued, err := Init(cfg, InitOptions{Passphrase: []byte("a long test passphrase"), ScryptWorkFactor: 10, Actor: "installer",
		Accounts: testPeople, HashParams: accounts.TestParams})
	if err != nil {
		return err
	}
	d, err := Open(cfg, zerolog.Nop())
	if err != nil {
		return err
	}
	d.Service.HashParams = accounts.TestParams
	cb.d = d
	// The jobs' settings as a start records them, then, after the million
	// events, a reload that changes a schedule: the history page reads
	// both versions from either end of the log.
	d.recordJobSettings(cfg, "start")
	if err := fillLedger(d.Ledger); err != nil {
		return err
	}
	changed := *cfg
	j := *cfg.Jobs[0]
	j.Schedule = "CRON_TZ=Asia/Taipei 0 2 * * *"
	changed.Jobs = []*configs.Job{&j, cfg.Jobs[1]}
	d.recordJobSettings(&changed, "reload")
	cb.dataset = benchDatasetID(benchDatasets / 2)
	cb.h = d.httpsHandler(context.Background(), d.handler(context.Background()))
	cb.cookies = map[string]*http.Cookie{}
	for _, x := range issued {
		res, err := d.Service.Login(context.Background(), service.Origin{Via: "https", Remote: "127.0.0.1:1", UID: -1},
			service.LoginRequest{Username: x.Username, Password: x.Password, NewPassword: "Bench-Password-" + strings.ToUpper(x.Username[:2]) + "9"})
		if err != nil {
			return fmt.Errorf("login %s: %w", x.Username, err)
		}
		cb.cookies[x.Username] = &http.Cookie{Name: web.CookieName, Value: res.Token}
	}
	return nil
}

func benchDatasetID(i int) string { return fmt.Sprintf("ds-bench-%06d", i) }

// fillLedger appends benchDatasets received datasets and, between them,
// other events up to benchEvents in all: reads of datasets (on their
// timelines), runs, logins and refusals, spread over two years up to now.
// It appends in transactions of 10,000 events.
func fillLedger(l *audit.Ledger) error {
	have, err := l.Size()
	if err != nil {
		return err
	}
	total := int64(benchEvents) - have
	perDataset := total / benchDatasets // events per dataset, the first its receipt
	span := 2 * 365 * 24 * time.Hour
	step := span / time.Duration(total)
	t0 := time.Now().Add(-span)
	states := []audit.State{audit.StateVerified, audit.StateVerified, audit.StateVerified, audit.StateUnverified, audit.StateVerified,
		audit.StateVerified, audit.StateQuarantined, audit.StateVerified, audit.StateHeld, audit.StateVerified}
	const batch = 10_000
	for at := int64(0); at < total; at += batch {
		err := l.Update(func(tx *audit.Tx) error {
			for i := at; i < min(at+batch, total); i++ {
				ev := benchEvent(i, perDataset, states)
				ev.Time = t0.Add(time.Duration(i) * step)
				if _, err := tx.Append(ev); err != nil {
					return fmt.Errorf("event %d: %w", i, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func benchEvent(i, perDataset int64, states []audit.State) audit.Event {
	n, k := int(i/perDataset), i%perDataset
	job := "extract"
	if n%4 == 3 {
		job = "changes"
	}
	if n >= benchDatasets {
		return audit.Event{Actor: "officer.a", Type: audit.EvLoginSucceeded, Details: map[string]string{"username": "officer.a", "via": "socket"}}
	}
	id := benchDatasetID(n)
	switch k {
	case 0:
		sum := sha256.Sum256([]byte(id))
		st := states[n%len(states)]
		reason := ""
		if st == audit.StateQuarantined || st == audit.StateHeld {
			reason = "declared 1000 records, counted 999"
		}
		d := &audit.Dataset{ID: id, Job: job, Source: "moi", Kind: "extract", RemotePath: "/outbox/HR_" + strconv.Itoa(n) + ".txt",
			RemoteSize: 123456, RemoteMtime: time.Unix(1_700_000_000+int64(n), 0), Size: 123456, SHA256: hex.EncodeToString(sum[:]),
			Records: 1000, DeclaredRecords: 1000, State: st, Reason: reason, Purpose: "vaccination", ObjectID: "obj-" + hex.EncodeToString(sum[:8]),
			Custodian: "officer.a", Integrity: map[string]string{"algorithm": "sha256"}}
		return audit.Event{Actor: "system:scheduler", Type: audit.EvDatasetReceived, Job: job, Dataset: d,
			Details: map[string]string{"state": string(st), "remote_path": d.RemotePath, "sha256": d.SHA256, "bytes": "123456", "records": "1000"}}
	case 1:
		return audit.Event{Actor: "system:scheduler", Type: audit.EvJobStarted, Job: job, Details: map[string]string{"trigger": "schedule"}}
	case 2:
		return audit.Event{Actor: "system:scheduler", Type: audit.EvJobFinished, Job: job, Details: map[string]string{"files": "1", "skipped": "0"}}
	case 3, 4:
		return audit.Event{Actor: "officer.a", Type: audit.EvDatasetRead, DatasetID: id,
			Details: map[string]string{"purpose": "vaccination", "case": "C-" + strconv.Itoa(n), "bytes": "123456", "sha256": strings.Repeat("ab", 32), "outcome": "complete"}}
	case 5:
		return audit.Event{Actor: "auditor.a", Type: audit.EvAccessRefused, DatasetID: id,
			Details: map[string]string{"action": "dataset.release", "resource": "dataset " + id, "code": "forbidden", "rule": "role: auditor"}}
	default:
		return audit.Event{Actor: "officer.a", Type: audit.EvLoginSucceeded, Details: map[string]string{"username": "officer.a", "via": "socket", "session": "0123456789abcdef"}}
	}
}

// BenchmarkConsole measures each main page of the console, as each role
// sees it, on the large ledger.
func BenchmarkConsole(b *testing.B) {
	cb := benchConsole(b)
	pages := []struct{ name, user, path string }{
		{"home/officer", "officer.a", "/"},
		{"home/supervisor", "sue", "/"},
		{"home/auditor", "auditor.a", "/"},
		{"home/admin", "adam", "/"},
		{"datasets/all", "officer.a", "/datasets"},
		{"datasets/page100", "officer.a", "/datasets?offset=5000"},
		{"datasets/state", "officer.a", "/datasets?state=quarantined"},
		{"datasets/job+dates", "officer.a", "/datasets?job=changes&since=" + time.Now().AddDate(0, -1, 0).Format(time.DateOnly) + "&until=" + time.Now().Format(time.DateOnly)},
		{"dataset", "officer.a", "/datasets/" + cb.dataset},
		{"jobs", "officer.a", "/jobs"},
		{"jobhistory", "auditor.a", "/jobs/extract/history"},
		{"requests", "sue", "/requests"},
		{"ledger", "auditor.a", "/ledger"},
		{"log/all", "auditor.a", "/ledger/log"},
		{"log/actor", "auditor.a", "/ledger/log?actor=auditor.a"},
		{"log/dataset", "auditor.a", "/ledger/log?dataset=" + cb.dataset},
		{"log/type", "auditor.a", "/ledger/log?type=dataset.received"},
		{"log/nomatch", "auditor.a", "/ledger/log?actor=nobody"}, // the most one page scans (service.MaxScan)
		{"log/lastweek", "auditor.a", "/ledger/log?since=" + time.Now().AddDate(0, 0, -7).Format(time.DateOnly)},
		// The log lists newest first by default; the same searches oldest
		// first (order=asc), and a page deep in the log each way.
		{"log/all-asc", "auditor.a", "/ledger/log?order=asc"},
		{"log/nomatch-asc", "auditor.a", "/ledger/log?actor=nobody&order=asc"},
		{"log/from-middle", "auditor.a", "/ledger/log?from=500000"},
		{"log/from-middle-asc", "auditor.a", "/ledger/log?from=500000&order=asc"},
		{"accounts", "adam", "/accounts"},
		{"myaccount", "auditor.a", "/account"},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			get := func() {
				req := httptest.NewRequest(http.MethodGet, "https://127.0.0.1"+p.path, nil)
				req.AddCookie(cb.cookies[p.user])
				rec := httptest.NewRecorder()
				cb.h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%s as %s: %d %s", p.path, p.user, rec.Code, firstLine(rec.Body))
				}
			}
			get() // warm: the page answers at all
			b.ResetTimer()
			for b.Loop() {
				get()
			}
		})
	}
}

func firstLine(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 300))
	return string(b)
}
