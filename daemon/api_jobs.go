package daemon

import (
	"context"
	"net/http"
	"net/url"

	"custodian/service"
)

// jobsAPI is the part of API the pause and resume routes call.
type jobsAPI interface {
	PauseJob(ctx context.Context, a service.Actor, job, reason string) (service.Pause, error)
	ResumeJob(ctx context.Context, a service.Actor, job, reason string) (service.Pause, error)
}

func init() {
	routes = append(routes,
		route{"POST /v1/jobs/{name}/pause", service.ActPauseJob, (*handlers).pauseJob, false},
		route{"POST /v1/jobs/{name}/resume", service.ActPauseJob, (*handlers).resumeJob, false},
	)
}

func (h *handlers) pauseJob(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req ActionRequest
	if err := decode(w, r, 64<<10, &req, false); err != nil {
		return err
	}
	p, err := h.api.PauseJob(r.Context(), a, r.PathValue("name"), req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (h *handlers) resumeJob(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req ActionRequest
	if err := decode(w, r, 64<<10, &req, true); err != nil {
		return err
	}
	p, err := h.api.ResumeJob(r.Context(), a, r.PathValue("name"), req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// PauseJob stops a job's runs until it is resumed, with the reason.
func (c *Client) PauseJob(ctx context.Context, job, reason string) (service.Pause, error) {
	var p service.Pause
	return p, c.postJSON(ctx, "/v1/jobs/"+url.PathEscape(job)+"/pause", ActionRequest{Reason: reason}, &p)
}

// ResumeJob lets a paused job run again; the reason is optional.
func (c *Client) ResumeJob(ctx context.Context, job, reason string) (service.Pause, error) {
	var p service.Pause
	return p, c.postJSON(ctx, "/v1/jobs/"+url.PathEscape(job)+"/resume", ActionRequest{Reason: reason}, &p)
}
