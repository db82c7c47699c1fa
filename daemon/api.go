package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"custodian/audit"
	"custodian/transfer"
)

// Actions a request may ask for; authorize decides per actor.
const (
	ActRunJob      = "job.run"
	ActReadMeta    = "dataset.read_metadata"
	ActAuditVerify = "audit.verify"
	ActAuditExport = "audit.export"
	ActAuditRead   = "audit.read"
	ActRecordScrub = "vault.record_verify"
	ActReadStatus  = "status.read"
	ActRelease     = "dataset.release"
	ActRepull      = "dataset.repull"
)

// authorize is the one place that decides whether actor may do action. Today
// every local account that can open the socket (0600, owned by the service
// account, in a 0700 directory) may act; per-person roles and four-eyes
// approvals replace this rule.
func authorize(a Actor, action string) error {
	if a.Name == "" {
		return errForbidden
	}
	return nil
}

var errForbidden = errors.New("forbidden")

// handlerFunc is an API handler that knows who is calling.
type handlerFunc func(w http.ResponseWriter, r *http.Request, a Actor) error

// httpError carries a status code for the client.
type httpError struct {
	code int
	err  error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Errorf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &httpError{http.StatusNotFound, fmt.Errorf(format, args...)}
}

func (d *Daemon) api(runCtx context.Context) http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern, action string, h handlerFunc) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			a, err := actorFrom(r.Context())
			if err == nil {
				err = authorize(a, action)
			}
			if err == nil {
				err = h(w, r, a)
			}
			if err != nil {
				code := http.StatusInternalServerError
				var he *httpError
				switch {
				case errors.As(err, &he):
					code = he.code
				case errors.Is(err, errForbidden):
					code = http.StatusForbidden
				}
				d.Log.Warn().Str("path", r.URL.Path).Str("actor", a.Name).Int("status", code).Err(err).Msg("api request failed")
				writeJSON(w, code, map[string]string{"error": err.Error()})
			}
		})
	}
	handle("GET /v1/status", ActReadStatus, d.handleStatus)
	handle("POST /v1/jobs/{name}/run", ActRunJob, func(w http.ResponseWriter, r *http.Request, a Actor) error {
		return d.handleRun(runCtx, w, r, a)
	})
	handle("GET /v1/datasets", ActReadMeta, d.handleDatasets)
	handle("GET /v1/datasets/{id}", ActReadMeta, d.handleDataset)
	handle("POST /v1/audit/verify", ActAuditVerify, d.handleVerify)
	handle("GET /v1/audit/export", ActAuditExport, d.handleExport)
	handle("GET /v1/audit/checkpoint", ActAuditRead, d.handleCheckpoint)
	handle("GET /v1/audit/log", ActAuditRead, d.handleLog)
	handle("GET /v1/vault/scrub-plan", ActReadMeta, d.handleScrubPlan)
	handle("POST /v1/vault/verified", ActRecordScrub, d.handleScrubResult)
	handle("POST /v1/datasets/{id}/release", ActRelease, d.handleRelease)
	handle("POST /v1/datasets/{id}/repull", ActRepull, func(w http.ResponseWriter, r *http.Request, a Actor) error {
		return d.handleRepull(runCtx, w, r, a)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Status is the daemon's summary.
type Status struct {
	DataDir    string   `json:"data_dir"`
	Jobs       []string `json:"jobs"`
	LedgerSize int64    `json:"ledger_size"`
	Datasets   int      `json:"datasets"`
	Caller     Actor    `json:"caller"`
}

func (d *Daemon) handleStatus(w http.ResponseWriter, r *http.Request, a Actor) error {
	n, err := d.Ledger.Size()
	if err != nil {
		return err
	}
	ds, err := d.Ledger.Datasets()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, Status{DataDir: d.Config.DataDir, Jobs: d.Runner.CurrentConfig().JobNames(), LedgerSize: n, Datasets: len(ds), Caller: a})
	return nil
}

// RunMessage is one line of a job run's NDJSON stream.
type RunMessage struct {
	Progress *transfer.Progress  `json:"progress,omitempty"`
	Result   *transfer.RunResult `json:"result,omitempty"`
	Error    string              `json:"error,omitempty"`
}

// handleRun runs a job and streams progress, then the result. The run belongs
// to the daemon: a client that disconnects does not cancel it.
func (d *Daemon) handleRun(runCtx context.Context, w http.ResponseWriter, r *http.Request, a Actor) error {
	name := r.PathValue("name")
	cfg := d.Runner.CurrentConfig()
	if _, ok := cfg.Job(name); !ok {
		return notFound("unknown job %q; configured jobs: %v", name, cfg.JobNames())
	}
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
	d.wg.Add(1)
	defer d.wg.Done()
	res, err := d.Runner.Run(runCtx, transfer.RunRequest{Job: name, Actor: a.Name, Trigger: "manual", Progress: progress})
	if err != nil {
		send(RunMessage{Error: err.Error()})
		return nil
	}
	send(RunMessage{Result: res})
	return nil
}

func (d *Daemon) handleDatasets(w http.ResponseWriter, r *http.Request, a Actor) error {
	ds, err := d.Ledger.Datasets()
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []audit.Dataset{}
	}
	writeJSON(w, http.StatusOK, ds)
	return nil
}

// DatasetDetail is one dataset with its custody timeline.
type DatasetDetail struct {
	Dataset  audit.Dataset `json:"dataset"`
	Timeline []audit.Event `json:"timeline"`
}

func (d *Daemon) handleDataset(w http.ResponseWriter, r *http.Request, a Actor) error {
	id := r.PathValue("id")
	ds, ok, err := d.Ledger.Dataset(id)
	if err != nil {
		return err
	}
	if !ok {
		return notFound("no dataset %q; list them with `custodian dataset list`", id)
	}
	tl, err := d.Ledger.Timeline(id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, DatasetDetail{Dataset: ds, Timeline: tl})
	return nil
}

// VerifyRequest asks for a verification against a kept checkpoint.
type VerifyRequest struct {
	Checkpoint  string `json:"checkpoint,omitempty"`
	VerifierKey string `json:"verifier_key,omitempty"`
}

func (d *Daemon) handleVerify(w http.ResponseWriter, r *http.Request, a Actor) error {
	var req VerifyRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		return badRequest("body: %v", err)
	}
	opts := audit.VerifyOptions{VerifierKey: req.VerifierKey}
	if req.Checkpoint != "" {
		opts.Checkpoint = []byte(req.Checkpoint)
	}
	rep, err := audit.Verify(d.Ledger, opts)
	if err != nil {
		return err
	}
	d.event(audit.Event{Actor: a.Name, Type: audit.EvAuditVerified, Details: map[string]string{
		"ok": strconv.FormatBool(rep.OK), "events": strconv.FormatInt(rep.Events, 10), "problems": strconv.Itoa(len(rep.Problems))}})
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (d *Daemon) handleExport(w http.ResponseWriter, r *http.Request, a Actor) error {
	// Record the export first, so the copy carries its own export event.
	d.event(audit.Event{Actor: a.Name, Type: audit.EvAuditExported})
	w.Header().Set("Content-Type", "application/octet-stream")
	_, err := d.Ledger.Export(w)
	return err
}

func (d *Daemon) handleCheckpoint(w http.ResponseWriter, r *http.Request, a Actor) error {
	cp, err := d.Ledger.Checkpoint()
	if err != nil {
		return err
	}
	vk, err := d.Ledger.VerifierKey()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"checkpoint": string(cp), "verifier_key": vk})
	return nil
}

func (d *Daemon) handleLog(w http.ResponseWriter, r *http.Request, a Actor) error {
	q := r.URL.Query()
	from, limit := int64(0), 1000
	var err error
	if s := q.Get("from"); s != "" {
		if from, err = strconv.ParseInt(s, 10, 64); err != nil || from < 0 {
			return badRequest("from: %q is not an event index (0 or more)", s)
		}
	}
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 100000 {
			return badRequest("limit: %q is out of range; use 1 to 100000", s)
		}
	}
	evs, err := d.Ledger.Events(from, limit)
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []audit.Event{}
	}
	writeJSON(w, http.StatusOK, evs)
	return nil
}

// ScrubReport is what `vault verify` found. The CLI decrypts locally (the
// vault's private key never reaches the daemon), so the daemon cannot know
// that the objects were decrypted: it records the report as a report by
// the calling account, and only if it matches the ledger (see
// checkScrubReport).
type ScrubReport struct {
	// LedgerSize is the ledger size of the plan the scrub followed
	// (GET /v1/vault/scrub-plan).
	LedgerSize int64 `json:"ledger_size"`
	// Checked is the number of vault objects checked: all of the plan's.
	Checked int `json:"checked"`
	// Failed maps the object ID of each object that failed to the reason.
	Failed map[string]string `json:"failed"`
	// CheckedDigest is transfer.ScrubDigest of the objects checked.
	CheckedDigest string `json:"checked_digest"`
}

// Event types of scrub reports. Installations from before scrub reports
// were checked against the ledger hold "vault.verified" events instead;
// they stay valid ledger entries and read as before.
const (
	EvScrubReported       = audit.EvVaultScrubReported
	EvScrubReportRefused  = audit.EvVaultScrubReportRefused
	EvScrubObjectFailed   = audit.EvVaultObjectFailed
	maxScrubReason        = 4096
	maxFailedObjectsField = 256 << 10
)

func (d *Daemon) handleScrubPlan(w http.ResponseWriter, r *http.Request, a Actor) error {
	size, err := d.Ledger.Size()
	if err != nil {
		return err
	}
	plan, err := transfer.PlanScrub(d.Ledger, size)
	if err != nil {
		return err
	}
	if plan.Items == nil {
		plan.Items = []transfer.ScrubItem{}
	}
	writeJSON(w, http.StatusOK, plan)
	return nil
}

// handleScrubResult records a scrub report as a report by its sender, or
// records its refusal.
func (d *Daemon) handleScrubResult(w http.ResponseWriter, r *http.Request, a Actor) error {
	var rep ScrubReport
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&rep); err != nil {
		return d.refuseScrub(a, rep, http.StatusBadRequest, fmt.Sprintf("the body is not a scrub report: %v", err))
	}
	plan, why, err := d.checkScrubReport(rep)
	if err != nil {
		return err
	}
	if why != "" {
		return d.refuseScrub(a, rep, http.StatusUnprocessableEntity, why)
	}
	owner := make(map[string]string, len(plan.Items))
	for _, it := range plan.Items {
		owner[it.ObjectID] = it.Dataset.ID
	}
	failed := slices.Sorted(maps.Keys(rep.Failed))
	list := strings.Join(failed, " ")
	if len(list) > maxFailedObjectsField {
		cut := strings.LastIndexByte(list[:maxFailedObjectsField], ' ')
		list = list[:max(cut, 0)] + " … (the rest in vault.object_failed events)"
	}
	details := map[string]string{
		"reported_by":     a.Name,
		"objects_checked": strconv.Itoa(rep.Checked),
		"failed":          strconv.Itoa(len(rep.Failed)),
		"failed_objects":  list,
		"checked_digest":  rep.CheckedDigest,
		"ledger_size":     strconv.FormatInt(rep.LedgerSize, 10),
		"note":            "a report by reported_by: the daemon does not hold the vault's private key and did not decrypt the objects; the counts, object IDs and digest match the ledger",
	}
	var recorded audit.Event
	err = d.Ledger.Update(func(tx *audit.Tx) error {
		var err error
		if recorded, err = tx.Append(audit.Event{Actor: a.Name, Type: EvScrubReported, Details: details}); err != nil {
			return err
		}
		for _, obj := range failed {
			if _, err := tx.Append(audit.Event{Actor: a.Name, Type: EvScrubObjectFailed, DatasetID: owner[obj], Details: map[string]string{
				"object_id": obj, "reason": rep.Failed[obj], "reported_by": a.Name}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"recorded": EvScrubReported, "index": recorded.Index})
	return nil
}

// checkScrubReport returns the plan rep claims to have followed and, if rep
// does not match the ledger, why (the rule it breaks). err is an internal
// failure.
func (d *Daemon) checkScrubReport(rep ScrubReport) (plan transfer.ScrubPlan, why string, err error) {
	size, err := d.Ledger.Size()
	if err != nil {
		return plan, "", err
	}
	if rep.LedgerSize < 1 || rep.LedgerSize > size {
		return plan, fmt.Sprintf("ledger_size %d is not a size the ledger has had (1 to %d): a report must follow a plan from GET /v1/vault/scrub-plan", rep.LedgerSize, size), nil
	}
	if plan, err = transfer.PlanScrub(d.Ledger, rep.LedgerSize); err != nil {
		return plan, "", err
	}
	if rep.Checked != len(plan.Items) {
		return plan, fmt.Sprintf("the report says %d object(s) were checked, but the ledger's first %d entries refer to %d vault object(s): a scrub checks every one of them",
			rep.Checked, rep.LedgerSize, len(plan.Items)), nil
	}
	known := make(map[string]bool, len(plan.Items))
	for _, it := range plan.Items {
		known[it.ObjectID] = true
	}
	for _, obj := range slices.Sorted(maps.Keys(rep.Failed)) {
		if !known[obj] {
			return plan, fmt.Sprintf("failed object %s is not a vault object on the ledger (first %d entries): failures must name objects of the plan", quoteShort(obj), rep.LedgerSize), nil
		}
		if len(rep.Failed[obj]) > maxScrubReason {
			return plan, fmt.Sprintf("the reason given for object %s is longer than %d bytes", obj, maxScrubReason), nil
		}
	}
	want := transfer.ScrubDigest(plan.Items)
	switch rep.CheckedDigest {
	case want:
	case "":
		return plan, "checked_digest is required: the SHA-256 of the sorted lines \"OBJECT_ID SHA256\" of the objects checked", nil
	default:
		return plan, fmt.Sprintf("checked_digest %s does not match the objects on the ledger (first %d entries), whose digest is %s: the report must cover exactly those objects and their SHA-256",
			quoteShort(rep.CheckedDigest), rep.LedgerSize, want), nil
	}
	return plan, "", nil
}

// refuseScrub records a refused scrub report, naming its sender and the
// rule, and returns the refusal for the client.
func (d *Daemon) refuseScrub(a Actor, rep ScrubReport, code int, why string) error {
	details := map[string]string{
		"reported_by":     a.Name,
		"reason":          why,
		"objects_checked": strconv.Itoa(rep.Checked),
		"failed":          strconv.Itoa(len(rep.Failed)),
		"ledger_size":     strconv.FormatInt(rep.LedgerSize, 10),
	}
	if err := d.Ledger.Update(func(tx *audit.Tx) error {
		_, err := tx.Append(audit.Event{Actor: a.Name, Type: EvScrubReportRefused, Details: details})
		return err
	}); err != nil {
		return fmt.Errorf("recording the refusal of a scrub report (%s): %w", why, err)
	}
	return &httpError{code, fmt.Errorf("scrub report refused: %s", why)}
}

// quoteShort quotes s, cut to 80 bytes: values a client sent are named in
// refusals without letting the client write arbitrary text to the ledger.
func quoteShort(s string) string {
	if len(s) > 80 {
		s = strings.ToValidUTF8(s[:80], "") + "…"
	}
	return strconv.Quote(s)
}

// ActionRequest carries the reason of an officer action.
type ActionRequest struct {
	Reason string `json:"reason"`
}

func readAction(w http.ResponseWriter, r *http.Request) (ActionRequest, error) {
	var req ActionRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		return req, badRequest("body: %v", err)
	}
	return req, nil
}

// actionError maps the runner's refusals to client errors.
func actionError(err error) error {
	switch {
	case errors.Is(err, transfer.ErrNoDataset):
		return &httpError{http.StatusNotFound, err}
	case errors.Is(err, transfer.ErrState), errors.Is(err, transfer.ErrReason):
		return &httpError{http.StatusConflict, err}
	}
	return err
}

func (d *Daemon) handleRelease(w http.ResponseWriter, r *http.Request, a Actor) error {
	req, err := readAction(w, r)
	if err != nil {
		return err
	}
	ds, err := d.Runner.Release(r.PathValue("id"), a.Name, req.Reason)
	if err != nil {
		return actionError(err)
	}
	writeJSON(w, http.StatusOK, ds)
	return nil
}

func (d *Daemon) handleRepull(runCtx context.Context, w http.ResponseWriter, r *http.Request, a Actor) error {
	req, err := readAction(w, r)
	if err != nil {
		return err
	}
	d.wg.Add(1)
	defer d.wg.Done()
	o, err := d.Runner.Repull(runCtx, r.PathValue("id"), a.Name, req.Reason)
	if err != nil {
		return actionError(err)
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}
