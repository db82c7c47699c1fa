package daemon

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"custodian/service"
)

// The review workbench's routes: the sampling review, co-signed access
// records, training, ledger archives and prune requests.

func (h *handlers) startReview(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req service.ReviewStart
	if err := decode(w, r, 1<<16, &req, true); err != nil {
		return err
	}
	v, err := h.api.StartReview(r.Context(), a, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (h *handlers) reviews(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	vs, err := h.api.Reviews(r.Context(), a)
	if err != nil {
		return err
	}
	if vs == nil {
		vs = []service.Review{}
	}
	writeJSON(w, http.StatusOK, vs)
	return nil
}

func (h *handlers) showReview(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	v, err := h.api.ShowReview(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (h *handlers) reviewFinding(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var st service.ReviewStep
	if err := decode(w, r, 1<<16, &st, false); err != nil {
		return err
	}
	v, err := h.api.RecordFinding(r.Context(), a, r.PathValue("id"), st)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (h *handlers) closeInvestigation(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var st service.ReviewStep
	if err := decode(w, r, 1<<16, &st, false); err != nil {
		return err
	}
	v, err := h.api.CloseInvestigation(r.Context(), a, r.PathValue("id"), st)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (h *handlers) closeReview(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	v, err := h.api.CloseReview(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// reviewReport: GET /v1/reviews/{id}/report?format=html|csv&lang=zh-TW|en;
// the body is the report itself.
func (h *handlers) reviewReport(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = service.FormatHTML
	}
	b, err := h.api.ReviewReport(r.Context(), a, r.PathValue("id"), format, q.Get("lang"))
	if err != nil {
		return err
	}
	ct := "text/html; charset=utf-8"
	if format == service.FormatCSV {
		ct = "text/csv; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}

func (h *handlers) cosignAccess(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var q service.AccessQuery
	if err := decode(w, r, 1<<16, &q, false); err != nil {
		return err
	}
	c, err := h.api.CosignAccess(r.Context(), a, q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// accessRecords: GET /v1/access?period=&user=&uncosigned=true.
func (h *handlers) accessRecords(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	q := r.URL.Query()
	recs, err := h.api.AccessRecords(r.Context(), a, service.AccessQuery{Period: q.Get("period"), User: q.Get("user"), Uncosigned: q.Get("uncosigned") == "true"})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, recs)
	return nil
}

func (h *handlers) recordTraining(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req service.TrainingRecord
	if err := decode(w, r, 1<<16, &req, false); err != nil {
		return err
	}
	t, err := h.api.RecordTraining(r.Context(), a, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

// trainingReport: GET /v1/training/report?year=Y. A missing year is left
// to the service to refuse.
func (h *handlers) trainingReport(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	year := 0
	if s := r.URL.Query().Get("year"); s != "" {
		var err error
		if year, err = strconv.Atoi(s); err != nil {
			return fmt.Errorf("%w: year: %q is not a year", service.ErrInvalid, s)
		}
	}
	out, err := h.api.TrainingReport(r.Context(), a, year)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// ArchiveRequest asks for the events before a time.
type ArchiveRequest struct {
	Before time.Time `json:"before"`
}

func (h *handlers) archiveLedger(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req ArchiveRequest
	if err := decode(w, r, 1<<16, &req, true); err != nil {
		return err
	}
	out, err := h.api.ArchiveLedger(r.Context(), a, req.Before)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handlers) filePruneRequest(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req service.PruneRequest
	if err := decode(w, r, 1<<16, &req, false); err != nil {
		return err
	}
	q, err := h.api.FilePruneRequest(r.Context(), a, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, q)
	return nil
}
