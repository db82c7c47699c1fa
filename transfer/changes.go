package transfer

import (
	"context"
	"errors"

	"custodian/audit"
)

// ingestChanges takes a job's change files with several in flight, as
// ingestAll does for extracts, but commits them one by one in sequence
// order, so the ledger records the chain in order and nothing after a gap
// is accepted: once a file fails, the files after it are not committed
// (their objects are dropped) and wait for it, to be retried in this run
// or taken in order by a later one. At most workers files are received and
// not yet committed at any time, which bounds the vault objects and memory
// in flight. It returns the candidates to retry, as ingestAll does.
func (j *jobRun) ingestChanges(ctx context.Context, remote *Remote, cands []*candidate, last bool, workers int) []*candidate {
	type result struct {
		obs     Observed
		object  string
		err     error // a transfer fault (retried)
		verdict error // the checksum file is missing or bad: fails for this run
		done    chan struct{}
	}
	results := make([]*result, len(cands))
	for i := range results {
		results[i] = &result{done: make(chan struct{})}
	}
	slots := make(chan struct{}, workers)
	go func() {
		for i, c := range cands {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				for _, r := range results[i:] {
					r.err = ctx.Err()
					close(r.done)
				}
				return
			}
			go func(c *candidate, r *result) {
				defer close(r.done)
				sess, err := remote.session(ctx)
				if err != nil {
					r.err = err
					return
				}
				defer remote.release(sess)
				if r.verdict, r.err = j.prepare(ctx, sess, c); r.verdict != nil || r.err != nil {
					return
				}
				r.obs, r.object, r.err = j.receive(ctx, sess, c)
			}(c, results[i])
		}
	}()

	var retry []*candidate
	var gap *candidate
	for i, c := range cands {
		r := results[i]
		<-r.done
		func() {
			defer func() {
				select { // free this file's slot (none was taken if the run was cancelled first)
				case <-slots:
				default:
				}
			}()
			if gap != nil {
				if r.object != "" {
					j.dropObject(r.object)
				}
				if last || ctx.Err() != nil {
					j.waitBehind(c, gap)
				} else {
					retry = append(retry, c)
				}
				return
			}
			switch {
			case r.verdict != nil:
				j.fail(c, r.verdict) // a verdict for this run; the next run looks again
				gap = c
				return
			case r.err != nil:
				j.log.Warn().Str("remote", c.remote).Err(r.err).Msg("transfer failed")
				gap = c
				if last || ctx.Err() != nil {
					j.fail(c, r.err)
				} else {
					j.r.event(audit.Event{Actor: j.req.Actor, Type: audit.EvFileTransferFailed, Job: j.job.Name,
						Details: map[string]string{"remote_path": c.remote, "error": r.err.Error(), "will_retry": "true"}})
					retry = append(retry, c)
				}
				return
			}
			d, err := j.commitReceived(c, r.obs, r.object)
			if errors.Is(err, errAlreadyIngested) {
				j.skipped()
				return
			}
			if err != nil {
				j.log.Warn().Str("remote", c.remote).Err(err).Msg("commit failed")
				gap = c
				if last || ctx.Err() != nil {
					j.fail(c, err)
				} else {
					retry = append(retry, c)
				}
				return
			}
			sess, _ := remote.session(ctx) // nil once the run is cancelled: after_pull waits for the next run
			j.admitted(sess, c, d)
		}()
	}
	return retry
}
