// Package metrics exposes custodian's state to Prometheus with the official
// Go client, on a registry of its own (nothing global).
//
// Design: most series are read from the state itself when Prometheus
// scrapes (a custom collector asks the ledger for its datasets and size, the
// vault for its objects, the daemon for its last verification), so they
// cannot drift from the truth and survive a restart. Only what happens in
// between scrapes is counted as it happens: runs by job and outcome, and
// the histograms of file sizes and run durations (ObserveRun). The last
// success of each job is seeded from the ledger at start and updated by each
// run. Labels are job names, outcomes and dataset states: never a registry
// file name or a dataset ID.
//
// Handler returns the /metrics handler, so the same registry can be served
// on the loopback listener of metrics.listen (Serve) and, later, on the
// HTTPS listener for an account with the role metrics.
package metrics

import (
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"custodian/audit"
	"custodian/transfer"
)

// Verification is the daemon's last ledger verification as metrics see it.
type Verification struct {
	Time time.Time
	OK   bool
}

// Sources are what the collector reads at scrape time. Nil functions are
// skipped.
type Sources struct {
	Ledger     *audit.Ledger
	LedgerPath string
	// Vault lists the vault's object files and their sizes.
	VaultObjects func() (objects int, bytes int64, err error)
	// LastVerification is the last check of the ledger (ok false: it
	// failed and the daemon refuses work); zero Time if none yet.
	LastVerification func() Verification
	// Jobs lists the configured jobs, so that a job that never succeeded
	// shows a last success of 0 (and the 26-hour alert fires).
	Jobs func() []string
	// PendingNotifications is the notification queue's length.
	PendingNotifications func() int
	// Sealed reports whether the vault is sealed (nil: always sealed).
	Sealed func() bool
}

// Metrics is custodian's registry and the series updated as things happen.
type Metrics struct {
	reg  *prometheus.Registry
	src  Sources
	runs *prometheus.CounterVec
	// fileBytes and runSeconds are histograms per job.
	fileBytes  *prometheus.HistogramVec
	runSeconds *prometheus.HistogramVec
	// pendingApprovals and accountsLocked are set by the accounts work
	// (SetPendingApprovals, SetAccountsLocked); 0 until then.
	pendingApprovals prometheus.Gauge
	accountsLocked   prometheus.Gauge

	mu          sync.Mutex
	lastSuccess map[string]time.Time
}

// Namespace prefixes every custodian series.
const Namespace = "custodian"

// New builds the registry: custodian's series, plus the Go runtime and
// process collectors.
func New(src Sources) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		src: src,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "job_runs_total",
			Help: "Job runs since the daemon started, by job and outcome (success or failed: a file failed, was quarantined, held or refused, or the run failed)."},
			[]string{"job_name", "outcome"}),
		fileBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "file_bytes",
			Help:    "Size of each file a run stored, by job.",
			Buckets: prometheus.ExponentialBuckets(4096, 4, 12)}, // 4 KiB to 16 GiB
			[]string{"job_name"}),
		runSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "job_run_duration_seconds",
			Help:    "Duration of each job run, by job.",
			Buckets: prometheus.ExponentialBuckets(0.5, 2, 14)}, // 0.5 s to about 2.3 h
			[]string{"job_name"}),
		pendingApprovals: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "approvals_pending",
			Help: "Approval requests waiting for a decision."}),
		accountsLocked: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "accounts_locked",
			Help: "Accounts locked after failed logins, waiting for an approved unlock."}),
		lastSuccess: map[string]time.Time{},
	}
	m.reg.MustRegister(m.runs, m.fileBytes, m.runSeconds, m.pendingApprovals, m.accountsLocked, &state{m: m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry (for tests and other handlers).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats. Mount
// it wherever /metrics is served; it does no authentication of its own.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: nil, Registry: m.reg})
}

// ObserveRun counts a finished run and observes its files and duration.
func (m *Metrics) ObserveRun(res *transfer.RunResult) {
	if res == nil {
		return
	}
	outcome := "success"
	if res.Failed() {
		outcome = "failed"
	}
	m.runs.WithLabelValues(res.Job, outcome).Inc()
	if !res.Finished.IsZero() && !res.Started.IsZero() {
		m.runSeconds.WithLabelValues(res.Job).Observe(res.Finished.Sub(res.Started).Seconds())
	}
	for _, f := range res.Files {
		if f.DatasetID != "" && !f.Repeat {
			m.fileBytes.WithLabelValues(res.Job).Observe(float64(f.Size))
		}
	}
	if outcome == "success" {
		m.SetLastSuccess(res.Job, res.Finished)
	}
}

// SetLastSuccess records a successful run of job that finished at t (the
// daemon seeds it from the ledger at start); an earlier time is ignored.
func (m *Metrics) SetLastSuccess(job string, t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t.After(m.lastSuccess[job]) {
		m.lastSuccess[job] = t
	}
}

// SetPendingApprovals is the hook the accounts work calls when the number
// of approval requests waiting changes.
func (m *Metrics) SetPendingApprovals(n int) { m.pendingApprovals.Set(float64(n)) }

// SetAccountsLocked is the hook the accounts work calls when the number of
// locked accounts changes.
func (m *Metrics) SetAccountsLocked(n int) { m.accountsLocked.Set(float64(n)) }

// state reads custodian's state at scrape time.
type state struct{ m *Metrics }

var (
	descDatasets = prometheus.NewDesc(Namespace+"_datasets", "Datasets on the ledger by custody state.", []string{"state"}, nil)
	descHeld     = prometheus.NewDesc(Namespace+"_sequence_gaps_held", "Change files held because of a sequence gap, repeat or order problem, waiting for the officer.", nil, nil)
	descEvents   = prometheus.NewDesc(Namespace+"_ledger_events", "Events on the custody ledger.", nil, nil)
	descLedgerB  = prometheus.NewDesc(Namespace+"_ledger_size_bytes", "Size of the ledger file.", nil, nil)
	descVerTime  = prometheus.NewDesc(Namespace+"_ledger_last_verification_timestamp_seconds", "When the daemon last checked its ledger (Unix time).", nil, nil)
	descVerOK    = prometheus.NewDesc(Namespace+"_ledger_verification_ok", "1 if the last ledger check passed, 0 if it failed (the daemon then refuses all work).", nil, nil)
	descObjects  = prometheus.NewDesc(Namespace+"_vault_objects", "Encrypted objects in the vault.", nil, nil)
	descVaultB   = prometheus.NewDesc(Namespace+"_vault_bytes", "Bytes of the vault's encrypted objects.", nil, nil)
	descSealed   = prometheus.NewDesc(Namespace+"_vault_sealed", "1 while the vault is sealed: the daemon holds only the vault's public key and cannot decrypt; 0 while an officer unsealed it (custodian vault unseal).", nil, nil)
	descLastOK   = prometheus.NewDesc(Namespace+"_job_last_success_timestamp_seconds", "When each configured job last finished a run without a failure (Unix time; 0 if never).", []string{"job_name"}, nil)
	descNotify   = prometheus.NewDesc(Namespace+"_notifications_pending", "Notification deliveries waiting in the queue (being retried).", nil, nil)
)

func (s *state) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDatasets, descHeld, descEvents, descLedgerB, descVerTime, descVerOK,
		descObjects, descVaultB, descSealed, descLastOK, descNotify} {
		ch <- d
	}
}

func (s *state) Collect(ch chan<- prometheus.Metric) {
	src := s.m.src
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if src.Ledger != nil {
		if ds, err := src.Ledger.Datasets(); err == nil {
			counts := map[audit.State]int{}
			for _, d := range ds {
				counts[d.State]++
			}
			for _, st := range audit.States {
				gauge(descDatasets, float64(counts[st]), string(st))
			}
			gauge(descHeld, float64(counts[audit.StateHeld]))
		} else {
			ch <- prometheus.NewInvalidMetric(descDatasets, err)
		}
		if n, err := src.Ledger.Size(); err == nil {
			gauge(descEvents, float64(n))
		} else {
			ch <- prometheus.NewInvalidMetric(descEvents, err)
		}
	}
	if src.LedgerPath != "" {
		if fi, err := os.Stat(src.LedgerPath); err == nil {
			gauge(descLedgerB, float64(fi.Size()))
		}
	}
	if src.LastVerification != nil {
		if v := src.LastVerification(); !v.Time.IsZero() {
			gauge(descVerTime, float64(v.Time.UnixNano())/1e9)
			ok := 0.0
			if v.OK {
				ok = 1
			}
			gauge(descVerOK, ok)
		}
	}
	if src.VaultObjects != nil {
		if n, b, err := src.VaultObjects(); err == nil {
			gauge(descObjects, float64(n))
			gauge(descVaultB, float64(b))
		} else {
			ch <- prometheus.NewInvalidMetric(descObjects, err)
		}
	}
	sealed := 1.0
	if src.Sealed != nil && !src.Sealed() {
		sealed = 0
	}
	gauge(descSealed, sealed)
	s.m.mu.Lock()
	last := make(map[string]time.Time, len(s.m.lastSuccess))
	for k, v := range s.m.lastSuccess {
		last[k] = v
	}
	s.m.mu.Unlock()
	if src.Jobs != nil {
		for _, j := range src.Jobs() {
			if _, ok := last[j]; !ok {
				last[j] = time.Time{}
			}
		}
	}
	for j, t := range last {
		v := 0.0
		if !t.IsZero() {
			v = float64(t.UnixNano()) / 1e9
		}
		gauge(descLastOK, v, j)
	}
	if src.PendingNotifications != nil {
		gauge(descNotify, float64(src.PendingNotifications()))
	}
}
