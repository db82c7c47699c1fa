package daemon

import (
	"context"
	"net/http"
	"net/url"

	"custodian/service"
)

// The routes of destruction (clause 四(三)), retention and key rotation.
// Bodies that carry the vault passphrase travel over the Unix socket or
// TLS only, and are never logged.

// DestructionAPI is the part of API these routes call.
type DestructionAPI interface {
	FileDestruction(ctx context.Context, a service.Actor, req service.DestructionRequest) (service.RequestView, error)
	RunDestruction(ctx context.Context, a service.Actor, id string, opts service.DestroyOptions) (service.Certificate, error)
	DestructionCertificate(ctx context.Context, a service.Actor, id string) (service.Certificate, error)
	RotateVault(ctx context.Context, a service.Actor, req service.RotateRequest) (service.Rotation, error)
	ExpiringDatasets(ctx context.Context, a service.Actor) ([]service.Expiring, error)
}

// destructionRoutes are appended to routes.
var destructionRoutes = []route{
	{"POST /v1/destructions", service.ActRequestDestruction, (*handlers).fileDestruction, false},
	{"POST /v1/destructions/{id}/run", service.ActDestroy, (*handlers).runDestruction, false},
	{"GET /v1/destructions/{id}/certificate", service.ActReadCertificate, (*handlers).certificate, false},
	{"POST /v1/vault/rotate", service.ActRotateVault, (*handlers).rotateVault, false},
	{"GET /v1/retention/expiring", service.ActExpiring, (*handlers).expiring, false},
}

func (h *handlers) fileDestruction(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req service.DestructionRequest
	if err := decode(w, r, 1<<20, &req, false); err != nil {
		return err
	}
	q, err := h.api.FileDestruction(r.Context(), a, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, q)
	return nil
}

func (h *handlers) runDestruction(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var opts service.DestroyOptions
	if err := decode(w, r, 64<<10, &opts, false); err != nil {
		return err
	}
	defer clear(opts.Passphrase)
	defer clear(opts.NewPassphrase)
	// Like a run, the erase belongs to the daemon: a client that goes away
	// does not stop it half-way.
	h.wg.Add(1)
	defer h.wg.Done()
	c, err := h.api.RunDestruction(h.runCtx, a, r.PathValue("id"), opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (h *handlers) certificate(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	c, err := h.api.DestructionCertificate(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (h *handlers) rotateVault(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	var req service.RotateRequest
	if err := decode(w, r, 64<<10, &req, false); err != nil {
		return err
	}
	defer clear(req.Passphrase)
	defer clear(req.NewPassphrase)
	h.wg.Add(1)
	defer h.wg.Done()
	out, err := h.api.RotateVault(h.runCtx, a, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handlers) expiring(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	list, err := h.api.ExpiringDatasets(r.Context(), a)
	if err != nil {
		return err
	}
	if list == nil {
		list = []service.Expiring{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// FileDestruction files a destruction request for datasets.
func (c *Client) FileDestruction(ctx context.Context, req service.DestructionRequest) (service.RequestView, error) {
	var q service.RequestView
	return q, c.postJSON(ctx, "/v1/destructions", req, &q)
}

// RunDestruction carries out an approved destruction request.
func (c *Client) RunDestruction(ctx context.Context, id string, opts service.DestroyOptions) (service.Certificate, error) {
	var out service.Certificate
	return out, c.postJSON(ctx, "/v1/destructions/"+url.PathEscape(id)+"/run", opts, &out)
}

// DestructionCertificate returns a destruction certificate.
func (c *Client) DestructionCertificate(ctx context.Context, id string) (service.Certificate, error) {
	var out service.Certificate
	return out, c.getJSON(ctx, "/v1/destructions/"+url.PathEscape(id)+"/certificate", &out)
}

// RotateVault replaces the vault's master key.
func (c *Client) RotateVault(ctx context.Context, req service.RotateRequest) (service.Rotation, error) {
	var out service.Rotation
	return out, c.postJSON(ctx, "/v1/vault/rotate", req, &out)
}

// ExpiringDatasets lists the datasets past their job's retention.
func (c *Client) ExpiringDatasets(ctx context.Context) ([]service.Expiring, error) {
	var out []service.Expiring
	return out, c.getJSON(ctx, "/v1/retention/expiring", &out)
}
