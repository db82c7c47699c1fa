package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"custodian/audit"
	"custodian/backup"
	"custodian/configs"
	"custodian/internal/sdnotify"
	"custodian/metrics"
	"custodian/notify"
	"custodian/service"
	"custodian/transfer"
)

// ops is what the daemon does for the people who run it: metrics,
// notifications, each job's last run, and systemd's notification protocol.
type ops struct {
	d        *Daemon
	started  time.Time
	notifier *notify.Notifier
	metrics  *metrics.Metrics

	mu      sync.Mutex
	lastRun map[string]service.RunSummary
	lastOK  map[string]time.Time
	// recent are each job's last runs, newest first (service.RecentRuns).
	recent map[string][]service.RunSummary
}

// checkpointEvery is how often the daily checkpoint mail is due; the
// notifier's queue keeps when it was last queued, across restarts.
const checkpointEvery = 24 * time.Hour

// maxRunScan bounds how far back the last runs are looked for at start.
const maxRunScan = 200000

// openOps opens the notification queue and builds the metrics. It runs in
// Open before the ledger is checked, so that a failed check at start is
// notified too.
func (d *Daemon) openOps() error {
	o := &ops{d: d, started: time.Now(), lastRun: map[string]service.RunSummary{}, lastOK: map[string]time.Time{},
		recent: map[string][]service.RunSummary{}}
	n, err := notify.Open(d.Config.NotifyPath(), d.Config.Notify, notify.Options{Record: d.health.record, Log: d.Log})
	if err != nil {
		return err
	}
	o.notifier = n
	o.metrics = metrics.New(metrics.Sources{
		Ledger:       d.Ledger,
		LedgerPath:   d.Config.LedgerPath(),
		VaultObjects: func() (int, int64, error) { return vaultUsage(d.Config.VaultDir()) },
		Sealed:       func() bool { return d.Service.VaultSealed() },
		LastVerification: func() metrics.Verification {
			st := d.health.status()
			switch {
			case st.State == LedgerDamaged && st.Since != nil:
				return metrics.Verification{Time: *st.Since, OK: false}
			case st.LastVerified != nil:
				return metrics.Verification{Time: st.LastVerified.Time, OK: st.LastVerified.OK}
			}
			return metrics.Verification{}
		},
		Jobs:                 func() []string { return d.Runner.CurrentConfig().JobNames() },
		PendingNotifications: n.Pending,
	})
	d.ops = o
	d.Service.Observe = o.observed
	d.health.onDamaged = o.verifyFailed
	d.Runner.OnRun = o.finished
	d.Service.Daemon = o.status
	return nil
}

// Metrics returns the daemon's metrics: mount Metrics().Handler() as
// /metrics wherever it is served.
func (d *Daemon) Metrics() *metrics.Metrics { return d.ops.metrics }

// Notifier returns the daemon's notifier (other features queue their
// kinds with Notify).
func (d *Daemon) Notifier() *notify.Notifier { return d.ops.notifier }

// finished is every run's end: metrics, last run, notifications.
func (o *ops) finished(res *transfer.RunResult) {
	o.metrics.ObserveRun(res)
	outcome := "success"
	if res.Failed() {
		outcome = "failed"
	}
	o.mu.Lock()
	sum := service.RunSummary{Finished: res.Finished, Outcome: outcome, By: res.Actor, Files: len(res.Files), Skipped: res.Skipped}
	o.lastRun[res.Job] = sum
	o.recent[res.Job] = append([]service.RunSummary{sum}, o.recent[res.Job][:min(len(o.recent[res.Job]), service.RecentRuns-1)]...)
	if outcome == "success" {
		o.lastOK[res.Job] = res.Finished
	}
	o.mu.Unlock()
	for _, n := range notify.FromRun(res, o.notifier.IncludeFileNames()) {
		o.notify(n.Kind, n.Message)
	}
}

func (o *ops) notify(kind notify.Kind, m notify.Message) {
	if _, err := o.notifier.Notify(kind, m); err != nil {
		o.d.Log.Error().Err(err).Str("kind", string(kind)).Msg("cannot queue a notification")
	}
}

// observed turns committed account and request events into notifications
// (never with a password or record contents: usernames, request IDs,
// kinds and reasons only) and refreshes the approval and lock counts.
func (o *ops) observed(ev audit.Event) {
	d := ev.Details
	switch ev.Type {
	case audit.EvAccountLocked:
		o.notify(notify.AccountLocked, notify.Message{
			Subject: "custodian: account " + d["username"] + " locked",
			Text: fmt.Sprintf("The account %s was locked after %s failed logins in a row. Only an approved unlock request reopens it:\n  custodian account request unlock --user %s --reason R\n",
				d["username"], d["failures"], d["username"]),
			Fields: map[string]string{"username": d["username"], "failures": d["failures"]}})
	case audit.EvRequestFiled:
		o.notify(notify.ApprovalWaiting, notify.Message{
			Subject: fmt.Sprintf("custodian: request %s (%s) waits for approval", d["request"], d["kind"]),
			Text: fmt.Sprintf("%s filed request %s: %s for %s.\nReason: %s\nDecide with: custodian approve %s --reason R  (or reject)\n",
				ev.Actor, d["request"], d["kind"], d["subject"], d["reason"], d["request"]),
			Fields: map[string]string{"request": d["request"], "kind": d["kind"], "subject": d["subject"], "requester": ev.Actor}})
	case audit.EvRequestApproved, audit.EvRequestRejected:
		what := "rejected"
		if ev.Type == audit.EvRequestApproved {
			what = "approved"
			if d["state"] == "pending" {
				what = "approved (another approval is still needed)"
			}
		}
		o.notify(notify.ApprovalDecided, notify.Message{
			Subject: fmt.Sprintf("custodian: request %s %s", d["request"], strings.Fields(what)[0]),
			Text:    fmt.Sprintf("Request %s (%s for %s) was %s by %s.\nReason: %s\n", d["request"], d["kind"], d["subject"], what, ev.Actor, d["reason"]),
			Fields:  map[string]string{"request": d["request"], "kind": d["kind"], "subject": d["subject"], "decision": strings.Fields(what)[0], "by": ev.Actor}})
	}
	o.refreshCounts()
}

// refreshCounts sets the open-approval and locked-account gauges.
func (o *ops) refreshCounts() {
	c, err := o.d.Service.Counts()
	if err != nil {
		o.d.Log.Warn().Err(err).Msg("cannot count requests and locked accounts for the metrics")
		return
	}
	o.metrics.SetPendingApprovals(c.PendingApprovals)
	o.metrics.SetAccountsLocked(c.AccountsLocked)
}

// verifyFailed tells people the ledger failed a check.
func (o *ops) verifyFailed(check, summary, incident string) {
	o.notify(notify.VerifyFailed, notify.VerifyFailedMessage(check, summary, incident, o.notifier.IncludeFileNames()))
}

// seedRuns finds each configured job's last run, last success and last
// service.RecentRuns runs on the ledger, newest first, looking back at
// most maxRunScan events.
func (o *ops) seedRuns() error {
	jobs := o.d.Runner.CurrentConfig().JobNames()
	size, err := o.d.Ledger.Size()
	if err != nil {
		return err
	}
	want := len(jobs)
	found, foundOK := 0, 0
	const page = 1000
	full := 0 // jobs with RecentRuns runs found
	for end := size; end > 0 && end > size-maxRunScan && (found < want || foundOK < want || full < want); end -= page {
		from := max(end-page, 0)
		evs, err := o.d.Ledger.Events(from, int(end-from))
		if err != nil {
			return err
		}
		o.mu.Lock()
		for i := len(evs) - 1; i >= 0; i-- {
			ev := evs[i]
			if ev.Type != audit.EvJobFinished && ev.Type != audit.EvJobFailed {
				continue
			}
			outcome := "success"
			if ev.Type == audit.EvJobFailed {
				outcome = "failed"
			}
			files, _ := strconv.Atoi(ev.Details["files"])
			skipped, _ := strconv.Atoi(ev.Details["skipped"])
			sum := service.RunSummary{Finished: ev.Time, Outcome: outcome, By: ev.Actor, Files: files, Skipped: skipped}
			if _, ok := o.lastRun[ev.Job]; !ok {
				o.lastRun[ev.Job] = sum
				found++
			}
			if n := len(o.recent[ev.Job]); n < service.RecentRuns {
				o.recent[ev.Job] = append(o.recent[ev.Job], sum)
				if n+1 == service.RecentRuns && slices.Contains(jobs, ev.Job) {
					full++
				}
			}
			if _, ok := o.lastOK[ev.Job]; !ok && ev.Type == audit.EvJobFinished {
				o.lastOK[ev.Job] = ev.Time
				o.metrics.SetLastSuccess(ev.Job, ev.Time)
				foundOK++
			}
		}
		o.mu.Unlock()
	}
	return nil
}

// status is the daemon's part of `custodian status`.
func (o *ops) status() service.DaemonStatus {
	now := time.Now()
	st := service.DaemonStatus{StartedAt: o.started.UTC(), UptimeSeconds: int64(now.Sub(o.started).Seconds())}
	if c, err := o.d.Service.Counts(); err == nil {
		st.PendingApprovals, st.AccountsLocked = c.PendingApprovals, c.AccountsLocked
	}
	if b, err := os.ReadFile(filepath.Join(o.d.Config.DataDir, backup.LastFile)); err == nil {
		var last backup.Last
		if json.Unmarshal(b, &last) == nil && last.ID != "" {
			st.LastBackup = &service.BackupSummary{ID: last.ID, Time: last.Time.UTC(), Dir: last.Dir}
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, j := range o.d.Runner.CurrentConfig().Jobs {
		js := service.JobStatus{Name: j.Name, Schedule: j.Schedule}
		if j.Schedule != "" {
			if s, err := configs.ParseSchedule(j.Schedule); err == nil {
				next := s.Next(now).UTC()
				js.NextRun = &next
			}
		}
		if r, ok := o.lastRun[j.Name]; ok {
			r.Finished = r.Finished.UTC()
			js.LastRun = &r
		}
		if t, ok := o.lastOK[j.Name]; ok {
			t = t.UTC()
			js.LastSuccess = &t
		}
		for _, r := range o.recent[j.Name] {
			r.Finished = r.Finished.UTC()
			js.Recent = append(js.Recent, r)
		}
		if p, err := o.d.Service.JobPause(j.Name); err == nil && p != nil {
			js.Paused = p
		}
		js.Officer, js.OfficerProblem = j.Officer, o.d.Service.CustodianProblem(j.Officer)
		st.Jobs = append(st.Jobs, js)
	}
	return st
}

// checkpointLoop queues the daily signed checkpoint whenever a day has
// passed since the last one was queued (checked at start and hourly).
func (o *ops) checkpointLoop(ctx context.Context, every time.Duration) {
	for {
		if last := o.notifier.LastQueued(notify.CheckpointDaily); time.Since(last) >= checkpointEvery && !o.d.health.damaged() {
			o.sendCheckpoint()
		}
		o.sendNotices()
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// sendNotices queues, at most once a day each, the reminder that datasets
// are past their retention (retention.due) and that designated staff are
// under the yearly training hours (training.low). Dataset IDs and
// usernames only; registry file names only with include_file_names.
func (o *ops) sendNotices() {
	dueR := time.Since(o.notifier.LastQueued(notify.RetentionDue)) >= checkpointEvery
	dueT := time.Since(o.notifier.LastQueued(notify.TrainingLow)) >= checkpointEvery
	if !dueR && !dueT {
		return
	}
	n, err := o.d.Service.DueNotices()
	if err != nil {
		o.d.Log.Warn().Err(err).Msg("cannot gather the daily notices")
		return
	}
	if dueR && len(n.Expiring) > 0 {
		var b strings.Builder
		ids := make([]string, 0, len(n.Expiring))
		for _, e := range n.Expiring {
			name := ""
			if o.notifier.IncludeFileNames() {
				name = " " + e.Dataset.RemotePath
			}
			fmt.Fprintf(&b, "  %s%s  job %s, retention %s, due %s (%d days ago)%s\n", e.Dataset.ID, name, e.Dataset.Job, e.Retention,
				e.Due.UTC().Format(time.DateOnly), e.DaysOverdue, map[bool]string{true: ", request " + e.Request, false: ""}[e.Request != ""])
			ids = append(ids, e.Dataset.ID)
		}
		o.notify(notify.RetentionDue, notify.Message{
			Subject: fmt.Sprintf("custodian: %d dataset(s) past their retention", len(n.Expiring)),
			Text:    "These datasets are past their job's retention; the custodian files a destruction request (custodian dataset expiring --draft):\n" + b.String(),
			Fields:  map[string]string{"count": strconv.Itoa(len(n.Expiring)), "datasets": strings.Join(ids, " ")}})
	}
	if dueT && len(n.TrainingShort) > 0 {
		var b strings.Builder
		users := make([]string, 0, len(n.TrainingShort))
		for _, s := range n.TrainingShort {
			fmt.Fprintf(&b, "  %s (%s): %s hours this year, %s missing\n", s.Username, s.FullName, s.Hours, s.Missing)
			users = append(users, s.Username)
		}
		o.notify(notify.TrainingLow, notify.Message{
			Subject: fmt.Sprintf("custodian: %d person(s) under the yearly training hours", len(n.TrainingShort)),
			Text:    "Designated staff under 3 hours of security training this year (clause 四(四)); record attended training with custodian training record:\n" + b.String(),
			Fields:  map[string]string{"count": strconv.Itoa(len(n.TrainingShort)), "users": strings.Join(users, " ")}})
	}
}

func (o *ops) sendCheckpoint() {
	cp, err := o.d.Ledger.Checkpoint()
	if err != nil || len(cp) == 0 {
		return
	}
	vk, err := o.d.Ledger.VerifierKey()
	if err != nil {
		return
	}
	o.notify(notify.CheckpointDaily, notify.CheckpointMessage(o.d.Config.Unit, string(cp), vk))
}

// watchdog sends WATCHDOG=1 every interval until ctx ends, as long as the
// daemon can still take its own lock (a deadlocked daemon stops pinging
// and systemd restarts it).
func (o *ops) watchdog(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Taking the daemon's locks is the liveness check.
		o.d.mu.Lock()
		_ = o.d.cron
		o.d.mu.Unlock()
		_ = o.d.health.status()
		if _, err := sdnotify.Send(sdnotify.Watchdog); err != nil {
			o.d.Log.Warn().Err(err).Msg("cannot notify the service manager (watchdog)")
		}
	}
}

// vaultUsage counts the vault's object files and their bytes.
func vaultUsage(dir string) (int, int64, error) {
	var n int
	var b int64
	err := filepath.WalkDir(filepath.Join(dir, "objects"), func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".age") {
			fi, err := e.Info()
			if err != nil {
				return err
			}
			n++
			b += fi.Size()
		}
		return nil
	})
	return n, b, err
}
