package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/sftp"

	"custodian/audit"
	"custodian/transfer/integrity"
)

// candidate is a remote file selected for ingest.
type candidate struct {
	name   string
	remote string
	size   int64
	mtime  time.Time
	// exp is what the provider declared (filled in by expectations) and
	// the sequence verdict (exp.Held).
	exp Expected
	seq int64 // the sequence number of a change file, or -1
	// readPath is what is opened and read: remote itself, or the regular
	// file a followed symbolic link points to (linked is then set).
	readPath string
	linked   bool
	sidecar  os.FileInfo // listing of the sidecar the digest came from
	pre      *prefetched // a small file being read whole (fetch.go)
	// A re-sent file: the dataset recorded for this remote name held other
	// bytes; the new delivery supersedes it.
	supersedes string
	resent     string
	// A file pulled again (Repull): the quarantined dataset whose remote
	// file this is, and the officer's reason. The receipt keeps that
	// dataset's ID and becomes its new state (dataset.repulled).
	repullOf     string
	repullReason string
}

// newCandidate is the candidate for the remote file remotePath, read at
// readPath (itself, or a followed link's target) whose listing is fi.
func newCandidate(name, remotePath, readPath string, fi os.FileInfo) *candidate {
	return &candidate{name: name, remote: remotePath, readPath: readPath, linked: readPath != remotePath,
		size: fi.Size(), mtime: fi.ModTime().UTC(), exp: Expected{Size: -1, Records: -1}, seq: -1}
}

// listing is the remote directory as one run sees it.
type listing struct {
	entries   []os.FileInfo
	names     map[string]os.FileInfo
	manifests map[string]integrity.ManifestEntry // checksum manifest only
}

// list reads the remote directory and, for checksum manifest, its manifests.
func (j *jobRun) list(sess *sftp.Client) (*listing, error) {
	entries, err := sess.ReadDir(j.job.RemoteDir)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", j.job.RemoteDir, err)
	}
	l := &listing{entries: entries, names: map[string]os.FileInfo{}}
	for _, e := range entries {
		l.names[e.Name()] = e
	}
	l.manifests, err = j.readManifests(sess, l.names)
	return l, err
}

// resolve decides whether a listed entry is read, and at which path: a
// regular file is read itself, a symbolic link (with follow_symlinks) by
// its target's path, anything else never. why explains a refusal; err is a
// transfer fault.
func (j *jobRun) resolve(sess *sftp.Client, remotePath string, e os.FileInfo) (fi os.FileInfo, readPath, why string, err error) {
	switch {
	case e.Mode().IsRegular():
		return e, remotePath, "", nil
	case e.Mode()&os.ModeSymlink != 0:
		target, tfi, why, err := j.resolveLink(sess, remotePath)
		return tfi, target, why, err
	case e.IsDir():
		return nil, "", "a directory, not a file: only regular files are pulled", nil
	default:
		return nil, "", fmt.Sprintf("not a regular file (type %s): only regular files are pulled", e.Mode().Type()), nil
	}
}

// plan lists the remote directory and decides which files to pull.
func (j *jobRun) plan(ctx context.Context, remote *Remote) ([]*candidate, error) {
	sess, err := remote.session(ctx)
	if err != nil {
		return nil, err
	}
	defer remote.release(sess)
	l, err := j.list(sess)
	if l == nil {
		return nil, err
	}
	if err != nil {
		j.r.event(audit.Event{Actor: j.req.Actor, Type: audit.EvBatchFailed, Job: j.job.Name, Details: map[string]string{"error": err.Error()}})
		return nil, err
	}
	names, manifests := l.names, l.manifests
	var cands []*candidate
	now := j.r.now()
	for _, e := range l.entries {
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
		fi, readPath, why, err := j.resolve(sess, remotePath, e)
		if err != nil {
			return nil, err
		}
		if why != "" {
			j.refuse(name, why, e)
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
		c := newCandidate(name, remotePath, readPath, fi)
		c.supersedes, c.resent = supersedes, resent
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

// planOne plans the one remote file remotePath for Repull, as plan would
// and with its expectations read, but without the run's rules for new
// deliveries (already on the ledger, ready marker, settle time, the batch
// and sequence checks): the officer asked for this file. Its sequence
// number is kept with the receipt as for any change file.
func (j *jobRun) planOne(sess *sftp.Client, remotePath string) (*candidate, error) {
	l, err := j.list(sess)
	if l == nil {
		return nil, err
	}
	name := path.Base(remotePath)
	e, ok := l.names[name]
	if !ok {
		return nil, fmt.Errorf("%s is no longer on the server", remotePath)
	}
	if err != nil {
		return nil, err
	}
	fi, readPath, why, err := j.resolve(sess, remotePath, e)
	if err != nil {
		return nil, err
	}
	if why != "" {
		if e.Mode()&os.ModeSymlink != 0 {
			return nil, fmt.Errorf("%w: %s is %s", ErrState, remotePath, why)
		}
		return nil, fmt.Errorf("%w: %s is no longer a regular file (type %s)", ErrState, remotePath, e.Mode().Type())
	}
	c := newCandidate(name, remotePath, readPath, fi)
	if j.seqRE != nil {
		if s, err := integrity.ParseSequence(j.seqRE, name); err == nil {
			c.seq = s
		}
	}
	if j.job.Checksum == "manifest" {
		if _, ok := l.manifests[name]; !ok {
			return nil, fmt.Errorf("%w: %s is not in the manifest", ErrChecksumFile, name)
		}
	}
	if err := j.expectations(sess, c, l.names, l.manifests); err != nil {
		return nil, err
	}
	return c, nil
}

func (j *jobRun) isCompanion(name string) bool {
	for _, suf := range sidecarSuffixes {
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
		if recorded := d.Integrity[integrity.KeyDeclaredDigest]; d.Integrity[integrity.KeyDigestAlgo] == string(algo) && !strings.EqualFold(digest, recorded) {
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
	if d.Integrity[integrity.KeyDigestAlgo] != string(algo) {
		return ""
	}
	if r := d.Integrity[integrity.KeyReceivedDigest]; r != "" {
		return r
	}
	// Datasets recorded before received_digest: the declared digest is
	// what was received unless the dataset failed its checks.
	switch d.State {
	case audit.StateVerified, audit.StateHeld:
		return d.Integrity[integrity.KeyDeclaredDigest]
	}
	return ""
}
