package daemon

import (
	"context"
	"io"
	"net/http"
	"strconv"

	"custodian/service"
)

// The data lifecycle's routes: seal and unseal, the in-daemon scrub,
// purpose-bound reads, data requests, exports and hand-overs. Reads and
// exports stream application/octet-stream; their outcome, as recorded on
// the ledger when the stream ended, follows in HTTP trailers.

// lifecycleAPI is the part of API these routes call.
type lifecycleAPI interface {
	Unseal(ctx context.Context, a service.Actor, passphrase []byte) (service.VaultState, error)
	Seal(ctx context.Context, a service.Actor) (service.VaultState, error)
	ScrubVault(ctx context.Context, a service.Actor) (service.VaultScrub, error)
	ReadDataset(ctx context.Context, a service.Actor, id string, req service.ReadRequest, w io.Writer) (service.ReadResult, error)
	FileDataRequest(ctx context.Context, a service.Actor, req service.DataRequest) (service.RequestView, error)
	FileExport(ctx context.Context, a service.Actor, req service.ExportRequest) (service.RequestView, error)
	RunExport(ctx context.Context, a service.Actor, id string, w io.Writer) (service.ExportResult, error)
	FileHandover(ctx context.Context, a service.Actor, req service.HandoverRequest) (service.RequestView, error)
	AcceptHandover(ctx context.Context, a service.Actor, id string) (service.Handover, error)
	HandoverView(ctx context.Context, a service.Actor, id string) (service.Handover, error)
}

func init() {
	routes = append(routes,
		route{"POST /v1/vault/unseal", service.ActUnseal, (*handlers).unseal, false},
		route{"POST /v1/vault/seal", service.ActSeal, (*handlers).seal, false},
		route{"POST /v1/vault/scrub", service.ActScrubVault, (*handlers).scrubVault, false},
		route{"POST /v1/datasets/{id}/read", service.ActReadDataset, (*handlers).readDataset, false},
		route{"POST /v1/requests/data", service.ActFileDataRequest, (*handlers).fileDataRequest, false},
		route{"POST /v1/requests/export", service.ActFileDataRequest, (*handlers).fileExport, false},
		route{"POST /v1/exports/{id}/run", service.ActRunExport, (*handlers).runExport, false},
		route{"POST /v1/requests/handover", service.ActFileHandover, (*handlers).fileHandover, false},
		route{"POST /v1/handovers/{id}/accept", service.ActAcceptHandover, (*handlers).acceptHandover, false},
		route{"GET /v1/handovers/{id}", service.ActReadHandover, (*handlers).handover, false},
	)
}

// UnsealRequest carries the vault passphrase (over the socket or TLS).
type UnsealRequest struct {
	Passphrase string `json:"passphrase"`
}

func (h *handlers) unseal(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req UnsealRequest
	if err := decode(w, r, 8<<10, &req, false); err != nil {
		return err
	}
	st, err := h.api.Unseal(r.Context(), a, []byte(req.Passphrase))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (h *handlers) seal(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	st, err := h.api.Seal(r.Context(), a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (h *handlers) scrubVault(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	res, err := h.api.ScrubVault(r.Context(), a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// The trailers of a read or an export: what the ledger recorded.
const (
	TrailerOutcome = "Custodian-Outcome"
	TrailerSHA256  = "Custodian-Sha256"
	TrailerBytes   = "Custodian-Bytes"
	TrailerIndex   = "Custodian-Ledger-Index"
)

// stream runs a call that writes a download to w. A refusal before the
// first byte is a problem response; after it, the outcome goes in the
// trailers (the client checks them).
func stream(w http.ResponseWriter, call func(io.Writer) (outcome, sha string, n, index int64, err error)) error {
	w.Header().Set("Trailer", TrailerOutcome+", "+TrailerSHA256+", "+TrailerBytes+", "+TrailerIndex)
	hw := &headerOnWrite{w: w}
	outcome, sha, n, index, err := call(hw)
	if !hw.started {
		if err != nil && outcome == "" {
			w.Header().Del("Trailer")
			return err
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
	}
	w.Header().Set(TrailerOutcome, outcome)
	w.Header().Set(TrailerSHA256, sha)
	w.Header().Set(TrailerBytes, strconv.FormatInt(n, 10))
	w.Header().Set(TrailerIndex, strconv.FormatInt(index, 10))
	return nil
}

func (h *handlers) readDataset(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req service.ReadRequest
	if err := decode(w, r, 8<<10, &req, false); err != nil {
		return err
	}
	return stream(w, func(out io.Writer) (string, string, int64, int64, error) {
		res, err := h.api.ReadDataset(r.Context(), a, r.PathValue("id"), req, out)
		return res.Outcome, res.SHA256, res.Bytes, res.Index, err
	})
}

func (h *handlers) runExport(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	return stream(w, func(out io.Writer) (string, string, int64, int64, error) {
		res, err := h.api.RunExport(r.Context(), a, r.PathValue("id"), out)
		return res.Outcome, res.SHA256, res.Bytes, res.Index, err
	})
}

func (h *handlers) fileDataRequest(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req service.DataRequest
	if err := decode(w, r, 64<<10, &req, false); err != nil {
		return err
	}
	q, err := h.api.FileDataRequest(r.Context(), a, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, q)
	return nil
}

func (h *handlers) fileExport(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req service.ExportRequest
	if err := decode(w, r, 64<<10, &req, false); err != nil {
		return err
	}
	q, err := h.api.FileExport(r.Context(), a, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, q)
	return nil
}

func (h *handlers) fileHandover(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req service.HandoverRequest
	if err := decode(w, r, 64<<10, &req, false); err != nil {
		return err
	}
	q, err := h.api.FileHandover(r.Context(), a, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, q)
	return nil
}

func (h *handlers) acceptHandover(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	x, err := h.api.AcceptHandover(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, x)
	return nil
}

func (h *handlers) handover(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	x, err := h.api.HandoverView(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, x)
	return nil
}
