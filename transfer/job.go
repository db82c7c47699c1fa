package transfer

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"github.com/rs/zerolog"

	"custodian/audit"
	"custodian/configs"
	"custodian/internal/failpoint"
	"custodian/transfer/integrity"
	"custodian/vault"
)

// Store is the part of the vault a job needs: ingest takes only the public key.
type Store interface {
	Create(ctx context.Context) (ObjectWriter, error)
	Remove(id string) error
	// Flush makes every object closed before the call durable; concurrent
	// callers share one flush (group commit).
	Flush() error
}

// ObjectWriter receives one object's plaintext and encrypts it.
type ObjectWriter interface {
	io.Writer
	// Close finishes the object; it is durable only after Store.Flush.
	Close() (vault.ObjectInfo, error)
	Abort() error
	ID() string
}

// VaultStore adapts *vault.Vault to Store.
type VaultStore struct{ V *vault.Vault }

// Create implements Store.
func (s VaultStore) Create(ctx context.Context) (ObjectWriter, error) { return s.V.Create(ctx) }

// Remove implements Store.
func (s VaultStore) Remove(id string) error { return s.V.Remove(id) }

// Flush implements Store.
func (s VaultStore) Flush() error { return s.V.Flush() }

var _ Store = VaultStore{}

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
}

// Failed reports whether the outcome must make the run fail.
func (o FileOutcome) Failed() bool {
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
	r.event(audit.Event{Actor: req.Actor, Type: "job.started", Job: job.Name, Details: map[string]string{"trigger": req.Trigger}})

	run := &jobRun{r: r, job: job, src: cfg.Sources[job.Source], req: req, res: res, log: log}
	err := run.execute(ctx)
	res.Finished = r.now()
	details := map[string]string{
		"files":   strconv.Itoa(len(res.Files)),
		"skipped": strconv.Itoa(res.Skipped),
	}
	typ := "job.finished"
	if err != nil {
		res.Error = err.Error()
		details["error"] = err.Error()
		typ = "job.failed"
		log.Error().Err(err).Msg("job run failed")
	} else if res.Failed() {
		typ = "job.failed"
		details["error"] = "one or more files failed verification or transfer"
	}
	r.event(audit.Event{Actor: req.Actor, Type: typ, Job: job.Name, Details: details})
	log.Info().Int("files", len(res.Files)).Int("skipped", res.Skipped).Bool("failed", res.Failed()).Msg("job run finished")
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
		r.Log.Error().Err(err).Str("event", ev.Type).Msg("cannot record event on the ledger")
	}
}

type jobRun struct {
	r   *Runner
	job *configs.Job
	src *configs.Source
	req RunRequest
	res *RunResult
	log zerolog.Logger

	// From the listing, for the workers that read each file's sidecar.
	names     map[string]os.FileInfo
	manifests map[string]integrity.ManifestEntry

	mu sync.Mutex // guards res.Files
}

func (j *jobRun) add(o FileOutcome) {
	j.mu.Lock()
	j.res.Files = append(j.res.Files, o)
	j.mu.Unlock()
}

// candidate is a remote file selected for ingest.
type candidate struct {
	name   string
	remote string
	size   int64
	mtime  time.Time
	// expected, from the provider
	algo     integrity.Algo
	digest   string
	declSize int64 // -1 unknown
	declRecs int64 // -1 unknown
	// sequence handling
	seq       int64
	held      string // reason to hold, if any
	unchecked bool   // checksum none
}

func (j *jobRun) execute(ctx context.Context) error {
	dial := j.r.Dial
	if dial == nil {
		dial = Dial
	}
	var pending []*candidate
	first := true
	delay := j.job.Retry.Initial.Duration
	for attempt := 1; ; attempt++ {
		remote, err := dial(ctx, j.job.Source, j.src)
		if err != nil {
			j.r.event(audit.Event{Actor: j.req.Actor, Type: "source.connect_failed", Job: j.job.Name,
				Details: map[string]string{"source": j.job.Source, "error": err.Error(), "attempt": strconv.Itoa(attempt)}})
			var hk *HostKeyError
			if errors.As(err, &hk) || errors.Is(err, ErrAuth) || attempt >= j.job.Retry.Attempts {
				return err // a host key problem is never retried
			}
		} else {
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

// plan lists the remote directory and decides which files to pull.
func (j *jobRun) plan(ctx context.Context, remote *Remote) ([]*candidate, error) {
	sess, err := remote.session(ctx)
	if err != nil {
		return nil, err
	}
	defer remote.release(sess)
	entries, err := sess.ReadDir(j.job.RemoteDir)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", j.job.RemoteDir, err)
	}
	names := map[string]os.FileInfo{}
	for _, e := range entries {
		names[e.Name()] = e
	}
	manifests, err := j.readManifests(sess, names)
	if err != nil {
		j.r.event(audit.Event{Actor: j.req.Actor, Type: "batch.failed", Job: j.job.Name, Details: map[string]string{"error": err.Error()}})
		return nil, err
	}
	var cands []*candidate
	now := j.r.now()
	for _, e := range entries {
		name := e.Name()
		if !e.Mode().IsRegular() || j.isCompanion(name) {
			continue
		}
		if ok, _ := path.Match(j.job.Pattern, name); !ok {
			continue
		}
		if err := integrity.ValidRemoteName(name); err != nil {
			j.refuse(name, err.Error())
			continue
		}
		remotePath := path.Join(j.job.RemoteDir, name)
		if id, done, err := j.r.Ledger.RemoteDataset(j.job.Source, remotePath); err != nil {
			return nil, err
		} else if done {
			j.log.Debug().Str("remote", remotePath).Str("dataset", id).Msg("already ingested")
			j.res.Skipped++
			// Complete an after_pull a crash interrupted (not for quarantined
			// files, which stay on the server); with keep, skip the lookup.
			if j.job.AfterPull != "keep" {
				if d, ok, err := j.r.Ledger.Dataset(id); err == nil && ok && d.State != audit.StateQuarantined {
					j.afterPull(sess, id, remotePath)
				}
			}
			continue
		}
		c := &candidate{name: name, remote: remotePath, size: e.Size(), mtime: e.ModTime().UTC(), declSize: -1, declRecs: -1, seq: -1}
		if j.job.ReadyMarker != "" {
			if _, ok := names[name+j.job.ReadyMarker]; !ok {
				j.add(FileOutcome{Name: name, Remote: remotePath, Outcome: "waiting", Size: c.size, Reason: "ready marker " + name + j.job.ReadyMarker + " not present yet"})
				continue
			}
		}
		if s := j.job.Settle.Duration; s > 0 && now.Sub(c.mtime) < s {
			j.add(FileOutcome{Name: name, Remote: remotePath, Outcome: "waiting", Size: c.size, Reason: fmt.Sprintf("modified %s ago; waiting until unchanged for %s", now.Sub(c.mtime).Round(time.Second), s)})
			continue
		}
		cands = append(cands, c)
	}
	j.names, j.manifests = names, manifests
	if manifests != nil {
		if err := j.checkBatch(cands, names, manifests); err != nil {
			j.r.event(audit.Event{Actor: j.req.Actor, Type: "batch.failed", Job: j.job.Name, Details: map[string]string{"error": err.Error()}})
			for _, c := range cands {
				j.add(FileOutcome{Name: c.name, Remote: c.remote, Outcome: "failed", Size: c.size, Reason: err.Error()})
			}
			return nil, nil
		}
	}
	if j.job.Sequence != "" {
		cands, err = j.sequence(cands)
		if err != nil {
			return nil, err
		}
	}
	return cands, nil
}

func (j *jobRun) isCompanion(name string) bool {
	for _, suf := range []string{".sha256", ".sha512", ".md5"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	if j.job.ReadyMarker != "" && strings.HasSuffix(name, j.job.ReadyMarker) {
		return true
	}
	if j.job.Manifest != "" {
		if ok, _ := path.Match(j.job.Manifest, name); ok {
			return true
		}
	}
	return false
}

func (j *jobRun) refuse(name, reason string) {
	j.log.Warn().Str("reason", reason).Msg("remote name refused")
	j.r.event(audit.Event{Actor: j.req.Actor, Type: "file.refused", Job: j.job.Name,
		Details: map[string]string{"name": fmt.Sprintf("%q", name), "reason": reason}})
	j.add(FileOutcome{Name: fmt.Sprintf("%q", name), Outcome: "refused", Reason: reason})
}

func (j *jobRun) fail(c *candidate, err error) {
	j.r.event(audit.Event{Actor: j.req.Actor, Type: "file.failed", Job: j.job.Name,
		Details: map[string]string{"remote_path": c.remote, "error": err.Error()}})
	j.add(FileOutcome{Name: c.name, Remote: c.remote, Outcome: "failed", Size: c.size, Reason: err.Error()})
}

const maxChecksumFile = 16 << 20

// checksumReadError classifies a failure to read a sidecar or manifest: one
// that vanished or is too large is a verdict for this run (ErrChecksumFile);
// anything else, such as a dropped connection, is a transfer fault to retry.
func checksumReadError(what string, err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, errTooLarge) {
		return fmt.Errorf("%w: reading %s: %v", ErrChecksumFile, what, err)
	}
	return fmt.Errorf("reading %s: %w", what, err)
}

var errTooLarge = errors.New("too large for a checksum file")

func readSmall(sess *sftp.Client, p string) ([]byte, error) {
	f, err := sess.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxChecksumFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxChecksumFile {
		return nil, fmt.Errorf("%s: %w (over %d bytes)", p, errTooLarge, maxChecksumFile)
	}
	return b, nil
}

// expectations fills in what the provider declared for c.
func (j *jobRun) expectations(sess *sftp.Client, c *candidate, names map[string]os.FileInfo, manifests map[string]integrity.ManifestEntry) error {
	switch j.job.Checksum {
	case "none":
		c.unchecked = true
		c.algo = integrity.Algo("sha256")
		return nil
	case "manifest":
		e, ok := manifests[c.name]
		if !ok {
			return nil // reported by checkBatch
		}
		c.algo, c.digest, c.declSize, c.declRecs = e.Algo, e.Digest, e.Size, e.Records
		return nil
	}
	for _, suf := range []string{".sha256", ".sha512", ".md5"} {
		if _, ok := names[c.name+suf]; !ok {
			continue
		}
		algo, _ := integrity.AlgoForSidecar(c.name + suf)
		if algo.Weak() && !j.job.AllowWeak {
			continue
		}
		content, err := readSmall(sess, path.Join(j.job.RemoteDir, c.name+suf))
		if err != nil {
			return checksumReadError(c.name+suf, err)
		}
		d, err := integrity.ParseSidecar(content, algo, c.name)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrChecksumFile, c.name+suf, err)
		}
		c.algo, c.digest = algo, d
		return nil
	}
	accepted := c.name + ".sha256 or " + c.name + ".sha512"
	if j.job.AllowWeak {
		accepted += " or " + c.name + ".md5"
	}
	return fmt.Errorf("%w: no sidecar for %s (looked for %s)", ErrChecksumFile, c.name, accepted)
}

func (j *jobRun) readManifests(sess *sftp.Client, names map[string]os.FileInfo) (map[string]integrity.ManifestEntry, error) {
	if j.job.Checksum != "manifest" {
		return nil, nil
	}
	out := map[string]integrity.ManifestEntry{}
	var found []string
	for name := range names {
		if ok, _ := path.Match(j.job.Manifest, name); ok {
			found = append(found, name)
		}
	}
	sort.Strings(found)
	if len(found) == 0 {
		return nil, fmt.Errorf("%w: no manifest matching %q in %s", ErrChecksumFile, j.job.Manifest, j.job.RemoteDir)
	}
	for _, m := range found {
		content, err := readSmall(sess, path.Join(j.job.RemoteDir, m))
		if err != nil {
			return nil, checksumReadError("manifest "+m, err)
		}
		entries, err := integrity.ParseManifest(content, integrity.Algo("sha256"))
		if err != nil {
			return nil, fmt.Errorf("%w: manifest %s: %v", ErrChecksumFile, m, err)
		}
		for _, e := range entries {
			if _, dup := out[e.Name]; dup {
				return nil, fmt.Errorf("%w: %s is listed in more than one manifest", ErrChecksumFile, e.Name)
			}
			out[e.Name] = e
		}
	}
	return out, nil
}

// checkBatch fails the whole batch when the server and the manifest disagree.
func (j *jobRun) checkBatch(cands []*candidate, names map[string]os.FileInfo, manifests map[string]integrity.ManifestEntry) error {
	var problems []string
	for _, c := range cands {
		if _, ok := manifests[c.name]; !ok {
			problems = append(problems, c.name+" is on the server but not in the manifest")
		}
	}
	for name := range manifests {
		if _, ok := names[name]; !ok {
			problems = append(problems, name+" is in the manifest but not on the server")
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return fmt.Errorf("batch refused: %s", strings.Join(problems, "; "))
}

// sequence orders change files and marks gaps, repeats and out-of-order files
// to be held.
func (j *jobRun) sequence(cands []*candidate) ([]*candidate, error) {
	re, err := regexp.Compile(j.job.Sequence)
	if err != nil {
		return nil, err
	}
	last, err := j.lastSequence()
	if err != nil {
		return nil, err
	}
	byName := map[string]*candidate{}
	var names []string
	baseline := int64(-1)
	for _, c := range cands {
		byName[c.name] = c
		names = append(names, c.name)
		if s, err := integrity.ParseSequence(re, c.name); err == nil && (baseline < 0 || s < baseline) {
			baseline = s
		}
	}
	if last < 0 && baseline >= 0 {
		// The job's first change files: the lowest sequence starts the chain.
		last = baseline - 1
		j.r.event(audit.Event{Actor: j.req.Actor, Type: "sequence.baseline", Job: j.job.Name,
			Details: map[string]string{"first_sequence": strconv.FormatInt(baseline, 10)}})
	}
	var out []*candidate
	for _, v := range integrity.CheckSequence(re, last, names) {
		c := byName[v.Name]
		c.seq = v.Seq
		switch v.Status {
		case "next":
		case "unparsable":
			j.refuse(c.name, "no sequence number: "+v.Reason)
			continue
		default:
			c.held = fmt.Sprintf("sequence %s: %s", v.Status, v.Reason)
		}
		out = append(out, c)
	}
	return out, nil
}

// lastSequence is the highest sequence number accepted on this job so far.
func (j *jobRun) lastSequence() (int64, error) {
	ds, err := j.r.Ledger.Datasets()
	if err != nil {
		return 0, err
	}
	last := int64(-1)
	for _, d := range ds {
		if d.Job != j.job.Name || (d.State != audit.StateVerified && d.State != audit.StateUnverified && d.State != audit.StateReleased) {
			continue
		}
		if s, err := strconv.ParseInt(d.Integrity["sequence"], 10, 64); err == nil && s > last {
			last = s
		}
	}
	return last, nil
}

// ingestAll pulls the candidates; change files one at a time in sequence
// order, extracts over all sessions in parallel. It returns the candidates
// that hit a transfer fault and should be retried; on the last attempt they
// are recorded as failed instead.
func (j *jobRun) ingestAll(ctx context.Context, remote *Remote, cands []*candidate, last bool) []*candidate {
	workers := len(remote.sessions)
	if j.job.Kind == "change" {
		workers = 1
	}
	var (
		mu    sync.Mutex
		retry []*candidate
		wg    sync.WaitGroup
		next  = make(chan *candidate)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				if err := j.ingest(ctx, remote, c); err != nil {
					j.log.Warn().Str("remote", c.remote).Err(err).Msg("transfer failed")
					if last || ctx.Err() != nil {
						j.fail(c, err)
					} else {
						j.r.event(audit.Event{Actor: j.req.Actor, Type: "file.transfer_failed", Job: j.job.Name,
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

// ingest pulls one file through the pipeline into the vault and commits the
// dataset. A returned error is a transfer fault to retry; verdicts
// (quarantine, hold) are outcomes, not errors.
func (j *jobRun) ingest(ctx context.Context, remote *Remote, c *candidate) error {
	sess, err := remote.session(ctx)
	if err != nil {
		return err
	}
	defer remote.release(sess)
	if c.algo == "" {
		// Each worker reads its own file's sidecar: round trips in parallel.
		if err := j.expectations(sess, c, j.names, j.manifests); err != nil {
			if errors.Is(err, ErrChecksumFile) {
				j.fail(c, err) // a verdict for this run; the next run looks again
				return nil
			}
			return err
		}
	}
	d, err := j.receive(ctx, sess, c)
	if err != nil {
		return err
	}
	failpoint.Hit("ingest.after-object-commit")
	if err := j.commit(&d); err != nil {
		j.dropObject(d.ObjectID)
		if errors.Is(err, errAlreadyIngested) {
			j.mu.Lock()
			j.res.Skipped++
			j.mu.Unlock()
			return nil
		}
		return err
	}
	j.add(outcomeOf(c.name, d))
	j.log.Info().Str("dataset", d.ID).Str("remote", c.remote).Int64("bytes", d.Size).Int64("records", d.Records).Str("state", d.State).Msg("file ingested")
	failpoint.Hit("ingest.after-ledger-commit")
	if d.State != audit.StateQuarantined {
		j.afterPull(sess, d.ID, d.RemotePath)
	}
	return nil
}

func outcomeOf(name string, d audit.Dataset) FileOutcome {
	return FileOutcome{Name: name, Remote: d.RemotePath, Outcome: d.State, DatasetID: d.ID, Reason: d.Reason, Size: d.Size, SHA256: d.SHA256, Records: d.Records}
}

// dropObject removes an object whose dataset never reached the ledger.
func (j *jobRun) dropObject(id string) {
	if err := j.r.Store.Remove(id); err != nil {
		j.log.Error().Err(err).Str("object", id).Msg("cannot remove object after failed commit; it will be removed as an orphan on restart")
	}
}

// receive takes one file in a single streaming pass into a durable vault
// object and returns the dataset it makes, not yet on the ledger (no ID).
func (j *jobRun) receive(ctx context.Context, sess *sftp.Client, c *candidate) (audit.Dataset, error) {
	var d audit.Dataset
	obj, err := j.r.Store.Create(ctx)
	if err != nil {
		return d, fmt.Errorf("vault: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			obj.Abort()
		}
	}()
	if p, ok := obj.(interface{ Preallocate(int64) error }); ok {
		if err := p.Preallocate(c.size); err != nil {
			return d, err
		}
	}

	sum := sha256.New()
	checkers := []io.Writer{sum}
	var provider hash.Hash
	if !c.unchecked && c.algo != "sha256" {
		provider = c.algo.New()
		checkers = append(checkers, provider)
	}
	spec, err := j.countSpec(c.name)
	if err != nil {
		return d, err
	}
	counter := integrity.NewCounter(spec)
	checkers = append(checkers, counter)

	f, err := sess.Open(c.remote)
	if err != nil {
		return d, fmt.Errorf("opening %s: %w", c.remote, err)
	}
	defer f.Close()
	// The listing's size and time stand for the file as opened (WriteTo
	// stats the handle itself); the stat after reading must agree with them.
	listedSize, listedTime := c.size, c.mtime
	pipe := newPipeline(obj, checkers...)
	if j.req.Progress != nil {
		total := listedSize
		pipe.progress = func(n int64) { j.req.Progress(Progress{File: c.name, Done: n, Total: total}) }
	}
	n, err := f.WriteTo(pipe)
	if cerr := pipe.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return d, fmt.Errorf("receiving %s after %d bytes: %w", c.remote, n, err)
	}
	counter.Close()
	// The file must be the one listed, unchanged while we read it.
	st2, err := sess.Stat(c.remote)
	if err != nil {
		return d, fmt.Errorf("stat %s after transfer: %w", c.remote, err)
	}
	c.size, c.mtime = st2.Size(), st2.ModTime().UTC() // a retry compares with what we saw last
	if st2.Size() != listedSize || !st2.ModTime().Equal(listedTime) {
		return d, fmt.Errorf("%w: %s was %d bytes when listed and %d after reading", ErrChanged, c.remote, listedSize, st2.Size())
	}
	if n != listedSize {
		return d, fmt.Errorf("%w: received %d bytes of %s, the server reports %d", ErrShort, n, c.remote, listedSize)
	}

	digest := hex.EncodeToString(sum.Sum(nil))
	got := digest
	if provider != nil {
		got = hex.EncodeToString(provider.Sum(nil))
	}
	cr := counter.Result()
	d = audit.Dataset{
		Job: j.job.Name, Source: j.job.Source, Kind: j.job.Kind,
		RemotePath: c.remote, RemoteSize: listedSize, RemoteMtime: listedTime,
		Size: n, SHA256: digest, Records: cr.Records, DeclaredRecords: cr.Declared,
		Purpose: j.job.Purpose, Custodian: j.custodian(),
		Integrity: specIntegrity(spec),
	}
	d.Integrity["checksum"] = j.job.Checksum
	if c.algo != "" && !c.unchecked {
		d.Integrity["digest_algo"] = string(c.algo)
		d.Integrity["declared_digest"] = c.digest
	}
	if c.seq >= 0 {
		d.Integrity["sequence"] = strconv.FormatInt(c.seq, 10)
	}
	if len(cr.Problems) > 0 {
		d.Integrity["count_problems"] = strings.Join(cr.Problems, "; ")
	}
	var reasons []string
	if !c.unchecked && got != c.digest {
		reasons = append(reasons, fmt.Sprintf("%s mismatch: computed %s, provider declared %s", c.algo, got, c.digest))
	}
	if c.declSize >= 0 && c.declSize != n {
		reasons = append(reasons, fmt.Sprintf("size mismatch: received %d bytes, manifest declares %d", n, c.declSize))
	}
	// The counter itself reports a header or trailer that disagrees with the
	// records; the manifest's count is checked here.
	if c.declRecs >= 0 {
		if cr.Declared >= 0 && cr.Declared != c.declRecs {
			reasons = append(reasons, fmt.Sprintf("the %s declares %d records but the manifest %d", cr.DeclaredBy, cr.Declared, c.declRecs))
		}
		if c.declRecs != cr.Records {
			reasons = append(reasons, fmt.Sprintf("record count mismatch: counted %d, manifest declares %d", cr.Records, c.declRecs))
		}
		d.DeclaredRecords = c.declRecs
	}
	reasons = append(reasons, cr.Problems...)
	switch {
	case len(reasons) > 0:
		d.State, d.Reason = audit.StateQuarantined, strings.Join(reasons, "; ")
	case c.held != "":
		d.State, d.Reason = audit.StateHeld, c.held
	case c.unchecked:
		d.State, d.Reason = audit.StateUnverified, "checksum: none (allow_unverified); completeness not proven"
	default:
		d.State = audit.StateVerified
	}
	if c.digest != "" && c.algo.Weak() {
		d.Integrity["warning"] = "weak digest md5 accepted by allow_weak"
	}

	failpoint.Hit("ingest.before-object-commit")
	info, err := obj.Close()
	if err != nil {
		return d, fmt.Errorf("vault: %w", err)
	}
	committed = true
	// Durable before the ledger may refer to it. Files finishing together
	// share one flush; a crash before it leaves an orphan, removed on start.
	if err := j.r.Store.Flush(); err != nil {
		j.dropObject(info.ID)
		return d, fmt.Errorf("vault: %w", err)
	}
	d.ObjectID = info.ID
	return d, nil
}

var errAlreadyIngested = errors.New("already ingested")

// commit records the dataset and its receipt event in one transaction,
// refusing a remote file another run got to first.
func (j *jobRun) commit(d *audit.Dataset) error {
	// Batch: files finishing together share one transaction and one fsync;
	// each returns only once its own dataset is durable.
	return j.r.Ledger.Batch(func(tx *audit.Tx) error {
		if _, done, err := tx.RemoteDataset(d.Source, d.RemotePath); err != nil {
			return err
		} else if done {
			return errAlreadyIngested
		}
		now := j.r.now()
		d.ID = newDatasetID()
		d.ReceivedAt, d.UpdatedAt = now, now
		details := map[string]string{"state": d.State, "remote_path": d.RemotePath, "sha256": d.SHA256, "bytes": strconv.FormatInt(d.Size, 10), "records": strconv.FormatInt(d.Records, 10)}
		if d.Reason != "" {
			details["reason"] = d.Reason
		}
		if w := d.Integrity["warning"]; w != "" {
			details["warning"] = w
		}
		snap := *d
		_, err := tx.Append(audit.Event{Time: now, Actor: j.req.Actor, Type: "dataset.received", Job: d.Job, Dataset: &snap, Details: details})
		return err
	})
}

func (j *jobRun) custodian() string {
	if j.job.Officer != "" {
		return j.job.Officer
	}
	return j.req.Actor
}

// afterPull deletes or moves the remote file once its dataset is durable. It
// also completes an action a crash interrupted: a file still listed although
// its dataset exists was never deleted or moved. A quarantined file stays on
// the server, for the provider to examine and the officer to pull again.
func (j *jobRun) afterPull(sess *sftp.Client, datasetID, remotePath string) {
	ap := j.job.AfterPull
	if ap == "keep" || ap == "" {
		return
	}
	var err error
	details := map[string]string{"remote_path": remotePath}
	if ap == "delete" {
		err = sess.Remove(remotePath)
	} else {
		to := path.Join(strings.TrimPrefix(ap, "move:"), path.Base(remotePath))
		details["moved_to"] = to
		if err = sess.PosixRename(remotePath, to); err != nil {
			err = sess.Rename(remotePath, to)
		}
	}
	typ := "remote." + strings.SplitN(ap, ":", 2)[0]
	if err != nil {
		typ += "_failed"
		details["error"] = err.Error()
	}
	j.r.event(audit.Event{Actor: j.req.Actor, Type: typ, Job: j.job.Name, DatasetID: datasetID, Details: details})
}

func (j *jobRun) countSpec(name string) (integrity.CountSpec, error) {
	r := j.job.Records
	gz := r.Gzip == "yes" || (r.Gzip == "auto" && strings.HasSuffix(name, ".gz"))
	return buildSpec(r.Header, r.Trailer, r.RecordLength, gz)
}

func newDatasetID() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return "ds-" + hex.EncodeToString(b[:])
}
