package daemon

import (
	"context"
	"net/http"
	"net/url"

	"custodian/service"
)

// sessionsAPI is the part of API the "my sessions" routes call: a person
// lists and ends their own sessions, never another's.
type sessionsAPI interface {
	Sessions(ctx context.Context, a service.Actor) ([]service.SessionView, error)
	RevokeSession(ctx context.Context, a service.Actor, id string) error
}

func init() {
	routes = append(routes,
		route{"GET /v1/sessions", service.ActSelf, (*handlers).sessions, false},
		route{"POST /v1/sessions/{id}/revoke", service.ActSelf, (*handlers).revokeSession, false},
	)
}

func (h *handlers) sessions(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	ss, err := h.api.Sessions(r.Context(), a)
	if err != nil {
		return err
	}
	if ss == nil {
		ss = []service.SessionView{}
	}
	writeJSON(w, http.StatusOK, ss)
	return nil
}

func (h *handlers) revokeSession(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	id := r.PathValue("id")
	if err := h.api.RevokeSession(r.Context(), a, id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"session": id, "state": "ended"})
	return nil
}

// Sessions lists the caller's live sessions.
func (c *Client) Sessions(ctx context.Context) ([]service.SessionView, error) {
	var ss []service.SessionView
	return ss, c.getJSON(ctx, "/v1/sessions", &ss)
}

// RevokeSession ends one of the caller's sessions by its ID.
func (c *Client) RevokeSession(ctx context.Context, id string) error {
	var out map[string]string
	return c.postJSON(ctx, "/v1/sessions/"+url.PathEscape(id)+"/revoke", struct{}{}, &out)
}
