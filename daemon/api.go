package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"custodian/audit"
	"custodian/backup"
	"custodian/proof"
	"custodian/service"
	"custodian/transfer"
)

// API is what the HTTP handlers may call: the service layer's use cases,
// nothing else. A handler decodes, makes exactly one call, and encodes; it
// holds no ledger, so it cannot append anything itself.
type API interface {
	Status(ctx context.Context, a service.Actor) (service.Status, error)
	RunJob(ctx context.Context, a service.Actor, job, trigger string, progress func(transfer.Progress)) (*transfer.RunResult, error)
	Datasets(ctx context.Context, a service.Actor) ([]service.DatasetView, error)
	Dataset(ctx context.Context, a service.Actor, id string) (service.DatasetDetail, error)
	Release(ctx context.Context, a service.Actor, id, reason string) (service.DatasetView, error)
	Repull(ctx context.Context, a service.Actor, id, reason string) (transfer.FileOutcome, error)
	VerifyLedger(ctx context.Context, a service.Actor, opts audit.VerifyOptions) (*audit.Report, error)
	ExportLedger(ctx context.Context, a service.Actor, w io.Writer) (int64, error)
	Checkpoint(ctx context.Context, a service.Actor) (service.Checkpoint, error)
	Events(ctx context.Context, a service.Actor, from int64, limit int) ([]service.EventView, error)
	ScrubPlan(ctx context.Context, a service.Actor) (service.ScrubPlan, error)
	RecordScrub(ctx context.Context, a service.Actor, rep service.ScrubReport) (service.Recorded, error)
	RefuseScrub(ctx context.Context, a service.Actor, why string) error

	Login(ctx context.Context, o service.Origin, req service.LoginRequest) (service.LoginResult, error)
	Logout(ctx context.Context, a service.Actor, token string) error
	Whoami(ctx context.Context, a service.Actor) (service.Whoami, error)
	ChangePassword(ctx context.Context, a service.Actor, old, pw string) error
	EnrollTOTP(ctx context.Context, a service.Actor) (service.TOTPEnrolment, error)
	ConfirmTOTP(ctx context.Context, a service.Actor, code string) error
	Accounts(ctx context.Context, a service.Actor) ([]service.AccountView, error)
	Account(ctx context.Context, a service.Actor, username string) (service.AccountView, error)
	FileAccountRequest(ctx context.Context, a service.Actor, req service.AccountRequest) (service.RequestView, error)
	Requests(ctx context.Context, a service.Actor, pending bool) ([]service.RequestView, error)
	Request(ctx context.Context, a service.Actor, id string) (service.RequestView, error)
	Approve(ctx context.Context, a service.Actor, id, reason string) (service.RequestView, error)
	Reject(ctx context.Context, a service.Actor, id, reason string) (service.RequestView, error)
	CancelRequest(ctx context.Context, a service.Actor, id string) (service.RequestView, error)
	ExecuteRequest(ctx context.Context, a service.Actor, id string) (service.Executed, error)
	ProveEvent(ctx context.Context, a service.Actor, index int64) (proof.Inclusion, error)
	ProveConsistency(ctx context.Context, a service.Actor, oldCP, newCP string) (proof.Consistency, error)
	KeptCheckpoints(ctx context.Context, a service.Actor) ([]proof.Kept, error)
	SearchEvents(ctx context.Context, a service.Actor, q service.EventQuery) (service.EventPage, error)
	Backup(ctx context.Context, a service.Actor, dir string, progress func(backup.Progress)) (*backup.Result, error)

	StartReview(ctx context.Context, a service.Actor, req service.ReviewStart) (service.Review, error)
	Reviews(ctx context.Context, a service.Actor) ([]service.Review, error)
	ShowReview(ctx context.Context, a service.Actor, id string) (service.Review, error)
	RecordFinding(ctx context.Context, a service.Actor, id string, f service.ReviewStep) (service.Review, error)
	CloseInvestigation(ctx context.Context, a service.Actor, id string, st service.ReviewStep) (service.Review, error)
	CloseReview(ctx context.Context, a service.Actor, id string) (service.Review, error)
	ReviewReport(ctx context.Context, a service.Actor, id, format, lang string) ([]byte, error)
	CosignAccess(ctx context.Context, a service.Actor, q service.AccessQuery) (service.Cosigned, error)
	AccessRecords(ctx context.Context, a service.Actor, q service.AccessQuery) ([]service.AccessRecord, error)
	RecordTraining(ctx context.Context, a service.Actor, req service.TrainingRecord) (service.Training, error)
	TrainingReport(ctx context.Context, a service.Actor, year int) ([]service.TrainingShort, error)
	ArchiveLedger(ctx context.Context, a service.Actor, before time.Time) (service.Archived, error)
	FilePruneRequest(ctx context.Context, a service.Actor, req service.PruneRequest) (service.RequestView, error)
	lifecycleAPI  // api_lifecycle.go
	jobsAPI       // api_jobs.go
	sessionsAPI   // api_sessions.go
	jobHistoryAPI // api_jobhistory.go
	DestructionAPI
}

var _ API = (*service.Service)(nil)

// route is one API endpoint: the service method it calls authorizes
// action (the route table test checks both). Every route but login needs
// a session; login is the one public route.
type route struct {
	pattern string
	action  service.Action
	serve   func(h *handlers, w http.ResponseWriter, r *http.Request, a service.Actor) error
	public  bool
}

// actLogin names the login route's action: it is public (it makes the
// session every other route needs), so no role decides it.
const actLogin service.Action = "session.login"

// routes is the whole API.
var routes = []route{
	{"GET /v1/status", service.ActStatus, (*handlers).status, false},
	{"POST /v1/jobs/{name}/run", service.ActRunJob, (*handlers).run, false},
	{"GET /v1/datasets", service.ActListDatasets, (*handlers).datasets, false},
	{"GET /v1/datasets/{id}", service.ActShowDataset, (*handlers).dataset, false},
	{"POST /v1/datasets/{id}/release", service.ActRelease, (*handlers).release, false},
	{"POST /v1/datasets/{id}/repull", service.ActRepull, (*handlers).repull, false},
	{"POST /v1/audit/verify", service.ActVerifyLedger, (*handlers).verify, false},
	{"GET /v1/audit/export", service.ActExportLedger, (*handlers).export, false},
	{"GET /v1/audit/checkpoint", service.ActReadLedger, (*handlers).checkpoint, false},
	{"GET /v1/audit/log", service.ActReadLedger, (*handlers).log, false},
	{"GET /v1/vault/scrub-plan", service.ActScrubPlan, (*handlers).scrubPlan, false},
	{"POST /v1/vault/verified", service.ActRecordScrub, (*handlers).recordScrub, false},

	{"POST /v1/login", actLogin, (*handlers).login, true},
	{"POST /v1/logout", service.ActSelf, (*handlers).logout, false},
	{"GET /v1/whoami", service.ActSelf, (*handlers).whoami, false},
	{"POST /v1/account/password", service.ActSelf, (*handlers).passwd, false},
	{"POST /v1/account/totp", service.ActSelf, (*handlers).totpEnroll, false},
	{"POST /v1/account/totp/confirm", service.ActSelf, (*handlers).totpConfirm, false},
	{"GET /v1/accounts", service.ActReadAccounts, (*handlers).accounts, false},
	{"GET /v1/accounts/{username}", service.ActReadAccounts, (*handlers).account, false},
	{"POST /v1/requests/account", service.ActFileAccountRequest, (*handlers).fileAccountRequest, false},
	{"GET /v1/requests", service.ActReadRequests, (*handlers).requests, false},
	{"GET /v1/requests/{id}", service.ActReadRequests, (*handlers).request, false},
	{"POST /v1/requests/{id}/approve", service.ActDecideRequest, (*handlers).approve, false},
	{"POST /v1/requests/{id}/reject", service.ActDecideRequest, (*handlers).reject, false},
	{"POST /v1/requests/{id}/cancel", service.ActCancelRequest, (*handlers).cancelRequest, false},
	{"POST /v1/requests/{id}/execute", service.ActExecuteRequest, (*handlers).executeRequest, false},
	{"GET /v1/audit/events", service.ActReadLedger, (*handlers).searchEvents, false},
	{"GET /v1/audit/proofs/inclusion", service.ActReadLedger, (*handlers).proveEvent, false},
	{"POST /v1/audit/proofs/consistency", service.ActReadLedger, (*handlers).proveConsistency, false},
	{"GET /v1/audit/checkpoints", service.ActReadLedger, (*handlers).keptCheckpoints, false},
	{"POST /v1/backup", service.ActBackup, (*handlers).backup, false},
	// The review workbench (api_review.go).
	{"POST /v1/reviews", service.ActRunReview, (*handlers).startReview, false},
	{"GET /v1/reviews", service.ActReadReview, (*handlers).reviews, false},
	{"GET /v1/reviews/{id}", service.ActReadReview, (*handlers).showReview, false},
	{"POST /v1/reviews/{id}/findings", service.ActRunReview, (*handlers).reviewFinding, false},
	{"POST /v1/reviews/{id}/investigations/close", service.ActRunReview, (*handlers).closeInvestigation, false},
	{"POST /v1/reviews/{id}/close", service.ActRunReview, (*handlers).closeReview, false},
	{"GET /v1/reviews/{id}/report", service.ActReadReview, (*handlers).reviewReport, false},
	{"POST /v1/access/cosign", service.ActCosignAccess, (*handlers).cosignAccess, false},
	{"GET /v1/access", service.ActReadAccess, (*handlers).accessRecords, false},
	{"POST /v1/training", service.ActRecordTraining, (*handlers).recordTraining, false},
	{"GET /v1/training/report", service.ActReadTraining, (*handlers).trainingReport, false},
	{"POST /v1/audit/archive", service.ActExportLedger, (*handlers).archiveLedger, false},
	{"POST /v1/requests/prune", service.ActPruneLedger, (*handlers).filePruneRequest, false},
}

func init() { routes = append(routes, destructionRoutes...) }

// handlers serves the routes over one API.
type handlers struct {
	api API
	// auth finds the person behind a request's session (the service's
	// Authenticate): a transport concern, not a use case.
	auth func(o service.Origin, token string) (service.Actor, error)
	// runCtx outlives requests: a run belongs to the daemon, and a client
	// that disconnects does not cancel it. wg counts runs in progress.
	runCtx  context.Context
	wg      *sync.WaitGroup
	onError func(path string, a service.Actor, code int, err error)
	warning func() string // a notice for every response, or ""
}

// WarningHeader carries, on every response, a one-line notice while the
// daemon refuses work (its ledger is damaged or cannot be written).
const WarningHeader = "Custodian-Ledger-Warning"

func (h *handlers) mux() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			if h.warning != nil {
				if msg := h.warning(); msg != "" {
					w.Header().Set(WarningHeader, msg)
				}
			}
			a := service.Actor{Origin: originFrom(r.Context())}
			if !rt.public {
				var err error
				if a, err = h.auth(a.Origin, bearer(r)); err != nil {
					p := service.ProblemOf(err)
					if h.onError != nil {
						h.onError(r.URL.Path, a, p.Status, err)
					}
					w.Header().Set("WWW-Authenticate", `Bearer realm="custodian"`)
					writeProblem(w, p)
					return
				}
			}
			if err := rt.serve(h, w, r, a); err != nil {
				p := service.ProblemOf(err)
				if h.onError != nil {
					h.onError(r.URL.Path, a, p.Status, err)
				}
				writeProblem(w, p)
			}
		})
	}
	return mux
}

// bearer returns the session token of an Authorization: Bearer header.
func bearer(r *http.Request) string {
	v := r.Header.Get("Authorization")
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeProblem(w http.ResponseWriter, p service.Problem) {
	w.Header().Set("Content-Type", service.ProblemContentType)
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// decode reads a JSON body of at most limit bytes; an empty body leaves v
// as it is when empty is allowed.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any, empty bool) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil || (empty && errors.Is(err, io.EOF)) {
		return nil
	}
	if mbe := new(http.MaxBytesError); errors.As(err, &mbe) {
		return fmt.Errorf("%w: body: larger than %d bytes", service.ErrInvalid, mbe.Limit)
	}
	return fmt.Errorf("%w: body: not the expected JSON: %v", service.ErrInvalid, err)
}

func (h *handlers) status(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	st, err := h.api.Status(r.Context(), a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// RunMessage is one line of a job run's NDJSON stream.
type RunMessage struct {
	Progress *transfer.Progress  `json:"progress,omitempty"`
	Result   *transfer.RunResult `json:"result,omitempty"`
	Error    *service.Problem    `json:"error,omitempty"`
}

// run runs a job and streams progress, then the result.
func (h *handlers) run(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	var mu sync.Mutex
	gone := false
	send := func(m RunMessage) {
		mu.Lock()
		defer mu.Unlock()
		if gone {
			return
		}
		b, _ := json.Marshal(m)
		if _, err := w.Write(append(b, '\n')); err != nil {
			gone = true
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
	last := map[string]time.Time{}
	progress := func(p transfer.Progress) {
		mu.Lock()
		t := last[p.File]
		due := time.Since(t) > 200*time.Millisecond || p.Done == p.Total
		if due {
			last[p.File] = time.Now()
		}
		mu.Unlock()
		if due {
			send(RunMessage{Progress: &p})
		}
	}
	h.wg.Add(1)
	defer h.wg.Done()
	res, err := h.api.RunJob(h.runCtx, a, r.PathValue("name"), "manual", progress)
	if err != nil {
		p := service.ProblemOf(err)
		send(RunMessage{Error: &p})
		return nil
	}
	send(RunMessage{Result: res})
	return nil
}

func (h *handlers) datasets(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	ds, err := h.api.Datasets(r.Context(), a)
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []service.DatasetView{}
	}
	writeJSON(w, http.StatusOK, ds)
	return nil
}

func (h *handlers) dataset(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	d, err := h.api.Dataset(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// ActionRequest carries the reason of an officer action.
type ActionRequest struct {
	Reason string `json:"reason"`
}

func (h *handlers) release(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req ActionRequest
	if err := decode(w, r, 64<<10, &req, false); err != nil {
		return err
	}
	d, err := h.api.Release(r.Context(), a, r.PathValue("id"), req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (h *handlers) repull(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req ActionRequest
	if err := decode(w, r, 64<<10, &req, false); err != nil {
		return err
	}
	h.wg.Add(1)
	defer h.wg.Done()
	o, err := h.api.Repull(h.runCtx, a, r.PathValue("id"), req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

// VerifyRequest asks for a verification against a kept checkpoint.
type VerifyRequest struct {
	Checkpoint  string `json:"checkpoint,omitempty"`
	VerifierKey string `json:"verifier_key,omitempty"`
}

func (h *handlers) verify(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req VerifyRequest
	if err := decode(w, r, 1<<20, &req, true); err != nil {
		return err
	}
	opts := audit.VerifyOptions{VerifierKey: req.VerifierKey}
	if req.Checkpoint != "" {
		opts.Checkpoint = []byte(req.Checkpoint)
	}
	rep, err := h.api.VerifyLedger(r.Context(), a, opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (h *handlers) export(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	// The service records the export before the snapshot is taken, so a
	// refusal still reaches the client as a problem; once bytes flow, a
	// failure can only cut the stream.
	hw := &headerOnWrite{w: w}
	_, err := h.api.ExportLedger(r.Context(), a, hw)
	if err != nil && hw.started {
		return nil // the client sees a short body; the snapshot is not valid
	}
	return err
}

// headerOnWrite sets the download's headers on the first write.
type headerOnWrite struct {
	w       http.ResponseWriter
	started bool
}

func (h *headerOnWrite) Write(p []byte) (int, error) {
	if !h.started {
		h.started = true
		h.w.Header().Set("Content-Type", "application/octet-stream")
	}
	return h.w.Write(p)
}

func (h *handlers) checkpoint(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	cp, err := h.api.Checkpoint(r.Context(), a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cp)
	return nil
}

func (h *handlers) log(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	q := r.URL.Query()
	from, limit := int64(0), 1000
	var err error
	if s := q.Get("from"); s != "" {
		if from, err = strconv.ParseInt(s, 10, 64); err != nil {
			return fmt.Errorf("%w: from: %q is not an event index (0 or more)", service.ErrInvalid, s)
		}
	}
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil {
			return fmt.Errorf("%w: limit: %q is not a number; use 1 to %d", service.ErrInvalid, s, service.MaxLogLimit)
		}
	}
	evs, err := h.api.Events(r.Context(), a, from, limit)
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []service.EventView{}
	}
	writeJSON(w, http.StatusOK, evs)
	return nil
}

func (h *handlers) scrubPlan(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	plan, err := h.api.ScrubPlan(r.Context(), a)
	if err != nil {
		return err
	}
	if plan.Items == nil {
		plan.Items = []service.ScrubItem{}
	}
	writeJSON(w, http.StatusOK, plan)
	return nil
}

func (h *handlers) recordScrub(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var rep service.ScrubReport
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&rep); err != nil {
		// An unreadable report is refused like a false one: on the ledger.
		return h.api.RefuseScrub(r.Context(), a, fmt.Sprintf("the body is not a scrub report: %v", err))
	}
	rec, err := h.api.RecordScrub(r.Context(), a, rep)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rec)
	return nil
}

func (h *handlers) login(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req service.LoginRequest
	if err := decode(w, r, 8<<10, &req, false); err != nil {
		return err
	}
	res, err := h.api.Login(r.Context(), a.Origin, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (h *handlers) logout(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := h.api.Logout(r.Context(), a, bearer(r)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"session": a.Session, "state": "ended"})
	return nil
}

func (h *handlers) whoami(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	me, err := h.api.Whoami(r.Context(), a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, me)
	return nil
}

// PasswordRequest changes the caller's password.
type PasswordRequest struct {
	Password    string `json:"password"`
	NewPassword string `json:"new_password"`
}

func (h *handlers) passwd(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req PasswordRequest
	if err := decode(w, r, 8<<10, &req, false); err != nil {
		return err
	}
	if err := h.api.ChangePassword(r.Context(), a, req.Password, req.NewPassword); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"username": a.Name, "password": "changed"})
	return nil
}

func (h *handlers) totpEnroll(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	e, err := h.api.EnrollTOTP(r.Context(), a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

// CodeRequest carries a one-time code.
type CodeRequest struct {
	Code string `json:"code"`
}

func (h *handlers) totpConfirm(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req CodeRequest
	if err := decode(w, r, 1<<10, &req, false); err != nil {
		return err
	}
	if err := h.api.ConfirmTOTP(r.Context(), a, req.Code); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"username": a.Name, "totp": "enrolled"})
	return nil
}

func (h *handlers) accounts(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	list, err := h.api.Accounts(r.Context(), a)
	if err != nil {
		return err
	}
	if list == nil {
		list = []service.AccountView{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (h *handlers) account(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	acct, err := h.api.Account(r.Context(), a, r.PathValue("username"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, acct)
	return nil
}

func (h *handlers) fileAccountRequest(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req service.AccountRequest
	if err := decode(w, r, 64<<10, &req, false); err != nil {
		return err
	}
	q, err := h.api.FileAccountRequest(r.Context(), a, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, q)
	return nil
}

func (h *handlers) requests(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	pending := false
	if v := r.URL.Query().Get("pending"); v != "" {
		var err error
		if pending, err = strconv.ParseBool(v); err != nil {
			return fmt.Errorf("%w: pending: %q is not true or false", service.ErrInvalid, v)
		}
	}
	list, err := h.api.Requests(r.Context(), a, pending)
	if err != nil {
		return err
	}
	if list == nil {
		list = []service.RequestView{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (h *handlers) request(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	q, err := h.api.Request(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, q)
	return nil
}

func (h *handlers) approve(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req ActionRequest
	if err := decode(w, r, 64<<10, &req, false); err != nil {
		return err
	}
	q, err := h.api.Approve(r.Context(), a, r.PathValue("id"), req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, q)
	return nil
}

func (h *handlers) reject(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req ActionRequest
	if err := decode(w, r, 64<<10, &req, false); err != nil {
		return err
	}
	q, err := h.api.Reject(r.Context(), a, r.PathValue("id"), req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, q)
	return nil
}

func (h *handlers) cancelRequest(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	q, err := h.api.CancelRequest(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, q)
	return nil
}

func (h *handlers) executeRequest(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	x, err := h.api.ExecuteRequest(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, x)
	return nil
}

// BackupRequest names the directory the daemon writes a backup into.
type BackupRequest struct {
	Out string `json:"out"`
}

// BackupMessage is one line of a backup's NDJSON stream: progress, then
// the result or an error.
type BackupMessage struct {
	Progress *backup.Progress `json:"progress,omitempty"`
	Result   *backup.Result   `json:"result,omitempty"`
	Error    *service.Problem `json:"error,omitempty"`
}

// backup writes a backup and streams progress, then the result. Like a
// run, it belongs to the daemon: shutdown waits for it (or cancels it)
// before the ledger closes.
func (h *handlers) backup(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req BackupRequest
	if err := decode(w, r, 64<<10, &req, true); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	gone := false
	send := func(m BackupMessage) {
		if gone {
			return
		}
		if err := enc.Encode(m); err != nil {
			gone = true
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
	var last time.Time
	progress := func(p backup.Progress) {
		if time.Since(last) > 200*time.Millisecond || p.Objects == p.ObjectsTotal {
			last = time.Now()
			send(BackupMessage{Progress: &p})
		}
	}
	h.wg.Add(1)
	defer h.wg.Done()
	res, err := h.api.Backup(h.runCtx, a, req.Out, progress)
	if err != nil {
		p := service.ProblemOf(err)
		send(BackupMessage{Error: &p})
		return nil
	}
	send(BackupMessage{Result: res})
	return nil
}
