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
// (quarantine, hold, a missing or bad checksum file) are outcomes, not
// errors.
func (j *jobRun) ingest(ctx context.Context, remote *Remote, c *candidate) error {
	sess, err := remote.session(ctx)
	if err != nil {
		return err
	}
	defer remote.release(sess)
	if verdict, err := j.prepare(ctx, sess, c); verdict != nil || err != nil {
		if verdict != nil {
			j.fail(c, verdict) // a verdict for this run; the next run looks again
		}
		return err
	}
	d, err := j.admit(ctx, sess, c)
	if errors.Is(err, errAlreadyIngested) {
		j.skipped()
		return nil
	}
	if err != nil {
		return err
	}
	j.admitted(sess, c, d)
	return nil
}

// prepare starts reading a small file while it reads what the provider
// declared for c (its sidecar). verdict is a missing or bad checksum file,
// which fails c for this run; err is a transfer fault.
func (j *jobRun) prepare(ctx context.Context, sess *sftp.Client, c *candidate) (verdict, err error) {
	j.prefetch(ctx, sess, c) // a small file is read while its sidecar is
	if c.exp.Algo != "" {
		return nil, nil
	}
	// Each worker reads its own file's sidecar: round trips in parallel.
	if err := j.expectations(sess, c, j.names, j.manifests); err != nil {
		if errors.Is(err, ErrChecksumFile) {
			return err, nil
		}
		return nil, err
	}
	return nil, nil
}

// skipped counts a file another run committed first.
func (j *jobRun) skipped() {
	j.mu.Lock()
	j.res.Skipped++
	j.mu.Unlock()
}

// admitted reports a committed dataset and applies after_pull to it (not
// without a session: the next run completes it).
func (j *jobRun) admitted(sess *sftp.Client, c *candidate, d audit.Dataset) {
	o := outcomeOf(c.name, d)
	o.Resent = c.resent
	j.add(o)
	j.log.Info().Str("dataset", d.ID).Str("remote", c.remote).Int64("bytes", d.Size).Int64("records", d.Records).Str("state", string(d.State)).Msg("file ingested")
	failpoint.Hit("ingest.after-ledger-commit")
	if d.State != audit.StateQuarantined && sess != nil {
		j.afterPull(sess, d.ID, d.RemotePath, d.RemoteSize, d.RemoteMtime)
	}
}

// admit takes the planned file c in: receive it into a durable vault object,
// judge it, and commit its dataset to the ledger. If the commit fails, the
// object is removed again. A job run and Repull both take files in here;
// what differs (a new dataset, a re-sent file, or a quarantined dataset
// pulled again) is said by c.
func (j *jobRun) admit(ctx context.Context, sess *sftp.Client, c *candidate) (audit.Dataset, error) {
	obs, objectID, err := j.receive(ctx, sess, c)
	if err != nil {
		return audit.Dataset{}, err
	}
	return j.commitReceived(c, obs, objectID)
}

// commitReceived judges a received file and commits its dataset; if the
// commit fails, the object is removed again.
func (j *jobRun) commitReceived(c *candidate, obs Observed, objectID string) (audit.Dataset, error) {
	d := j.dataset(c, obs, objectID)
	failpoint.Hit("ingest.after-object-commit")
	if err := j.commit(&d, c); err != nil {
		j.dropObject(d.ObjectID)
		return d, err
	}
	return d, nil
}

// dropObject removes an object whose dataset never reached the ledger.
func (j *jobRun) dropObject(id string) {
	if err := j.r.Store.Remove(id); err != nil {
		j.log.Error().Err(err).Str("object", id).Msg("cannot remove object after failed commit; it will be removed as an orphan on restart")
	}
}

// receive takes one file in a single streaming pass into a durable vault
// object and returns what it observed of the bytes and the object's ID.
// Any error is a transfer fault and leaves no object behind; on success
// c.size and c.mtime are the file's listing, unchanged while it was read.
func (j *jobRun) receive(ctx context.Context, sess *sftp.Client, c *candidate) (Observed, string, error) {
	var obs Observed
	obj, err := j.r.Store.Create(ctx)
	if err != nil {
		return obs, "", fmt.Errorf("vault: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			obj.Abort()
		}
	}()
	if p, ok := obj.(interface{ Preallocate(int64) error }); ok {
		if err := p.Preallocate(c.size); err != nil {
			return obs, "", err
		}
	}

	sum := sha256.New()
	checkers := []io.Writer{sum}
	var provider hash.Hash
	if !c.exp.Unchecked && c.exp.Algo != integrity.SHA256 {
		if provider = c.exp.Algo.New(); provider == nil {
			return obs, "", fmt.Errorf("%s: unknown digest algorithm %q", c.remote, c.exp.Algo)
		}
		checkers = append(checkers, provider)
	}
	counter := integrity.NewCounter(j.countSpec(c.name))
	checkers = append(checkers, counter)

	readPath := c.readPath
	if readPath == "" {
		readPath = c.remote
	}
	// The listing's size and time stand for the file as opened; the state
	// after the last byte (readFile: stat and fstat) must agree with them.
	listedSize, listedTime := c.size, c.mtime
	pipe := newPipeline(obj, checkers...)
	if j.req.Progress != nil {
		total := listedSize
		pipe.progress = func(n int64) { j.req.Progress(Progress{File: c.name, Done: n, Total: total}) }
	}
	// Over several sessions at once, or read whole already (fetch.go).
	n, st2, err := j.readFile(ctx, sess, c, readPath, pipe)
	if cerr := pipe.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return obs, "", fmt.Errorf("receiving %s after %d bytes: %w", c.remote, n, err)
	}
	counter.Close()
	// The file must be the one listed, unchanged while we read it.
	c.size, c.mtime = st2.Size(), st2.ModTime().UTC() // a retry compares with what we saw last
	if st2.Size() != listedSize || !st2.ModTime().Equal(listedTime) {
		return obs, "", fmt.Errorf("%w: %s was %d bytes when listed and %d after reading", ErrChanged, c.remote, listedSize, st2.Size())
	}
	if n != listedSize {
		return obs, "", fmt.Errorf("%w: received %d bytes of %s, the server reports %d", ErrShort, n, c.remote, listedSize)
	}
	obs = Observed{Size: n, SHA256: hex.EncodeToString(sum.Sum(nil)), Count: counter.Result()}
	obs.Digest = obs.SHA256
	if provider != nil {
		obs.Digest = hex.EncodeToString(provider.Sum(nil))
	}

	failpoint.Hit("ingest.before-object-commit")
	info, err := obj.Close()
	if err != nil {
		return obs, "", fmt.Errorf("vault: %w", err)
	}
	committed = true
	// Durable before the ledger may refer to it. Files finishing together
	// share one flush; a crash before it leaves an orphan, removed on start.
	if err := j.r.Store.Flush(); err != nil {
		j.dropObject(info.ID)
		return obs, "", fmt.Errorf("vault: %w", err)
	}
	return obs, info.ID, nil
}

// dataset is the ledger record of the received file c: what was observed,
// what the provider declared, how it was checked, and judge's verdict. It
// has no ID yet; commit gives it one.
func (j *jobRun) dataset(c *candidate, o Observed, objectID string) audit.Dataset {
	state, reasons := judge(c.exp, o)
	d := audit.Dataset{
		Job: j.job.Name, Source: j.job.Source, Kind: j.job.Kind,
		RemotePath: c.remote, RemoteSize: c.size, RemoteMtime: c.mtime,
		Size: o.Size, SHA256: o.SHA256, Records: o.Count.Records, DeclaredRecords: o.Count.Declared,
		Purpose: j.job.Purpose, Custodian: j.custodian(),
		Integrity: integrity.EncodeSpec(j.countSpec(c.name)), Supersedes: c.supersedes,
		State: state, Reason: strings.Join(reasons, "; "), ObjectID: objectID,
	}
	if c.exp.Records >= 0 {
		d.DeclaredRecords = c.exp.Records
	}
	in := d.Integrity
	in[integrity.KeyChecksum] = j.job.Checksum
	if c.exp.Algo != "" && !c.exp.Unchecked {
		in[integrity.KeyDigestAlgo] = string(c.exp.Algo)
		in[integrity.KeyDeclaredDigest] = c.exp.Digest
		if c.exp.Algo != integrity.SHA256 {
			in[integrity.KeyReceivedDigest] = o.Digest
		}
	}
	if c.sidecar != nil {
		// A later run compares the sidecar's listing with this one and
		// reads it again only if it changed.
		in[integrity.KeySidecar] = c.sidecar.Name()
		in[integrity.KeySidecarSize] = strconv.FormatInt(c.sidecar.Size(), 10)
		in[integrity.KeySidecarMtime] = c.sidecar.ModTime().UTC().Format(time.RFC3339Nano)
	}
	if c.linked {
		in[integrity.KeySymlinkTarget] = c.readPath
	}
	if c.seq >= 0 {
		in[integrity.KeySequence] = strconv.FormatInt(c.seq, 10)
	}
	if len(o.Count.Problems) > 0 {
		in[integrity.KeyCountProblems] = strings.Join(o.Count.Problems, "; ")
	}
	if c.exp.Digest != "" && c.exp.Algo.Weak() {
		in[integrity.KeyWarning] = "weak digest md5 accepted by allow_weak"
	}
	return d
}

var errAlreadyIngested = errors.New("already ingested")

// commit records the received dataset d of c on the ledger, in one
// transaction with its event: a new dataset (dataset.received), or, for a
// file pulled again (c.repullOf), the quarantined dataset's new state.
func (j *jobRun) commit(d *audit.Dataset, c *candidate) error {
	if c.repullOf != "" {
		return j.commitRepull(d, c.repullOf, c.repullReason)
	}
	return j.commitNew(d, c.resent)
}

// commitNew records the dataset and its receipt event in one transaction,
// refusing a remote file another run got to first. A re-sent file
// (d.Supersedes set) is recorded only if the remote file still names the
// dataset it supersedes, and that dataset's timeline says so.
func (j *jobRun) commitNew(d *audit.Dataset, resent string) error {
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
		if w := d.Integrity[integrity.KeyWarning]; w != "" {
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

// commitRepull records d as the new state of the quarantined dataset id,
// pulled again for reason: the same dataset ID, the earlier objects in
// PriorObjects, and a dataset.repulled event. It fails if the dataset left
// quarantine meanwhile.
func (j *jobRun) commitRepull(d *audit.Dataset, id, reason string) error {
	return j.r.Ledger.Update(func(tx *audit.Tx) error {
		cur, ok, err := tx.Dataset(id)
		if err != nil {
			return err
		}
		if !ok || cur.State != audit.StateQuarantined {
			return fmt.Errorf("%w: dataset %s changed state while it was pulled again", ErrState, id)
		}
		d.ID, d.ReceivedAt = id, j.r.now()
		d.UpdatedAt = d.ReceivedAt
		d.PriorObjects = append(append([]string(nil), cur.PriorObjects...), cur.ObjectID)
		d.Supersedes = cur.Supersedes
		_, err = tx.Append(audit.Event{Time: d.ReceivedAt, Actor: j.req.Actor, Type: audit.EvDatasetRepulled, Job: j.job.Name, Dataset: d,
			Details: map[string]string{"reason": strings.TrimSpace(reason), "previous_object": cur.ObjectID, "previous_sha256": cur.SHA256,
				"state": string(d.State), "sha256": d.SHA256}})
		return err
	})
}

func (j *jobRun) custodian() string {
	if j.job.Officer != "" {
		return j.job.Officer
	}
	return j.req.Actor
}

func newDatasetID() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return "ds-" + hex.EncodeToString(b[:])
}
