package transfer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"custodian/audit"
	"custodian/configs"
	"custodian/transfer/integrity"
)

// Runner runs jobs. One Runner serves the whole daemon; runs of one job never
// overlap, runs of different jobs may.
type Runner struct {
	Config *configs.Config
	Ledger *audit.Ledger
	Store  Store
	Log    zerolog.Logger
	// Now and Sleep are replaced in tests.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Dial is replaced by fault-injecting tests; nil means Dial.
	Dial func(ctx context.Context, name string, src *configs.Source) (*Remote, error)
	// Record, if set, records stand-alone events (those that change no
	// dataset) instead of appending them directly. The daemon's ledger-health
	// component sets it: it keeps an event the ledger cannot take and records
	// it once it can, so that no event is lost.
	Record func(audit.Event)
	// OnRun, if set, is called with every finished run's result (after
	// its job.finished or job.failed event): the daemon's metrics and
	// notifications.
	OnRun func(*RunResult)

	mu      sync.Mutex
	running map[string]bool
	current atomic.Pointer[configs.Config] // set by SetConfig (reload)
}

// CurrentConfig is the configuration in force: the last one given to
// SetConfig, else Config.
func (r *Runner) CurrentConfig() *configs.Config {
	if c := r.current.Load(); c != nil {
		return c
	}
	return r.Config
}

// SetConfig replaces the configuration for runs that start from now on;
// runs in progress finish with the jobs and sources they started with.
func (r *Runner) SetConfig(c *configs.Config) { r.current.Store(c) }

// RunRequest asks for one run of a job.
type RunRequest struct {
	Job     string
	Actor   string // the person answerable for this run
	Trigger string // "schedule" or "manual"
	// Details go on the job.started event with the trigger: where the
	// person called from (host_user) and whether they are a contractor.
	Details map[string]string
	// Progress, if set, is called as bytes arrive (from several goroutines).
	Progress func(Progress)
}

// Progress reports bytes received for one file.
type Progress struct {
	File  string `json:"file"`
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
}

// FileOutcome is what became of one remote file in a run.
type FileOutcome struct {
	Name      string `json:"name"`
	Remote    string `json:"remote_path"`
	Outcome   string `json:"outcome"` // verified, quarantined, unverified, held, failed, refused, waiting
	DatasetID string `json:"dataset_id,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256,omitempty"`
	Records   int64  `json:"records"`
	// Supersedes is the dataset of an earlier delivery of the same remote
	// name that held other bytes; Resent says how the new file differs.
	Supersedes string `json:"supersedes,omitempty"`
	Resent     string `json:"resent,omitempty"`
	// Repeat marks a refusal already on the ledger (at event LedgerEvent):
	// shown in every run, recorded once, and not failing the run again.
	Repeat      bool  `json:"repeat,omitempty"`
	LedgerEvent int64 `json:"ledger_event,omitempty"`
}

// Failed reports whether the outcome must make the run fail.
func (o FileOutcome) Failed() bool {
	if o.Repeat {
		return false
	}
	switch o.Outcome {
	case "quarantined", "failed", "refused", "held":
		return true
	}
	return false
}

// RunResult is a whole run.
type RunResult struct {
	Job      string        `json:"job"`
	Actor    string        `json:"actor"`
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Files    []FileOutcome `json:"files"`
	Skipped  int           `json:"skipped"` // already on the ledger
	Error    string        `json:"error,omitempty"`
}

// Failed reports whether any file failed or the run itself failed.
func (r *RunResult) Failed() bool {
	if r.Error != "" {
		return true
	}
	for _, f := range r.Files {
		if f.Failed() {
			return true
		}
	}
	return false
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func (r *Runner) sleep(ctx context.Context, d time.Duration) error {
	if r.Sleep != nil {
		return r.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run runs one job now. It returns ErrJobRunning if the job is already running.
// The returned result lists every file's outcome; err is set only when the run
// could not happen at all (unknown job, overlapping run).
func (r *Runner) Run(ctx context.Context, req RunRequest) (*RunResult, error) {
	cfg := r.CurrentConfig()
	job, ok := cfg.Job(req.Job)
	if !ok {
		return nil, fmt.Errorf("%w: %q; configured jobs: %s", ErrUnknownJob, req.Job, strings.Join(cfg.JobNames(), ", "))
	}
	if req.Actor == "" {
		req.Actor = "system:scheduler"
	}
	r.mu.Lock()
	if r.running == nil {
		r.running = map[string]bool{}
	}
	if r.running[job.Name] {
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrJobRunning, job.Name)
	}
	r.running[job.Name] = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.running, job.Name)
		r.mu.Unlock()
	}()

	res := &RunResult{Job: job.Name, Actor: req.Actor, Started: r.now()}
	log := r.Log.With().Str("job", job.Name).Str("actor", req.Actor).Logger()
	log.Info().Str("trigger", req.Trigger).Msg("job run started")
	started := map[string]string{"trigger": req.Trigger}
	for k, v := range req.Details {
		started[k] = v
	}
	r.event(audit.Event{Actor: req.Actor, Type: audit.EvJobStarted, Job: job.Name, Details: started})

	run, err := newJobRun(r, cfg, job, req, res, log)
	if err == nil {
		err = run.execute(ctx)
	}
	res.Finished = r.now()
	details := map[string]string{
		"files":   strconv.Itoa(len(res.Files)),
		"skipped": strconv.Itoa(res.Skipped),
	}
	typ := audit.EvJobFinished
	if err != nil {
		res.Error = err.Error()
		details["error"] = err.Error()
		typ = audit.EvJobFailed
		log.Error().Err(err).Msg("job run failed")
	} else if res.Failed() {
		typ = audit.EvJobFailed
		details["error"] = "one or more files failed verification or transfer"
	}
	r.event(audit.Event{Actor: req.Actor, Type: typ, Job: job.Name, Details: details})
	log.Info().Int("files", len(res.Files)).Int("skipped", res.Skipped).Bool("failed", res.Failed()).Msg("job run finished")
	if r.OnRun != nil {
		r.OnRun(res)
	}
	return res, nil
}

// event appends a stand-alone event (no state change); a failure to record is
// logged loudly, since the ledger is the evidence.
func (r *Runner) event(ev audit.Event) {
	if r.Record != nil {
		r.Record(ev)
		return
	}
	if err := r.Ledger.Batch(func(tx *audit.Tx) error {
		_, err := tx.Append(ev)
		return err
	}); err != nil {
		r.Log.Error().Err(err).Str("event", string(ev.Type)).Msg("cannot record event on the ledger")
	}
}

type jobRun struct {
	r   *Runner
	job *configs.Job
	src *configs.Source
	req RunRequest
	res *RunResult
	log zerolog.Logger

	// The job's rules, compiled once per run: the counting rule (count
	// for plain files, countGz for gzip payloads) and the sequence pattern
	// (nil unless the job sets sequence).
	count, countGz integrity.CountSpec
	seqRE          *regexp.Regexp

	// From the listing, for the workers that read each file's sidecar.
	names     map[string]os.FileInfo
	manifests map[string]integrity.ManifestEntry

	mu    sync.Mutex // guards res.Files
	noted bool       // a session limit is on the ledger for this run
}

// newJobRun prepares a run of job from cfg, compiling the job's patterns.
func newJobRun(r *Runner, cfg *configs.Config, job *configs.Job, req RunRequest, res *RunResult, log zerolog.Logger) (*jobRun, error) {
	j := &jobRun{r: r, job: job, src: cfg.Sources[job.Source], req: req, res: res, log: log}
	rec := job.Records
	var err error
	if j.count, err = integrity.NewCountSpec(rec.Header, rec.Trailer, rec.RecordLength, false, int64(rec.MaxInflated), rec.MaxInflateRatio); err != nil {
		return nil, err
	}
	j.countGz = j.count
	j.countGz.Gzip = true
	if job.Sequence != "" {
		if j.seqRE, err = regexp.Compile(job.Sequence); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// countSpec is the counting rule for the remote file name: gzip payloads
// (records.gzip yes, or auto and a .gz name) are counted decompressed.
func (j *jobRun) countSpec(name string) integrity.CountSpec {
	if g := j.job.Records.Gzip; g == "yes" || (g == "auto" && strings.HasSuffix(name, ".gz")) {
		return j.countGz
	}
	return j.count
}

// dial connects to the job's source.
func (j *jobRun) dial(ctx context.Context) (*Remote, error) {
	dial := j.r.Dial
	if dial == nil {
		dial = Dial
	}
	return dial(ctx, j.job.Source, j.src)
}

func (j *jobRun) add(o FileOutcome) {
	j.mu.Lock()
	j.res.Files = append(j.res.Files, o)
	j.mu.Unlock()
}

func (j *jobRun) fail(c *candidate, err error) {
	j.r.event(audit.Event{Actor: j.req.Actor, Type: audit.EvFileFailed, Job: j.job.Name,
		Details: map[string]string{"remote_path": c.remote, "error": err.Error()}})
	j.add(FileOutcome{Name: c.name, Remote: c.remote, Outcome: "failed", Size: c.size, Reason: err.Error()})
}

func (j *jobRun) execute(ctx context.Context) error {
	var pending []*candidate
	first := true
	delay := j.job.Retry.Initial.Duration
	for attempt := 1; ; attempt++ {
		remote, err := j.dial(ctx)
		if err != nil {
			j.r.event(audit.Event{Actor: j.req.Actor, Type: audit.EvSourceConnectFailed, Job: j.job.Name,
				Details: map[string]string{"source": j.job.Source, "error": err.Error(), "attempt": strconv.Itoa(attempt)}})
			var hk *HostKeyError
			if errors.As(err, &hk) || errors.Is(err, ErrAuth) || errors.Is(err, ErrNoSessions) || attempt >= j.job.Retry.Attempts {
				return err // a host key problem, or a server that allows no session, is never retried
			}
		} else {
			j.noteRemote(remote)
			if first {
				pending, err = j.plan(ctx, remote)
				first = false
				if err != nil {
					remote.Close()
					if !retryable(err) || attempt >= j.job.Retry.Attempts {
						return err
					}
					first = true
				}
			}
			if err == nil && attempt > 1 && attempt >= j.job.Retry.Attempts && len(pending) > 1 {
				// The last retry takes the files one at a time: files in
				// flight on one connection share its fate, so a file that
				// stalls or drops the connection must not make the others
				// fail for good.
				j.ingestIsolated(ctx, remote, pending)
				return nil
			}
			if err == nil {
				pending = j.ingestAll(ctx, remote, pending, attempt >= j.job.Retry.Attempts)
				remote.Close()
				if len(pending) == 0 {
					return nil
				}
			}
			if attempt >= j.job.Retry.Attempts {
				return nil // the last attempt recorded each remaining file as failed
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		j.log.Warn().Int("attempt", attempt).Dur("backoff", delay).Msg("retrying after transfer failure")
		if err := j.r.sleep(ctx, delay); err != nil {
			return err
		}
		delay = min(delay*2, j.job.Retry.Max.Duration)
	}
}

// retryable separates transfer faults (retry) from verdicts (do not).
func retryable(err error) bool {
	return !errors.Is(err, ErrChecksumFile) && !errors.Is(err, context.Canceled)
}

// ingestAll pulls the candidates; change files one at a time in sequence
// order, extracts over all sessions in parallel. It returns the candidates
// that hit a transfer fault and should be retried; on the last attempt they
// are recorded as failed instead.
// ingestIsolated takes each candidate alone, as the last attempt: after a
// file fails, the next one gets a fresh connection. A connection that
// cannot be made fails the remaining files with its error.
func (j *jobRun) ingestIsolated(ctx context.Context, remote *Remote, cands []*candidate) {
	for i, c := range cands {
		if j.job.Kind == "change" && i > 0 && j.failedLast(cands[i-1]) {
			for _, rest := range cands[i:] {
				j.waitBehind(rest, cands[i-1])
			}
			break
		}
		if remote == nil {
			var err error
			if remote, err = j.dial(ctx); err != nil {
				for _, rest := range cands[i:] {
					j.fail(rest, err)
				}
				return
			}
		}
		j.ingestAll(ctx, remote, []*candidate{c}, true) // the last attempt: a failure is recorded
		if j.failedLast(c) {
			remote.Close()
			remote = nil
		}
	}
	if remote != nil {
		remote.Close()
	}
}

// waitBehind reports a change file not pulled because one before it in
// the sequence failed: it is pulled after that one, by a later run.
func (j *jobRun) waitBehind(c, failed *candidate) {
	j.add(FileOutcome{Name: c.name, Remote: c.remote, Outcome: "waiting", Size: c.size,
		Reason: fmt.Sprintf("not pulled: %s, before it in the sequence, failed; nothing after a gap is accepted", failed.name)})
}

// failedLast reports whether the last outcome recorded for c is a failure.
func (j *jobRun) failedLast(c *candidate) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i := len(j.res.Files) - 1; i >= 0; i-- {
		if j.res.Files[i].Remote == c.remote {
			return j.res.Files[i].Outcome == "failed"
		}
	}
	return false
}

func (j *jobRun) ingestAll(ctx context.Context, remote *Remote, cands []*candidate, last bool) []*candidate {
	workers := remote.inflight()
	if j.job.Kind == "change" {
		if workers > 1 && len(cands) > 1 {
			return j.ingestChanges(ctx, remote, cands, last, workers)
		}
		workers = 1
	}
	var (
		mu    sync.Mutex
		retry []*candidate
		wg    sync.WaitGroup
		next  = make(chan *candidate)
		gap   *candidate // change files: the first that failed (one worker only)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				if gap != nil {
					// Change files go one at a time, in sequence order:
					// after one failed, the later ones wait for it, so
					// nothing after a gap is accepted.
					if last || ctx.Err() != nil {
						j.waitBehind(c, gap)
					} else {
						mu.Lock()
						retry = append(retry, c)
						mu.Unlock()
					}
					continue
				}
				err := j.ingest(ctx, remote, c)
				if err == nil && j.job.Kind == "change" && j.failedLast(c) {
					gap = c // its checksum file is missing or bad: a gap for this run
				}
				if err != nil {
					j.log.Warn().Str("remote", c.remote).Err(err).Msg("transfer failed")
					if j.job.Kind == "change" {
						gap = c
					}
					if last || ctx.Err() != nil {
						j.fail(c, err)
					} else {
						j.r.event(audit.Event{Actor: j.req.Actor, Type: audit.EvFileTransferFailed, Job: j.job.Name,
							Details: map[string]string{"remote_path": c.remote, "error": err.Error(), "will_retry": "true"}})
						mu.Lock()
						retry = append(retry, c)
						mu.Unlock()
					}
				}
			}
		}()
	}
	for _, c := range cands {
		if ctx.Err() != nil {
			j.fail(c, ctx.Err())
			continue
		}
		next <- c
	}
	close(next)
	wg.Wait()
	sort.Slice(retry, func(a, b int) bool { return retry[a].name < retry[b].name })
	return retry
}

func outcomeOf(name string, d audit.Dataset) FileOutcome {
	return FileOutcome{Name: name, Remote: d.RemotePath, Outcome: string(d.State), DatasetID: d.ID, Reason: d.Reason, Size: d.Size, SHA256: d.SHA256, Records: d.Records,
		Supersedes: d.Supersedes}
}
