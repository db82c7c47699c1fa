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
	r.event(audit.Event{Actor: req.Actor, Type: audit.EvJobStarted, Job: job.Name, Details: map[string]string{"trigger": req.Trigger}})

	run := &jobRun{r: r, job: job, src: cfg.Sources[job.Source], req: req, res: res, log: log}
	err := run.execute(ctx)
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
	return res, nil
}

// event appends a stand-alone event (no state change); a failure to record is
// logged loudly, since the ledger is the evidence.
func (r *Runner) event(ev audit.Event) {
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
	// readPath is what is opened and read: remote itself, or the regular
	// file a followed symbolic link points to (linked is then set).
	readPath string
	linked   bool
	sidecar  os.FileInfo // listing of the sidecar the digest came from
	// A re-sent file: the dataset recorded for this remote name held other
	// bytes; the new delivery supersedes it.
	supersedes string
	resent     string
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
			j.r.event(audit.Event{Actor: j.req.Actor, Type: audit.EvSourceConnectFailed, Job: j.job.Name,
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
		j.r.event(audit.Event{Actor: j.req.Actor, Type: audit.EvBatchFailed, Job: j.job.Name, Details: map[string]string{"error": err.Error()}})
		return nil, err
	}
	var cands []*candidate
	now := j.r.now()
	for _, e := range entries {
		name := e.Name()
		if j.isCompanion(name) {
			continue
		}
		if ok, _ := path.Match(j.job.Pattern, name); !ok {
			continue
		}
		if err := integrity.ValidRemoteName(name); err != nil {
			j.refuse(name, err.Error(), e)
			continue
		}
		remotePath := path.Join(j.job.RemoteDir, name)
		fi, readPath := e, remotePath
		switch {
		case e.Mode().IsRegular():
		case e.Mode()&os.ModeSymlink != 0:
			target, tfi, why, err := j.resolveLink(sess, remotePath)
			if err != nil {
				return nil, err
			}
			if why != "" {
				j.refuse(name, why, e)
				continue
			}
			fi, readPath = tfi, target
		case e.IsDir():
			j.refuse(name, "a directory, not a file: only regular files are pulled", e)
			continue
		default:
			j.refuse(name, fmt.Sprintf("not a regular file (type %s): only regular files are pulled", e.Mode().Type()), e)
			continue
		}
		var supersedes, resent string
		if id, done, err := j.r.Ledger.RemoteDataset(j.job.Source, remotePath); err != nil {
			return nil, err
		} else if done {
			d, ok, err := j.r.Ledger.Dataset(id)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("%w: remote index names dataset %s, which has no record", audit.ErrCorrupt, id)
			}
			same, why, err := j.sameDelivery(sess, name, fi, d, names, manifests)
			if err != nil {
				return nil, err
			}
			if same {
				j.log.Debug().Str("remote", remotePath).Str("dataset", id).Msg("already ingested")
				j.res.Skipped++
				// Complete an after_pull a crash interrupted (not for
				// quarantined files, which stay on the server).
				if d.State != audit.StateQuarantined {
					j.afterPull(sess, id, remotePath, fi.Size(), fi.ModTime())
				}
				continue
			}
			supersedes, resent = id, why
			j.log.Info().Str("remote", remotePath).Str("supersedes", id).Str("why", why).Msg("re-sent file with different bytes: a new delivery")
		}
		c := &candidate{name: name, remote: remotePath, readPath: readPath, linked: readPath != remotePath,
			size: fi.Size(), mtime: fi.ModTime().UTC(), declSize: -1, declRecs: -1, seq: -1,
			supersedes: supersedes, resent: resent}
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
			j.r.event(audit.Event{Actor: j.req.Actor, Type: audit.EvBatchFailed, Job: j.job.Name, Details: map[string]string{"error": err.Error()}})
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

// refuse reports a remote file that is not pulled, and why. The refusal is
// recorded on the ledger once per name, reason and listed content (size and
// time); later runs show it again without recording or failing again.
func (j *jobRun) refuse(name, reason string, fi os.FileInfo) {
	quoted := fmt.Sprintf("%q", name)
	o := FileOutcome{Name: quoted, Outcome: "refused", Reason: reason}
	details := map[string]string{"name": quoted, "reason": reason, "remote_dir": j.job.RemoteDir}
	key := []string{"file.refused", j.job.Name, j.job.Source, j.job.RemoteDir, name, reason}
	if fi != nil {
		o.Size = fi.Size()
		details["size"] = strconv.FormatInt(fi.Size(), 10)
		details["mtime"] = fi.ModTime().UTC().Format(time.RFC3339Nano)
		key = append(key, details["size"], details["mtime"])
	}
	sum := sha256.Sum256([]byte(strings.Join(key, "\x00")))
	var (
		index    int64
		recorded bool
	)
	err := j.r.Ledger.Batch(func(tx *audit.Tx) (err error) {
		index, recorded, err = tx.AppendOnce("file.refused/"+hex.EncodeToString(sum[:]),
			audit.Event{Actor: j.req.Actor, Type: audit.EvFileRefused, Job: j.job.Name, Details: details})
		return err
	})
	switch {
	case err != nil:
		j.r.Log.Error().Err(err).Str("event", "file.refused").Msg("cannot record event on the ledger")
	case recorded:
		j.log.Warn().Str("reason", reason).Msg("remote file refused")
	default:
		o.Repeat, o.LedgerEvent = true, index
		o.Reason += fmt.Sprintf(" (refused before: ledger event %d)", index)
	}
	j.add(o)
}

func (j *jobRun) fail(c *candidate, err error) {
	j.r.event(audit.Event{Actor: j.req.Actor, Type: audit.EvFileFailed, Job: j.job.Name,
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
		c.algo, c.digest, c.sidecar = algo, d, names[c.name+suf]
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
		j.r.event(audit.Event{Actor: j.req.Actor, Type: audit.EvSequenceBaseline, Job: j.job.Name,
			Details: map[string]string{"first_sequence": strconv.FormatInt(baseline, 10)}})
	}
	var out []*candidate
	for _, v := range integrity.CheckSequence(re, last, names) {
		c := byName[v.Name]
		c.seq = v.Seq
		switch v.Status {
		case "next":
		case "unparsable":
			j.refuse(c.name, "no sequence number: "+v.Reason, j.names[c.name])
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
	if err := j.commit(&d, c.resent); err != nil {
		j.dropObject(d.ObjectID)
		if errors.Is(err, errAlreadyIngested) {
			j.mu.Lock()
			j.res.Skipped++
			j.mu.Unlock()
			return nil
		}
		return err
	}
	o := outcomeOf(c.name, d)
	o.Resent = c.resent
	j.add(o)
	j.log.Info().Str("dataset", d.ID).Str("remote", c.remote).Int64("bytes", d.Size).Int64("records", d.Records).Str("state", string(d.State)).Msg("file ingested")
	failpoint.Hit("ingest.after-ledger-commit")
	if d.State != audit.StateQuarantined {
		j.afterPull(sess, d.ID, d.RemotePath, d.RemoteSize, d.RemoteMtime)
	}
	return nil
}

func outcomeOf(name string, d audit.Dataset) FileOutcome {
	return FileOutcome{Name: name, Remote: d.RemotePath, Outcome: string(d.State), DatasetID: d.ID, Reason: d.Reason, Size: d.Size, SHA256: d.SHA256, Records: d.Records,
		Supersedes: d.Supersedes}
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

	readPath := c.readPath
	if readPath == "" {
		readPath = c.remote
	}
	f, err := sess.Open(readPath)
	if err != nil {
		return d, fmt.Errorf("opening %s: %w", readPath, err)
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
	st2, err := sess.Stat(readPath)
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
		Integrity: integrity.EncodeSpec(spec), Supersedes: c.supersedes,
	}
	d.Integrity["checksum"] = j.job.Checksum
	if c.algo != "" && !c.unchecked {
		d.Integrity["digest_algo"] = string(c.algo)
		d.Integrity["declared_digest"] = c.digest
		if provider != nil {
			d.Integrity["received_digest"] = got
		}
	}
	if c.sidecar != nil {
		// A later run compares the sidecar's listing with this one and
		// reads it again only if it changed.
		d.Integrity["sidecar"] = c.sidecar.Name()
		d.Integrity["sidecar_size"] = strconv.FormatInt(c.sidecar.Size(), 10)
		d.Integrity["sidecar_mtime"] = c.sidecar.ModTime().UTC().Format(time.RFC3339Nano)
	}
	if c.linked {
		d.Integrity["symlink_target"] = readPath
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
// refusing a remote file another run got to first. A re-sent file
// (d.Supersedes set) is recorded only if the remote file still names the
// dataset it supersedes, and that dataset's timeline says so.
func (j *jobRun) commit(d *audit.Dataset, resent string) error {
	// Batch: files finishing together share one transaction and one fsync;
	// each returns only once its own dataset is durable.
	return j.r.Ledger.Batch(func(tx *audit.Tx) error {
		if cur, _, err := tx.RemoteDataset(d.Source, d.RemotePath); err != nil {
			return err
		} else if cur != d.Supersedes {
			return errAlreadyIngested
		}
		now := j.r.now()
		d.ID = newDatasetID()
		d.ReceivedAt, d.UpdatedAt = now, now
		details := map[string]string{"state": string(d.State), "remote_path": d.RemotePath, "sha256": d.SHA256, "bytes": strconv.FormatInt(d.Size, 10), "records": strconv.FormatInt(d.Records, 10)}
		if d.Reason != "" {
			details["reason"] = d.Reason
		}
		if w := d.Integrity["warning"]; w != "" {
			details["warning"] = w
		}
		if d.Supersedes != "" {
			details["supersedes"] = d.Supersedes
			details["resent"] = resent
		}
		snap := *d
		if _, err := tx.Append(audit.Event{Time: now, Actor: j.req.Actor, Type: audit.EvDatasetReceived, Job: d.Job, Dataset: &snap, Details: details}); err != nil {
			return err
		}
		if d.Supersedes == "" {
			return nil
		}
		_, err := tx.Append(audit.Event{Time: now, Actor: j.req.Actor, Type: audit.EvDatasetSuperseded, Job: d.Job, DatasetID: d.Supersedes,
			Details: map[string]string{"superseded_by": d.ID, "remote_path": d.RemotePath, "resent": resent}})
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
//
// Only the bytes that were stored are touched: the file is looked at again
// just before the action, and left in place if its size or time is no longer
// that of the stored dataset (the provider re-sent it meanwhile). A move never
// replaces a file in the archive directory.
func (j *jobRun) afterPull(sess *sftp.Client, datasetID, remotePath string, size int64, mtime time.Time) {
	ap := j.job.AfterPull
	if ap.Action == configs.AfterPullKeep || ap.Action == "" {
		return
	}
	action := string(ap.Action)
	details := map[string]string{"remote_path": remotePath}
	err := func() error {
		fi, err := sess.Stat(remotePath)
		if err != nil {
			return fmt.Errorf("stat before %s: %w", action, err)
		}
		if fi.Size() != size || !fi.ModTime().Equal(mtime) {
			return fmt.Errorf("%w: %s is now %d bytes modified %s, the stored dataset %d bytes modified %s; left in place for the next run to pull",
				ErrChanged, remotePath, fi.Size(), fi.ModTime().UTC().Format(time.RFC3339), size, mtime.UTC().Format(time.RFC3339))
		}
		if ap.Action == configs.AfterPullDelete {
			return sess.Remove(remotePath)
		}
		to, err := j.archiveName(sess, ap.Dir, path.Base(remotePath), datasetID)
		if err != nil {
			return err
		}
		details["moved_to"] = to
		// SSH_FXP_RENAME fails when the target exists (SFTP v3, OpenSSH);
		// posix-rename would replace it, so it is never used here.
		return sess.Rename(remotePath, to)
	}()
	typ := map[bool]audit.EventType{true: audit.EvRemoteDelete, false: audit.EvRemoteMove}[action == "delete"]
	if err != nil {
		typ = map[bool]audit.EventType{true: audit.EvRemoteDeleteFailed, false: audit.EvRemoteMoveFailed}[action == "delete"]
		details["error"] = err.Error()
		j.log.Warn().Err(err).Str("remote", remotePath).Msg("after_pull not done")
	}
	j.r.event(audit.Event{Actor: j.req.Actor, Type: typ, Job: j.job.Name, DatasetID: datasetID, Details: details})
}

// archiveName picks the name a moved file gets in the archive directory:
// its own name, or NAME.DATASET-ID if the archive already holds that name.
// It never names an existing file.
func (j *jobRun) archiveName(sess *sftp.Client, dir, base, datasetID string) (string, error) {
	for _, name := range []string{base, base + "." + datasetID} {
		to := path.Join(dir, name)
		_, err := sess.Lstat(to)
		if errors.Is(err, os.ErrNotExist) {
			return to, nil
		}
		if err != nil {
			return "", fmt.Errorf("checking the archive for %s: %w", to, err)
		}
	}
	return "", fmt.Errorf("the archive %s already holds %s and %s; not moved, so that nothing in the archive is replaced", dir, base, base+"."+datasetID)
}

// resolveLink decides whether a symbolic link in the listing is pulled.
// Only with follow_symlinks, and only to a regular file directly inside
// remote_dir: the target is read by its own path, so that the bytes are
// those of the file checked here. why explains a refusal; err is a transfer
// fault.
func (j *jobRun) resolveLink(sess *sftp.Client, link string) (target string, fi os.FileInfo, why string, err error) {
	if !j.job.FollowSymlinks {
		return "", nil, "a symbolic link: not followed (set follow_symlinks: true to pull the regular file it points to inside remote_dir)", nil
	}
	dest, err := sess.ReadLink(link)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) || isUnsupported(err) {
			return "", nil, fmt.Sprintf("a symbolic link that cannot be read: %v", err), nil
		}
		return "", nil, "", fmt.Errorf("reading link %s: %w", link, err)
	}
	dir := path.Clean(j.job.RemoteDir)
	if path.IsAbs(dest) && !path.IsAbs(dir) {
		if dir, err = sess.RealPath(dir); err != nil {
			return "", nil, "", fmt.Errorf("resolving %s: %w", j.job.RemoteDir, err)
		}
	}
	target = path.Clean(dest)
	if !path.IsAbs(dest) {
		target = path.Join(dir, dest)
	}
	if path.Dir(target) != dir {
		return "", nil, fmt.Sprintf("a symbolic link to %q, outside remote_dir %s: refused", dest, j.job.RemoteDir), nil
	}
	fi, err = sess.Lstat(target)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, fmt.Sprintf("a symbolic link to %q, which does not exist", dest), nil
	}
	if err != nil {
		return "", nil, "", fmt.Errorf("stat %s: %w", target, err)
	}
	if !fi.Mode().IsRegular() {
		return "", nil, fmt.Sprintf("a symbolic link to %q, which is not a regular file (type %s)", dest, fi.Mode().Type()), nil
	}
	if ok, _ := path.Match(j.job.Pattern, path.Base(target)); ok && !j.isCompanion(path.Base(target)) {
		return "", nil, fmt.Sprintf("a symbolic link to %q, which this job pulls under its own name", dest), nil
	}
	return target, fi, "", nil
}

func isUnsupported(err error) bool {
	var se *sftp.StatusError
	return errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxOpUnsupported
}

// sameDelivery reports whether the file now listed under a remote name is
// the delivery already stored as dataset d: same bytes, not just the same
// name. A different size is a new delivery. A digest the provider declares
// (manifest or sidecar) that equals what was received proves the same bytes
// even if the file was touched; one that changed proves a new delivery.
// Without a digest, a different modification time is a new delivery. why
// says how the file differs; err is a transfer fault reading a sidecar.
func (j *jobRun) sameDelivery(sess *sftp.Client, name string, fi os.FileInfo, d audit.Dataset, names map[string]os.FileInfo, manifests map[string]integrity.ManifestEntry) (same bool, why string, err error) {
	if fi.Size() != d.RemoteSize {
		return false, fmt.Sprintf("now %d bytes, dataset %s received %d", fi.Size(), d.ID, d.RemoteSize), nil
	}
	algo, digest, err := j.declaredDigest(sess, name, d, names, manifests)
	if err != nil {
		return false, "", err
	}
	if digest != "" {
		if strings.EqualFold(digest, heldDigest(d, algo)) {
			return true, "", nil
		}
		if recorded := d.Integrity["declared_digest"]; d.Integrity["digest_algo"] == string(algo) && !strings.EqualFold(digest, recorded) {
			return false, fmt.Sprintf("the provider now declares %s %s, dataset %s was declared %s", algo, digest, d.ID, recorded), nil
		}
	}
	if !fi.ModTime().Equal(d.RemoteMtime) {
		return false, fmt.Sprintf("modified %s, dataset %s was modified %s", fi.ModTime().UTC().Format(time.RFC3339), d.ID, d.RemoteMtime.UTC().Format(time.RFC3339)), nil
	}
	return true, "", nil
}

// listingGrain is the coarsest time resolution of a directory listing
// (SFTP v3 sends whole seconds), with a second's margin.
const listingGrain = 2 * time.Second

// heldDigest is the digest in algo of the bytes dataset d holds, or "".
func heldDigest(d audit.Dataset, algo integrity.Algo) string {
	if algo == "sha256" {
		return d.SHA256
	}
	if d.Integrity["digest_algo"] != string(algo) {
		return ""
	}
	if r := d.Integrity["received_digest"]; r != "" {
		return r
	}
	// Datasets recorded before received_digest: the declared digest is
	// what was received unless the dataset failed its checks.
	switch d.State {
	case audit.StateVerified, audit.StateHeld:
		return d.Integrity["declared_digest"]
	}
	return ""
}

// declaredDigest is the digest the provider now declares for name: from the
// manifest, or from the sidecar, which is read again only if its listing
// differs from the one recorded with d.
func (j *jobRun) declaredDigest(sess *sftp.Client, name string, d audit.Dataset, names map[string]os.FileInfo, manifests map[string]integrity.ManifestEntry) (integrity.Algo, string, error) {
	switch j.job.Checksum {
	case "manifest":
		if e, ok := manifests[name]; ok {
			return e.Algo, e.Digest, nil
		}
		return "", "", nil
	case "sidecar":
	default:
		return "", "", nil
	}
	c := &candidate{name: name}
	for _, suf := range []string{".sha256", ".sha512", ".md5"} {
		sc, ok := names[name+suf]
		if !ok {
			continue
		}
		// Listings give times in whole seconds: a sidecar rewritten within
		// the second it was listed looks unchanged, so the listing is
		// trusted only for a sidecar that was older than that.
		settled := sc.ModTime().Add(listingGrain).Before(d.ReceivedAt)
		if settled && d.Integrity["sidecar"] == sc.Name() && d.Integrity["sidecar_size"] == strconv.FormatInt(sc.Size(), 10) &&
			d.Integrity["sidecar_mtime"] == sc.ModTime().UTC().Format(time.RFC3339Nano) {
			return integrity.Algo(d.Integrity["digest_algo"]), d.Integrity["declared_digest"], nil
		}
		break
	}
	if err := j.expectations(sess, c, names, manifests); err != nil {
		if errors.Is(err, ErrChecksumFile) {
			return "", "", nil // no usable sidecar now: judged by size and time
		}
		return "", "", err
	}
	return c.algo, c.digest, nil
}

func (j *jobRun) countSpec(name string) (integrity.CountSpec, error) {
	r := j.job.Records
	gz := r.Gzip == "yes" || (r.Gzip == "auto" && strings.HasSuffix(name, ".gz"))
	return integrity.NewCountSpec(r.Header, r.Trailer, r.RecordLength, gz, int64(r.MaxInflated), r.MaxInflateRatio)
}

func newDatasetID() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return "ds-" + hex.EncodeToString(b[:])
}
