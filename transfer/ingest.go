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
	"strconv"
	"strings"
	"time"

	"github.com/pkg/sftp"

	"custodian/audit"
	"custodian/internal/failpoint"
	"custodian/transfer/integrity"
)

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
