package service

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"custodian/accounts"
	"custodian/audit"
)

// This file holds what the web console (package web) asks besides the use
// cases the API shares: a filtered, paged dataset list that stays fast
// with many datasets, the session idle limit the browser blanks the page
// at, and whether the approvals engine would let an actor take a step on a
// request (so that a button is shown only when the step can succeed; the
// step itself is still decided by the engine when it is taken).

// DatasetQuery selects a page of datasets. Empty fields select everything.
type DatasetQuery struct {
	Job     string `json:"job,omitempty"`
	State   string `json:"state,omitempty"`
	Purpose string `json:"purpose,omitempty"`
	// Unit: datasets belong to the installation's unit (configuration
	// `unit`, clause 八); another unit selects none.
	Unit string `json:"unit,omitempty"`
	// Since and Until bound the received time: Since <= received < Until.
	Since  time.Time `json:"since,omitzero"`
	Until  time.Time `json:"until,omitzero"`
	Offset int       `json:"offset,omitempty"`
	Limit  int       `json:"limit,omitempty"` // 1 to MaxDatasetPage
}

// MaxDatasetPage is the most datasets one page holds.
const MaxDatasetPage = 500

// DatasetPage is one page of datasets, newest first, and how many match.
type DatasetPage struct {
	Datasets []DatasetView `json:"datasets"`
	Total    int           `json:"total"`
	Offset   int           `json:"offset"`
	Limit    int           `json:"limit"`
}

// DatasetPage returns one page of the datasets that match q (metadata
// only), read from the ledger's datasets bucket without loading every
// dataset.
func (s *Service) DatasetPage(ctx context.Context, a Actor, q DatasetQuery) (DatasetPage, error) {
	if err := s.authorize(a, ActListDatasets, Resource{Kind: "dataset"}); err != nil {
		return DatasetPage{}, err
	}
	if q.Offset < 0 {
		return DatasetPage{}, fmt.Errorf("%w: offset: %d is not 0 or more", ErrInvalid, q.Offset)
	}
	if q.Limit < 1 || q.Limit > MaxDatasetPage {
		return DatasetPage{}, fmt.Errorf("%w: limit: %d is out of range; use 1 to %d", ErrInvalid, q.Limit, MaxDatasetPage)
	}
	if q.State != "" && !isState(q.State) {
		return DatasetPage{}, fmt.Errorf("%w: state: %q is not a dataset state", ErrInvalid, q.State)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return DatasetPage{}, fmt.Errorf("%w: since (%s) must be before until (%s)", ErrInvalid, q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339))
	}
	page := DatasetPage{Datasets: []DatasetView{}, Offset: q.Offset, Limit: q.Limit}
	if q.Unit != "" && q.Unit != s.config().Unit {
		return page, nil
	}
	ds, total, err := s.Ledger.DatasetPage(audit.DatasetFilter{Job: q.Job, State: audit.State(q.State), Purpose: q.Purpose,
		Since: q.Since, Until: q.Until}, q.Offset, q.Limit)
	if err != nil {
		return DatasetPage{}, err
	}
	page.Total = total
	for _, d := range ds {
		page.Datasets = append(page.Datasets, ViewDataset(d))
	}
	return page, nil
}

func isState(s string) bool {
	for _, st := range audit.States {
		if string(st) == s {
			return true
		}
	}
	return false
}

// IdleLimit is how long a session may stay unused (accounts.session.idle):
// the console blanks the page after it.
func (s *Service) IdleLimit() time.Duration { return s.policy().Idle }

// Step is a step a person may take on a request.
type Step string

// The steps on a request.
const (
	StepApprove Step = "approve"
	StepReject  Step = "reject"
	StepCancel  Step = "cancel"
	StepExecute Step = "execute"
)

// MayStep reports whether a's step on q would be allowed now: the role
// matrix allows the action and the approvals engine the step (tried on a
// copy of q, which is not stored). It records nothing; taking the step
// decides again.
func (s *Service) MayStep(a Actor, q RequestView, step Step) bool {
	act := map[Step]Action{StepApprove: ActDecideRequest, StepReject: ActDecideRequest, StepCancel: ActCancelRequest, StepExecute: ActExecuteRequest}[step]
	if act == "" || a.Restricted != "" || !Permits(a.Roles, act) {
		return false
	}
	b, err := json.Marshal(q.Request)
	if err != nil {
		return false
	}
	var c accounts.Request
	if err := json.Unmarshal(b, &c); err != nil {
		return false
	}
	now, reason := s.now(), strings.Repeat("x", MinReason)
	switch step {
	case StepApprove:
		return c.Approve(a.Name, a.Roles, reason, now) == nil
	case StepReject:
		return c.Reject(a.Name, a.Roles, reason, now) == nil
	case StepCancel:
		return c.Cancel(a.Name, now) == nil
	default:
		return c.Execute(a.Name, a.Roles, now) == nil
	}
}

// Allow asks the role matrix whether a may perform act, as a console page
// that needs act does before it shows anything: a refusal is recorded
// (access.refused, resource "console PAGE") like every other.
func (s *Service) Allow(a Actor, act Action, page string) error {
	return s.authorize(a, act, Resource{Kind: "console", ID: page})
}
