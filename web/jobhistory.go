package web

import (
	"net/http"

	"custodian/service"
)

// jobHistoryData is the configuration history page's: the job and its
// versions, newest first, each with its line diff.
type jobHistoryData struct {
	Job     string
	Changes []service.JobChange
}

// jobHistory shows a job's configuration history (Service.JobHistory,
// which decides who may see it).
func (c *Console) jobHistory(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	job := r.PathValue("name")
	hs, err := c.svc.JobHistory(r.Context(), a, job)
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "jobhistory", c.view(r, a, "jobhist.title", jobHistoryData{Job: job, Changes: hs}))
	return nil
}
