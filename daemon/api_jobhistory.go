package daemon

import (
	"context"
	"net/http"
	"net/url"

	"custodian/configs"
	"custodian/service"
)

// A job's configuration history: the daemon records each job's settings
// when they change (at start and on an accepted reload), and the route
// below reads them back with their differences.

// jobHistoryAPI is the part of API the history route calls.
type jobHistoryAPI interface {
	JobHistory(ctx context.Context, a service.Actor, job string) ([]service.JobChange, error)
}

func init() {
	routes = append(routes,
		route{"GET /v1/jobs/{name}/history", service.ActJobHistory, (*handlers).jobHistory, false},
	)
}

func (h *handlers) jobHistory(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	hs, err := h.api.JobHistory(r.Context(), a, r.PathValue("name"))
	if err != nil {
		return err
	}
	if hs == nil {
		hs = []service.JobChange{}
	}
	writeJSON(w, http.StatusOK, hs)
	return nil
}

// JobHistory returns a job's configuration history, newest first.
func (c *Client) JobHistory(ctx context.Context, job string) ([]service.JobChange, error) {
	var hs []service.JobChange
	return hs, c.getJSON(ctx, "/v1/jobs/"+url.PathEscape(job)+"/history", &hs)
}

// recordJobSettings puts on the ledger (job.configured) the settings of
// every job of cfg that differ from the last recorded ones, and the jobs
// recorded before that cfg no longer has. trigger is start or reload. A
// failure (the ledger cannot be written now) is logged; the next start or
// reload compares with what was recorded, so no change is lost for good.
func (d *Daemon) recordJobSettings(cfg *configs.Config, trigger string) {
	evs, err := d.Service.RecordJobSettings(cfg.JobSettings(), trigger)
	if err != nil {
		d.Log.Error().Err(err).Str("trigger", trigger).Msg("cannot record the jobs' settings on the ledger; the next start or reload will")
		return
	}
	for _, ev := range evs {
		d.Log.Info().Str("job", ev.Job).Str("change", ev.Details["change"]).Int64("event", ev.Index).Msg("job settings recorded")
	}
}
