package transfer

import (
	"errors"
	"fmt"
	"os"
	"path"
	"time"

	"github.com/pkg/sftp"

	"custodian/audit"
	"custodian/configs"
)

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
