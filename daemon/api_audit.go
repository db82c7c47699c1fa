package daemon

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"custodian/proof"
	"custodian/service"
)

// The auditor's routes: the filtered event log, proofs, kept checkpoints.

// searchEvents: GET /v1/audit/events?from=&limit=&since=&until=&actor=
// &dataset=&type=&purpose=&unit=&order=asc|desc&before= (times in RFC
// 3339; order=desc lists newest first, below before if given).
func (h *handlers) searchEvents(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	q := r.URL.Query()
	eq := service.EventQuery{Limit: 1000, Actor: q.Get("actor"), Dataset: q.Get("dataset"), Type: q.Get("type"),
		Purpose: q.Get("purpose"), Unit: q.Get("unit")}
	var err error
	if s := q.Get("from"); s != "" {
		if eq.From, err = strconv.ParseInt(s, 10, 64); err != nil {
			return fmt.Errorf("%w: from: %q is not an event index (0 or more)", service.ErrInvalid, s)
		}
	}
	if s := q.Get("order"); s != "" {
		switch s {
		case "desc":
			eq.Desc = true
		case "asc":
		default:
			return fmt.Errorf("%w: order: %q; use asc or desc", service.ErrInvalid, s)
		}
	}
	if s := q.Get("before"); s != "" {
		if eq.Before, err = strconv.ParseInt(s, 10, 64); err != nil {
			return fmt.Errorf("%w: before: %q is not an event index (0 or more)", service.ErrInvalid, s)
		}
	}
	if s := q.Get("limit"); s != "" {
		if eq.Limit, err = strconv.Atoi(s); err != nil {
			return fmt.Errorf("%w: limit: %q is not a number; use 1 to %d", service.ErrInvalid, s, service.MaxLogLimit)
		}
	}
	for _, t := range []struct {
		name string
		to   *time.Time
	}{{"since", &eq.Since}, {"until", &eq.Until}} {
		if s := q.Get(t.name); s != "" {
			if *t.to, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return fmt.Errorf("%w: %s: %q is not an RFC 3339 time", service.ErrInvalid, t.name, s)
			}
		}
	}
	page, err := h.api.SearchEvents(r.Context(), a, eq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// proveEvent: GET /v1/audit/proofs/inclusion?index=N. A missing index is
// left to the service to refuse.
func (h *handlers) proveEvent(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	index := int64(-1)
	if s := r.URL.Query().Get("index"); s != "" {
		var err error
		if index, err = strconv.ParseInt(s, 10, 64); err != nil {
			return fmt.Errorf("%w: index: %q is not an event index (0 or more)", service.ErrInvalid, s)
		}
	}
	p, err := h.api.ProveEvent(r.Context(), a, index)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// ConsistencyRequest names two checkpoints (signed note texts); an empty
// New means the ledger's current checkpoint.
type ConsistencyRequest struct {
	Old string `json:"old"`
	New string `json:"new,omitempty"`
}

func (h *handlers) proveConsistency(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req ConsistencyRequest
	if err := decode(w, r, 1<<20, &req, true); err != nil {
		return err
	}
	p, err := h.api.ProveConsistency(r.Context(), a, req.Old, req.New)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (h *handlers) keptCheckpoints(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	ks, err := h.api.KeptCheckpoints(r.Context(), a)
	if err != nil {
		return err
	}
	if ks == nil {
		ks = []proof.Kept{}
	}
	writeJSON(w, http.StatusOK, ks)
	return nil
}
