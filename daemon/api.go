package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
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

// changingActions are the actions that write to the ledger or start work: all are
// refused while the ledger is damaged or cannot be written.
var changingActions = map[string]bool{ActRunJob: true, ActRecordScrub: true, ActRelease: true, ActRepull: true}

// WarningHeader carries, on every response, a one-line notice while the
// ledger is not healthy.
const WarningHeader = "Custodian-Ledger-Warning"

func (d *Daemon) api(runCtx context.Context) http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern, action string, h handlerFunc) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if msg := d.health.warning(); msg != "" {
				w.Header().Set(WarningHeader, msg)
			}
			a, err := actorFrom(r.Context())
			if err == nil {
				err = authorize(a, action)
			}
			if err == nil && changingActions[action] {
				err = d.health.refusal()
			}
			if err == nil {
				err = h(w, r, a)
				d.health.observe(err)
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
	// Ledger says whether the ledger verified and can be written.
	Ledger LedgerStatus `json:"ledger"`
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
	writeJSON(w, http.StatusOK, Status{DataDir: d.Config.DataDir, Jobs: d.Runner.CurrentConfig().JobNames(), LedgerSize: n, Datasets: len(ds), Caller: a,
		Ledger: d.health.status()})
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
	if !rep.OK {
		// Failed against the caller's key or checkpoint, or the ledger is
		// damaged: the daemon's own full check decides, and stops all
		// work if it fails too (the event below then goes to its report).
		if err := d.health.verifyFull("request by " + a.Name); err != nil {
			return err
		}
	}
	details := map[string]string{
		"ok": strconv.FormatBool(rep.OK), "events": strconv.FormatInt(rep.Events, 10), "problems": strconv.Itoa(len(rep.Problems))}
	if req.VerifierKey != "" || req.Checkpoint != "" {
		details["against"] = "verifier key or checkpoint given by the caller"
	}
	d.event(audit.Event{Actor: a.Name, Type: "audit.verified", Details: details})
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (d *Daemon) handleExport(w http.ResponseWriter, r *http.Request, a Actor) error {
	// Record the export first, so the copy carries its own export event.
	d.event(audit.Event{Actor: a.Name, Type: "audit.exported"})
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

// ScrubReport is what `vault verify` found; the CLI decrypts locally (the
// vault's private key never reaches the daemon) and the daemon records it.
type ScrubReport struct {
	Checked int               `json:"checked"`
	Failed  map[string]string `json:"failed"` // dataset ID -> reason
}

func (d *Daemon) handleScrubResult(w http.ResponseWriter, r *http.Request, a Actor) error {
	var rep ScrubReport
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&rep); err != nil {
		return badRequest("body: %v", err)
	}
	details := map[string]string{"checked": strconv.Itoa(rep.Checked), "failed": strconv.Itoa(len(rep.Failed))}
	err := d.Ledger.Update(func(tx *audit.Tx) error {
		if _, err := tx.Append(audit.Event{Actor: a.Name, Type: "vault.verified", Details: details}); err != nil {
			return err
		}
		for id, reason := range rep.Failed {
			if _, ok, err := tx.Dataset(id); err != nil || !ok {
				continue
			}
			if _, err := tx.Append(audit.Event{Actor: a.Name, Type: "vault.object_failed", DatasetID: id, Details: map[string]string{"reason": reason}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"recorded": "ok"})
	return nil
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
