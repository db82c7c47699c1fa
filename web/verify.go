package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"time"

	"custodian/audit"
	"custodian/service"
)

// "Verify now" is long work at a million events, so it is run like a job
// run: the POST starts it as daemon-owned work (Options.Go) and redirects
// to its page, which shows a <progress> from audit.VerifyOptions.Progress
// and refreshes itself (meta refresh, no script) until the report is
// there. The service call is the same VerifyLedger the API makes, which
// records audit.verified on the ledger as before. The page is its
// starter's only, like a run's; finished verifications are kept in memory,
// at most maxVerifications of them and for a day.

// maxVerifications bounds the finished verifications kept for their pages.
const maxVerifications = 16

// verifications are the verifications started here.
type verifications struct {
	mu    sync.Mutex
	m     map[string]*verification
	order []string // IDs, oldest first
}

type verification struct {
	ID, By  string
	Started time.Time

	mu          sync.Mutex
	done, total int64
	report      *audit.Report
	err         error
	finished    bool
}

func (v *verification) isFinished() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.finished
}

// running returns by's verification that has not finished, if any.
func (vs *verifications) running(by string) *verification {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	for _, id := range vs.order {
		if v := vs.m[id]; v.By == by && !v.isFinished() {
			return v
		}
	}
	return nil
}

// add keeps v, and forgets the oldest finished verifications beyond
// maxVerifications and those older than a day.
func (vs *verifications) add(v *verification) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if vs.m == nil {
		vs.m = map[string]*verification{}
	}
	vs.m[v.ID] = v
	vs.order = append(vs.order, v.ID)
	finished := 0
	for _, id := range vs.order {
		if vs.m[id].isFinished() {
			finished++
		}
	}
	keep := vs.order[:0]
	for _, id := range vs.order {
		old := vs.m[id]
		if old.isFinished() && (finished > maxVerifications || time.Since(old.Started) > 24*time.Hour) {
			delete(vs.m, id)
			finished--
			continue
		}
		keep = append(keep, id)
	}
	vs.order = keep
}

func (vs *verifications) get(id string) (*verification, bool) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	v, ok := vs.m[id]
	return v, ok
}

// verify starts a verification of the whole ledger that belongs to the
// daemon and redirects to its page; a person whose verification still
// runs is sent to that one instead of starting another.
func (c *Console) verify(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if v := c.verifs.running(a.Name); v != nil {
		http.Redirect(w, r, "/ledger/verify/"+v.ID, http.StatusSeeOther)
		return nil
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	v := &verification{ID: hex.EncodeToString(b[:]), By: a.Name, Started: time.Now()}
	c.verifs.add(v)
	start := func(ctx context.Context) {
		rep, err := c.svc.VerifyLedger(ctx, a, audit.VerifyOptions{Progress: func(done, total int64) {
			v.mu.Lock()
			v.done, v.total = done, total
			v.mu.Unlock()
		}})
		v.mu.Lock()
		v.report, v.err, v.finished = rep, err, true
		if rep != nil {
			v.done, v.total = rep.Events, rep.Events
		}
		v.mu.Unlock()
		if err != nil && c.opts.OnError != nil {
			c.opts.OnError("/ledger/verify", a, service.ProblemOf(err).Status, err)
		}
	}
	if c.opts.Go != nil {
		c.opts.Go(start)
	} else {
		go start(context.Background())
	}
	http.Redirect(w, r, "/ledger/verify/"+v.ID, http.StatusSeeOther)
	return nil
}

// verifyView is a verification's page: its progress, then its report.
type verifyView struct {
	ID          string
	Started     time.Time
	Done, Total int64
	Finished    bool
	Refresh     bool
	Report      *audit.Report
	Error       *service.Problem
}

func (c *Console) verifyPage(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	v, ok := c.verifs.get(r.PathValue("id"))
	if !ok || v.By != a.Name {
		return fmt.Errorf("%w: no verification %s of yours", service.ErrNotFound, r.PathValue("id"))
	}
	v.mu.Lock()
	d := verifyView{ID: v.ID, Started: v.Started, Done: v.done, Total: v.total, Finished: v.finished, Refresh: !v.finished, Report: v.report}
	if v.err != nil {
		p := service.ProblemOf(v.err)
		d.Error = &p
	}
	v.mu.Unlock()
	c.render(w, http.StatusOK, "verify", c.view(r, a, "verify.title", d))
	return nil
}
