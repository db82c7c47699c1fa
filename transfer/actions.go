package transfer

import (
	"context"
	"errors"
	"fmt"
	"path"

	"custodian/audit"
)

// Errors of officer actions on datasets.
var (
	// ErrNoDataset: no dataset has that ID.
	ErrNoDataset = errors.New("no such dataset")
	// ErrState: the action does not apply to the dataset's state.
	ErrState = errors.New("action not allowed in this state")
)

// Repull fetches a quarantined dataset's remote file again, in the same
// single pass, and records the new receipt as the dataset's new state. The
// earlier object stays encrypted in the vault, listed in PriorObjects, until
// it is destroyed with approval. The reason is required and checked by the
// service layer (service.Repull), which calls this.
func (r *Runner) Repull(ctx context.Context, id, actor, reason string) (FileOutcome, error) {
	d, ok, err := r.Ledger.Dataset(id)
	if err != nil {
		return FileOutcome{}, err
	}
	if !ok {
		return FileOutcome{}, fmt.Errorf("%w: %q", ErrNoDataset, id)
	}
	if len(audit.Next(audit.EvDatasetRepulled, d.State)) == 0 {
		return FileOutcome{}, fmt.Errorf("%w: dataset %s is %s; only quarantined datasets can be pulled again", ErrState, id, d.State)
	}
	cfg := r.CurrentConfig()
	job, ok := cfg.Job(d.Job)
	if !ok || job.Source != d.Source || path.Dir(d.RemotePath) != job.RemoteDir {
		return FileOutcome{}, fmt.Errorf("%w: dataset %s came from job %s, which no longer pulls %s", ErrState, id, d.Job, d.RemotePath)
	}
	j, err := newJobRun(r, cfg, job, RunRequest{Job: job.Name, Actor: actor, Trigger: "repull"},
		&RunResult{}, r.Log.With().Str("job", job.Name).Str("dataset", id).Logger())
	if err != nil {
		return FileOutcome{}, err
	}
	remote, err := j.dial(ctx)
	if err != nil {
		return FileOutcome{}, err
	}
	defer remote.Close()
	sess, err := remote.session(ctx)
	if err != nil {
		return FileOutcome{}, err
	}
	defer remote.release(sess)
	// The same planning and ingest path as a run, for this one file; the
	// receipt becomes the quarantined dataset's new state.
	c, err := j.planOne(sess, d.RemotePath)
	if err != nil {
		return FileOutcome{}, err
	}
	c.repullOf, c.repullReason = id, reason
	nd, err := j.admit(ctx, sess, c)
	if err != nil {
		return FileOutcome{}, err
	}
	if nd.State != audit.StateQuarantined {
		j.afterPull(sess, nd.ID, nd.RemotePath, nd.RemoteSize, nd.RemoteMtime)
	}
	return outcomeOf(c.name, nd), nil
}
