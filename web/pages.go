package web

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"custodian/accounts"
	"custodian/audit"
	"custodian/proof"
	"custodian/service"
	"custodian/transfer"
)

// loginData is the login form's state: which fields are needed next.
type loginData struct {
	Username   string
	Error      string // message key
	Detail     string // the service's explanation
	NeedChange bool
	NeedTOTP   bool
	Next       string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, http.StatusOK, "login", c.view(r, service.Actor{}, "login.title", loginData{Next: localPath(r.URL.Query().Get("next"))}))
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		c.problem(w, r, service.Actor{}, fmt.Errorf("%w: form: %v", service.ErrInvalid, err))
		return
	}
	d := loginData{Username: strings.TrimSpace(r.PostFormValue("username")), Next: localPath(r.PostFormValue("next"))}
	req := service.LoginRequest{Username: d.Username, Password: r.PostFormValue("password"),
		NewPassword: r.PostFormValue("new_password"), TOTP: strings.TrimSpace(r.PostFormValue("totp"))}
	if req.NewPassword != "" && req.NewPassword != r.PostFormValue("new_password2") {
		d.NeedChange, d.Error = true, "login.mismatch"
		c.render(w, http.StatusBadRequest, "login", c.view(r, service.Actor{}, "login.title", d))
		return
	}
	res, err := c.svc.Login(r.Context(), origin(r), req)
	if err != nil {
		d.Error = errLoginKind(err)
		d.NeedChange = d.Error == "login.change" || (req.NewPassword != "" && errors.Is(err, service.ErrInvalid))
		d.NeedTOTP = d.Error == "login.need_totp" || req.TOTP != ""
		if d.Error == "login.invalid" || d.Error == "login.unavailable" {
			d.Detail = err.Error()
		}
		c.render(w, service.ProblemOf(err).Status, "login", c.view(r, service.Actor{}, "login.title", d))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: res.Token, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	next := d.Next
	if res.Restricted != "" {
		next = "/account"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	err := c.svc.Logout(r.Context(), a, token(r))
	clearSession(w)
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/login?m=bye", http.StatusSeeOther)
	return nil
}

// clearSession tells the browser to forget the session cookie.
func clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// setLang keeps the chosen language in a cookie (the browser's choice, not
// the server's state) and returns to the page.
func (c *Console) setLang(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	code := r.PostFormValue("lang")
	if _, ok := catalogs[code]; ok {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: code, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: 365 * 24 * 3600})
	}
	http.Redirect(w, r, localPath(r.PostFormValue("back")), http.StatusSeeOther)
}

// home shows each of the person's roles what waits for them; a section
// appears only when the role matrix allows what it reads.
type homeData struct {
	Status    *service.Status
	Today     []service.JobStatus
	Failed    []service.JobStatus
	Held      service.DatasetPage
	Quar      service.DatasetPage
	Mine      []service.RequestView
	Waiting   []service.RequestView // approved, for this person to carry out
	Inbox     []service.RequestView
	InboxKind map[string]int
	Execute   []service.RequestView
	Locked    []service.AccountView
	Ledger    bool
	CPSize    int64
	Kept      *proof.Kept
	Open      []service.Review // sampling reviews not closed yet
}

func (c *Console) home(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	ctx := r.Context()
	var d homeData
	can := func(act service.Action) bool { return service.Permits(a.Roles, act) }
	if can(service.ActStatus) {
		st, err := c.svc.Status(ctx, a)
		if err != nil {
			return err
		}
		d.Status = &st
		if st.Daemon != nil && can(service.ActRunJob) {
			y, m, dd := time.Now().In(c.opts.Location).Date()
			for _, j := range st.Daemon.Jobs {
				if j.LastRun == nil {
					continue
				}
				if fy, fm, fd := j.LastRun.Finished.In(c.opts.Location).Date(); fy == y && fm == m && fd == dd {
					d.Today = append(d.Today, j)
				}
				if j.LastRun.Outcome != "success" {
					d.Failed = append(d.Failed, j)
				}
			}
		}
	}
	if can(service.ActRelease) {
		var err error
		if d.Held, err = c.svc.DatasetPage(ctx, a, service.DatasetQuery{State: string(audit.StateHeld), Limit: 10}); err != nil {
			return err
		}
		if d.Quar, err = c.svc.DatasetPage(ctx, a, service.DatasetQuery{State: string(audit.StateQuarantined), Limit: 10}); err != nil {
			return err
		}
	}
	if can(service.ActReadRequests) {
		open, err := c.svc.Requests(ctx, a, true)
		if err != nil {
			return err
		}
		d.InboxKind = map[string]int{}
		for _, q := range open {
			if q.Requester == a.Name {
				d.Mine = append(d.Mine, q)
			}
			if c.svc.MayStep(a, q, service.StepApprove) {
				d.Inbox = append(d.Inbox, q)
				d.InboxKind[string(q.Kind)]++
			}
			if c.svc.MayStep(a, q, service.StepExecute) {
				d.Execute = append(d.Execute, q)
			}
			if act := service.CarriedOutBy(q.Kind); act != "" && c.svc.MayCarryOut(a, q, act) {
				d.Waiting = append(d.Waiting, q)
			}
		}
	}
	if can(service.ActExecuteRequest) && can(service.ActReadAccounts) {
		list, err := c.svc.Accounts(ctx, a)
		if err != nil {
			return err
		}
		for _, x := range list {
			if x.State != string(accounts.StateActive) {
				d.Locked = append(d.Locked, x)
			}
		}
	}
	if can(service.ActVerifyLedger) {
		d.Ledger = true
		cp, err := c.svc.Checkpoint(ctx, a)
		if err != nil {
			return err
		}
		d.CPSize, _ = proof.CheckpointSize([]byte(cp.Checkpoint))
		kept, err := c.svc.KeptCheckpoints(ctx, a)
		if err != nil {
			return err
		}
		if len(kept) > 0 {
			k := kept[len(kept)-1]
			d.Kept = &k
		}
		if can(service.ActReadReview) {
			rs, err := c.svc.Reviews(ctx, a)
			if err != nil {
				return err
			}
			for _, rv := range rs {
				if rv.Closed == nil {
					d.Open = append(d.Open, rv)
				}
			}
		}
	}
	c.render(w, http.StatusOK, "home", c.view(r, a, "nav.home", d))
	return nil
}

func (c *Console) jobs(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	st, err := c.svc.Status(r.Context(), a)
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "jobs", c.view(r, a, "nav.jobs", st))
	return nil
}

// runJob starts a run that belongs to the daemon and shows its page.
func (c *Console) runJob(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	job := r.PathValue("name")
	var b [8]byte
	_, _ = rand.Read(b[:])
	rn := &run{ID: hex.EncodeToString(b[:]), Job: job, By: a.Name, Started: time.Now(), progress: map[string]transfer.Progress{}}
	c.runs.add(rn)
	start := func(ctx context.Context) {
		res, err := c.svc.RunJob(ctx, a, job, "manual", func(p transfer.Progress) {
			rn.mu.Lock()
			defer rn.mu.Unlock()
			if _, ok := rn.progress[p.File]; !ok {
				rn.order = append(rn.order, p.File)
			}
			rn.progress[p.File] = p
		})
		rn.mu.Lock()
		rn.result, rn.err, rn.done = res, err, true
		rn.mu.Unlock()
	}
	if c.opts.Go != nil {
		c.opts.Go(start)
	} else {
		go start(context.Background())
	}
	http.Redirect(w, r, "/runs/"+rn.ID, http.StatusSeeOther)
	return nil
}

func (rs *runs) add(rn *run) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.m == nil {
		rs.m = map[string]*run{}
	}
	for id, old := range rs.m { // runs are shown for a day
		if time.Since(old.Started) > 24*time.Hour {
			delete(rs.m, id)
		}
	}
	rs.m[rn.ID] = rn
}

// runView is a run's page: its progress so far, then its outcome.
type runView struct {
	ID, Job  string
	Started  time.Time
	Done     bool
	Files    []transfer.Progress
	Result   *transfer.RunResult
	Error    *service.Problem
	Refresh  bool
	Outcomes []transfer.FileOutcome
}

func (c *Console) runPage(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	c.runs.mu.Lock()
	rn, ok := c.runs.m[r.PathValue("id")]
	c.runs.mu.Unlock()
	if !ok || rn.By != a.Name {
		return fmt.Errorf("%w: no run %s of yours", service.ErrNotFound, r.PathValue("id"))
	}
	rn.mu.Lock()
	v := runView{ID: rn.ID, Job: rn.Job, Started: rn.Started, Done: rn.done, Result: rn.result, Refresh: !rn.done}
	for _, f := range rn.order {
		v.Files = append(v.Files, rn.progress[f])
	}
	if rn.err != nil {
		p := service.ProblemOf(rn.err)
		v.Error = &p
	}
	if rn.result != nil {
		v.Outcomes = rn.result.Files
	}
	rn.mu.Unlock()
	c.render(w, http.StatusOK, "run", c.view(r, a, "run.title", v))
	return nil
}

// datasetsData is the list page: the filter as given, and one page.
type datasetsData struct {
	Q      url.Values
	Page   service.DatasetPage
	Jobs   []string
	States []audit.State
	Prev   string
	Next   string
	First  int
	Last   int
}

const pageSize = 50

func (c *Console) datasets(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	qv := r.URL.Query()
	q := service.DatasetQuery{Job: qv.Get("job"), State: qv.Get("state"), Purpose: strings.TrimSpace(qv.Get("purpose")),
		Unit: strings.TrimSpace(qv.Get("unit")), Limit: pageSize}
	var err error
	if q.Since, err = day(qv.Get("since"), c.opts.Location, 0); err != nil {
		return err
	}
	if q.Until, err = day(qv.Get("until"), c.opts.Location, 1); err != nil {
		return err
	}
	if s := qv.Get("offset"); s != "" {
		if q.Offset, err = strconv.Atoi(s); err != nil || q.Offset < 0 {
			return fmt.Errorf("%w: offset: %q is not 0 or more", service.ErrInvalid, s)
		}
	}
	page, err := c.svc.DatasetPage(r.Context(), a, q)
	if err != nil {
		return err
	}
	st, err := c.svc.Status(r.Context(), a)
	if err != nil {
		return err
	}
	d := datasetsData{Q: qv, Page: page, Jobs: st.Jobs, States: audit.States, First: q.Offset + 1, Last: q.Offset + len(page.Datasets)}
	link := func(off int) string {
		v := url.Values{}
		for k, vs := range qv {
			if k != "offset" && len(vs) > 0 && vs[0] != "" {
				v.Set(k, vs[0])
			}
		}
		v.Set("offset", strconv.Itoa(off))
		return "/datasets?" + v.Encode()
	}
	if q.Offset > 0 {
		d.Prev = link(max(0, q.Offset-pageSize))
	}
	if q.Offset+len(page.Datasets) < page.Total {
		d.Next = link(q.Offset + pageSize)
	}
	c.render(w, http.StatusOK, "datasets", c.view(r, a, "nav.datasets", d))
	return nil
}

// day reads a YYYY-MM-DD date in loc as the start of that day plus
// addDays (an "until" day includes the whole day).
func day(s string, loc *time.Location, addDays int) (time.Time, error) {
	if s = strings.TrimSpace(s); s == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation(time.DateOnly, s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: date %q: use YYYY-MM-DD", service.ErrInvalid, s)
	}
	return t.AddDate(0, 0, addDays), nil
}

type datasetData struct {
	service.DatasetDetail
	CanRelease bool
	CanRepull  bool
	CanDestroy bool
	// The request forms about the data (requests.go).
	CanExport, CanEmergency, CanExceptional bool
	Purposes                                []string
	FormError                               *formError
}

func (c *Console) datasetData(r *http.Request, a service.Actor, id string) (datasetData, error) {
	det, err := c.svc.Dataset(r.Context(), a, id)
	if err != nil {
		return datasetData{}, err
	}
	st := audit.State(det.Dataset.State)
	d := datasetData{DatasetDetail: det,
		CanRelease: service.Permits(a.Roles, service.ActRelease) && len(audit.Next(audit.EvDatasetReleased, st)) > 0,
		CanRepull:  service.Permits(a.Roles, service.ActRepull) && len(audit.Next(audit.EvDatasetRepulled, st)) > 0,
		CanDestroy: service.Permits(a.Roles, service.ActRequestDestruction) && st.Stored()}
	dataRequestForms(&d, a)
	return d, nil
}

func (c *Console) dataset(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	d, err := c.datasetData(r, a, r.PathValue("id"))
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "dataset", c.view(r, a, "dataset.title", d))
	return nil
}

func form(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("%w: form: %v", service.ErrInvalid, err)
	}
	return nil
}

func (c *Console) release(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := c.svc.Release(r.Context(), a, id, r.PostFormValue("reason")); err != nil {
		return err
	}
	seeOther(w, r, "/datasets/"+url.PathEscape(id), "released")
	return nil
}

// pauseJob and resumeJob stop a job's runs, with a reason, and let it run
// again.
func (c *Console) pauseJob(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	if _, err := c.svc.PauseJob(r.Context(), a, r.PathValue("name"), r.PostFormValue("reason")); err != nil {
		return err
	}
	seeOther(w, r, "/jobs", "done")
	return nil
}

func (c *Console) resumeJob(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	if _, err := c.svc.ResumeJob(r.Context(), a, r.PathValue("name"), r.PostFormValue("reason")); err != nil {
		return err
	}
	seeOther(w, r, "/jobs", "done")
	return nil
}

func (c *Console) repull(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := c.svc.Repull(context.WithoutCancel(r.Context()), a, id, r.PostFormValue("reason")); err != nil {
		return err
	}
	seeOther(w, r, "/datasets/"+url.PathEscape(id), "done")
	return nil
}

type requestsData struct {
	Pending bool
	Kind    string // the kind shown, "" for all
	Kinds   []accounts.Kind
	List    []service.RequestView
}

func (c *Console) requests(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	pending := r.URL.Query().Get("pending") == "1"
	list, err := c.svc.Requests(r.Context(), a, pending)
	if err != nil {
		return err
	}
	d := requestsData{Pending: pending, Kinds: accounts.Kinds}
	if k := accounts.Kind(r.URL.Query().Get("kind")); slices.Contains(accounts.Kinds, k) {
		d.Kind = string(k)
		list = slices.DeleteFunc(list, func(q service.RequestView) bool { return q.Kind != k })
	}
	d.List = list
	c.render(w, http.StatusOK, "requests", c.view(r, a, "nav.requests", d))
	return nil
}

type requestData struct {
	Q                                service.RequestView
	Approve, Reject, Cancel, Execute bool
	Executed                         *service.Executed
	X                                *requestExtra // a destruction's datasets, a hand-over's link
}

func (c *Console) request(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	q, err := c.svc.Request(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	d := c.requestData(a, q)
	if d.X, err = c.extra(r, a, q); err != nil {
		return err
	}
	c.render(w, http.StatusOK, "request", c.view(r, a, "request.title", d))
	return nil
}

func (c *Console) requestData(a service.Actor, q service.RequestView) requestData {
	return requestData{Q: q,
		Approve: c.svc.MayStep(a, q, service.StepApprove), Reject: c.svc.MayStep(a, q, service.StepReject),
		Cancel: c.svc.MayStep(a, q, service.StepCancel), Execute: c.svc.MayStep(a, q, service.StepExecute)}
}

func (c *Console) fileRequest(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	f := r.PostForm
	req := service.AccountRequest{Kind: accounts.Kind(f.Get("kind")), Username: strings.TrimSpace(f.Get("username")), Reason: f.Get("reason")}
	spec := &accounts.AccountSpec{FullName: strings.TrimSpace(f.Get("full_name")), EmployeeID: strings.TrimSpace(f.Get("employee_id")),
		Unit: strings.TrimSpace(f.Get("unit"))}
	for _, role := range f["roles"] {
		spec.Roles = append(spec.Roles, accounts.Role(role))
	}
	var err error
	if ref := strings.TrimSpace(f.Get("agreement")); ref != "" {
		var ends time.Time
		if ends, err = day(f.Get("agreement_ends"), time.Local, 0); err == nil {
			spec.Contractor = &accounts.Agreement{Reference: ref, Ends: ends}
		}
	}
	if spec.FullName != "" || spec.EmployeeID != "" || spec.Unit != "" || len(spec.Roles) > 0 || spec.Contractor != nil {
		req.Account = spec
	}
	var q service.RequestView
	if err == nil {
		q, err = c.svc.FileAccountRequest(r.Context(), a, req)
	}
	if err != nil {
		if c.invalid(r, a, err) { // shown beside the form, with what was typed
			d := newRequestOf(a)
			d.FormError = &formError{Form: "account", Detail: service.ProblemOf(err).Detail, Values: f}
			c.render(w, http.StatusBadRequest, "newrequest", c.view(r, a, "newrequest.title", d))
			return nil
		}
		return err
	}
	seeOther(w, r, "/requests/"+url.PathEscape(q.ID), "filed")
	return nil
}

func (c *Console) step(w http.ResponseWriter, r *http.Request, a service.Actor, msg string, fn func(ctx context.Context, id, reason string) (service.RequestView, error)) error {
	if err := form(w, r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := fn(r.Context(), id, r.PostFormValue("reason")); err != nil {
		return err
	}
	seeOther(w, r, "/requests/"+url.PathEscape(id), msg)
	return nil
}

func (c *Console) approve(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	return c.step(w, r, a, "approved", func(ctx context.Context, id, reason string) (service.RequestView, error) {
		return c.svc.Approve(ctx, a, id, reason)
	})
}

func (c *Console) reject(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	return c.step(w, r, a, "rejected", func(ctx context.Context, id, reason string) (service.RequestView, error) {
		return c.svc.Reject(ctx, a, id, reason)
	})
}

func (c *Console) cancel(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	return c.step(w, r, a, "cancelled", func(ctx context.Context, id, _ string) (service.RequestView, error) {
		return c.svc.CancelRequest(ctx, a, id)
	})
}

// execute carries out an approved account request. A created account's
// one-time password is shown on this response only (no-store), once.
func (c *Console) execute(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	x, err := c.svc.ExecuteRequest(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	d := c.requestData(a, x.Request)
	d.Executed = &x
	c.render(w, http.StatusOK, "request", c.view(r, a, "request.title", d))
	return nil
}

func (c *Console) accountsPage(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	list, err := c.svc.Accounts(r.Context(), a)
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "accounts", c.view(r, a, "nav.accounts", list))
	return nil
}

func (c *Console) accountPage(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	acct, err := c.svc.Account(r.Context(), a, r.PathValue("username"))
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "account", c.view(r, a, "account.title", acct))
	return nil
}

type myAccountData struct {
	Me       service.Whoami
	TOTP     *service.TOTPEnrolment
	Sessions []service.SessionView
}

// myAccountOf gathers the "my account" page: the account, and its live
// sessions with a button to end each.
func (c *Console) myAccountOf(r *http.Request, a service.Actor, totp *service.TOTPEnrolment) (myAccountData, error) {
	me, err := c.svc.Whoami(r.Context(), a)
	if err != nil {
		return myAccountData{}, err
	}
	ss, err := c.svc.Sessions(r.Context(), a)
	if err != nil {
		return myAccountData{}, err
	}
	return myAccountData{Me: me, TOTP: totp, Sessions: ss}, nil
}

func (c *Console) myAccount(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	d, err := c.myAccountOf(r, a, nil)
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "myaccount", c.view(r, a, "nav.myaccount", d))
	return nil
}

// revokeSession ends one of the person's sessions; ending this one is a
// logout.
func (c *Console) revokeSession(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	id := r.PathValue("id")
	if err := c.svc.RevokeSession(r.Context(), a, id); err != nil {
		return err
	}
	if id == a.Session {
		clearSession(w)
		seeOther(w, r, "/login", "bye")
		return nil
	}
	seeOther(w, r, "/account", "session_ended")
	return nil
}

func (c *Console) changePassword(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	if r.PostFormValue("new_password") != r.PostFormValue("new_password2") {
		return fmt.Errorf("%w: the two new passwords differ", service.ErrInvalid)
	}
	if err := c.svc.ChangePassword(r.Context(), a, r.PostFormValue("password"), r.PostFormValue("new_password")); err != nil {
		return err
	}
	// Every session of the account ended: log in with the new password.
	http.Redirect(w, r, "/login?m=password", http.StatusSeeOther)
	return nil
}

// enrollTOTP shows a new secret once, on this response only.
func (c *Console) enrollTOTP(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	e, err := c.svc.EnrollTOTP(r.Context(), a)
	if err != nil {
		return err
	}
	d, err := c.myAccountOf(r, a, &e)
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "myaccount", c.view(r, a, "nav.myaccount", d))
	return nil
}

func (c *Console) confirmTOTP(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	if err := c.svc.ConfirmTOTP(r.Context(), a, strings.TrimSpace(r.PostFormValue("code"))); err != nil {
		return err
	}
	seeOther(w, r, "/account", "done")
	return nil
}

type ledgerData struct {
	Status  service.Status
	CP      service.Checkpoint
	CPSize  int64
	Kept    []proof.Kept
	Verify  bool
	Problem string
	// Prune: the prune request form (requests.go), and the form shown
	// again with the service's explanation.
	Prune     bool
	FormError *formError
}

func (c *Console) ledgerData(r *http.Request, a service.Actor) (ledgerData, error) {
	var d ledgerData
	var err error
	if d.Status, err = c.svc.Status(r.Context(), a); err != nil {
		return d, err
	}
	if d.CP, err = c.svc.Checkpoint(r.Context(), a); err != nil {
		return d, err
	}
	d.CPSize, _ = proof.CheckpointSize([]byte(d.CP.Checkpoint))
	if d.Kept, err = c.svc.KeptCheckpoints(r.Context(), a); err != nil {
		return d, err
	}
	slices.Reverse(d.Kept)
	d.Verify = service.Permits(a.Roles, service.ActVerifyLedger)
	d.Prune = a.Restricted == "" && service.Permits(a.Roles, service.ActPruneLedger)
	return d, nil
}

func (c *Console) ledger(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	d, err := c.ledgerData(r, a)
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "ledger", c.view(r, a, "nav.ledger", d))
	return nil
}

func (c *Console) checkpoint(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	cp, err := c.svc.Checkpoint(r.Context(), a)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="checkpoint.txt"`)
	_, _ = w.Write([]byte(cp.Checkpoint))
	return nil
}

type logData struct {
	Q     url.Values
	Page  service.EventPage
	Next  string
	First string // the search's first page, when this is a later one
	CSV   string
	Desc  bool // newest first (the default)
}

func (c *Console) log(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	qv := r.URL.Query()
	q := service.EventQuery{Limit: 100, Actor: strings.TrimSpace(qv.Get("actor")), Dataset: strings.TrimSpace(qv.Get("dataset")),
		Type: strings.TrimSpace(qv.Get("type")), Purpose: strings.TrimSpace(qv.Get("purpose")), Unit: strings.TrimSpace(qv.Get("unit"))}
	var err error
	if q.Since, err = day(qv.Get("since"), c.opts.Location, 0); err != nil {
		return err
	}
	if q.Until, err = day(qv.Get("until"), c.opts.Location, 1); err != nil {
		return err
	}
	// Newest first unless order=asc; "from" is the first index the page
	// looks at in its order.
	q.Desc = qv.Get("order") != "asc"
	var from int64 = -1
	if s := qv.Get("from"); s != "" {
		if from, err = strconv.ParseInt(s, 10, 64); err != nil || from < 0 {
			return fmt.Errorf("%w: from: %q is not an event index", service.ErrInvalid, s)
		}
	}
	switch {
	case from < 0:
	case q.Desc:
		q.Before = from + 1
	default:
		q.From = from
	}
	csvOut := qv.Get("format") == "csv"
	if csvOut {
		q.Limit = service.MaxLogLimit
	}
	page, err := c.svc.SearchEvents(r.Context(), a, q)
	if err != nil {
		return err
	}
	if csvOut {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="ledger-events.csv"`)
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"index", "time", "actor", "type", "job", "dataset_id", "details"})
		for _, e := range page.Events {
			var det []string
			for _, p := range funcs["pairs"].(func(map[string]string) [][2]string)(e.Details) {
				det = append(det, p[0]+"="+p[1])
			}
			_ = cw.Write([]string{strconv.FormatInt(e.Index, 10), e.Time.UTC().Format(time.RFC3339), e.Actor, e.Type, e.Job, e.DatasetID, strings.Join(det, "; ")})
		}
		cw.Flush()
		return nil
	}
	d := logData{Q: qv, Page: page, Desc: q.Desc}
	keep := url.Values{}
	for k, vs := range qv {
		if k != "from" && k != "format" && len(vs) > 0 && vs[0] != "" {
			keep.Set(k, vs[0])
		}
	}
	if page.Next != nil {
		n := url.Values{}
		for k, v := range keep {
			n[k] = v
		}
		next := *page.Next
		if q.Desc {
			next-- // the page after is below the last index looked at
		}
		n.Set("from", strconv.FormatInt(next, 10))
		d.Next = "/ledger/log?" + n.Encode()
	}
	if from >= 0 {
		d.First = "/ledger/log?" + keep.Encode()
	}
	keep.Set("format", "csv")
	if from >= 0 {
		keep.Set("from", strconv.FormatInt(from, 10))
	}
	d.CSV = "/ledger/log?" + keep.Encode()
	c.render(w, http.StatusOK, "log", c.view(r, a, "log.title", d))
	return nil
}

// proof downloads an event's inclusion proof, as `custodian audit prove`
// writes it.
func (c *Console) proof(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	idx, err := strconv.ParseInt(r.PathValue("index"), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: index: %q is not an event index", service.ErrInvalid, r.PathValue("index"))
	}
	p, err := c.svc.ProveEvent(r.Context(), a, idx)
	if err != nil {
		return err
	}
	b, err := proof.Encode(p)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="inclusion-%d.json"`, idx))
	_, _ = w.Write(b)
	return nil
}
