package web

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"custodian/accounts"
	"custodian/audit"
	"custodian/configs"
	"custodian/service"
)

// This file files the requests about data and the ledger from the
// console: an export, an emergency use or an exceptional read (forms on a
// dataset's page), and a ledger prune (a form on the ledger page). Each
// POST calls the one service method the API calls and answers with
// Post/Redirect/Get to the new request's page. A form the service finds
// invalid (ErrInvalid: a bad recipient, a short reason) is shown again
// with the service's explanation and what was typed. Carrying out a read
// or an export stays in the CLI: the bytes go only through the
// lifecycle's read and export paths, never through a page.

// formError is a form shown again: which form, the service's explanation,
// and what was typed.
type formError struct {
	Form   string
	Detail string
	Values url.Values
}

// Value is what was typed in field name of form f, if f is the form shown
// again.
func (e *formError) Value(f, name string) string {
	if e == nil || e.Form != f {
		return ""
	}
	return e.Values.Get(name)
}

// Has reports whether value was among what was typed (ticked) in field
// name of form f, if f is the form shown again.
func (e *formError) Has(f, name, value string) bool {
	return e != nil && e.Form == f && slices.Contains(e.Values[name], value)
}

// invalid reports whether err is a form's mistake to show beside the form
// (ErrInvalid); the console's failure hook is told of it like of any
// failed request.
func (c *Console) invalid(r *http.Request, a service.Actor, err error) bool {
	if !errors.Is(err, service.ErrInvalid) {
		return false
	}
	if c.opts.OnError != nil {
		c.opts.OnError(r.URL.Path, a, http.StatusBadRequest, err)
	}
	return true
}

// dataRequestForms fills in which request forms a dataset's page shows:
// only to those the role matrix lets file them (ActFileDataRequest), and
// the exceptional read only for quarantined or held data. The service
// decides again when one is filed.
func dataRequestForms(d *datasetData, a service.Actor) {
	st := audit.State(d.Dataset.State)
	may := service.Permits(a.Roles, service.ActFileDataRequest) && st.Stored()
	d.CanExport = may
	d.CanEmergency = may
	d.CanExceptional = may && (st == audit.StateQuarantined || st == audit.StateHeld)
	d.Purposes = configs.Purposes
}

// datasetAgain shows a dataset's page again with a form's error.
func (c *Console) datasetAgain(w http.ResponseWriter, r *http.Request, a service.Actor, fe *formError) error {
	d, err := c.datasetData(r, a, r.PathValue("id"))
	if err != nil {
		return err
	}
	d.FormError = fe
	c.render(w, http.StatusBadRequest, "dataset", c.view(r, a, "dataset.title", d))
	return nil
}

// fileExport: POST /datasets/{id}/export, an export request (a copy
// encrypted to an age recipient).
func (c *Console) fileExport(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	f := r.PostForm
	q, err := c.svc.FileExport(r.Context(), a, service.ExportRequest{Dataset: r.PathValue("id"),
		Recipient: strings.TrimSpace(f.Get("recipient")), Purpose: f.Get("purpose"), Case: strings.TrimSpace(f.Get("case")), Reason: f.Get("reason")})
	if err != nil {
		if c.invalid(r, a, err) {
			return c.datasetAgain(w, r, a, &formError{Form: string(accounts.KindExport), Detail: service.ProblemOf(err).Detail, Values: f})
		}
		return err
	}
	seeOther(w, r, "/requests/"+url.PathEscape(q.ID), "filed")
	return nil
}

// fileDataRequest: POST /datasets/{id}/data-request, an emergency-use or
// exceptional-read request (kind in the form).
func (c *Console) fileDataRequest(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	f := r.PostForm
	kind := accounts.Kind(f.Get("kind"))
	q, err := c.svc.FileDataRequest(r.Context(), a, service.DataRequest{Kind: kind, Dataset: r.PathValue("id"),
		Purpose: f.Get("purpose"), Case: strings.TrimSpace(f.Get("case")), Reason: f.Get("reason")})
	if err != nil {
		if c.invalid(r, a, err) && slices.Contains([]accounts.Kind{accounts.KindEmergencyUse, accounts.KindExceptionalRead}, kind) {
			return c.datasetAgain(w, r, a, &formError{Form: string(kind), Detail: service.ProblemOf(err).Detail, Values: f})
		}
		return err
	}
	seeOther(w, r, "/requests/"+url.PathEscape(q.ID), "filed")
	return nil
}

// filePrune: POST /ledger/prune, a prune request for the ledger's events
// before a date, naming the archive that holds them.
func (c *Console) filePrune(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	f := r.PostForm
	req := service.PruneRequest{ArchiveSHA256: strings.TrimSpace(f.Get("archive_sha256")), Reason: f.Get("reason")}
	var err error
	if s := strings.TrimSpace(f.Get("before")); s != "" {
		// Dates are the reports' days, as `custodian audit prune --before`
		// reads them.
		req.Before, err = day(s, service.ReportZone, 0)
	}
	var q service.RequestView
	if err == nil {
		q, err = c.svc.FilePruneRequest(r.Context(), a, req)
	}
	if err != nil {
		if c.invalid(r, a, err) {
			d, lerr := c.ledgerData(r, a)
			if lerr != nil {
				return lerr
			}
			d.FormError = &formError{Form: string(accounts.KindPrune), Detail: service.ProblemOf(err).Detail, Values: f}
			c.render(w, http.StatusBadRequest, "ledger", c.view(r, a, "nav.ledger", d))
			return nil
		}
		return err
	}
	seeOther(w, r, "/requests/"+url.PathEscape(q.ID), "filed")
	return nil
}

// kindPlace is one kind of request on the new-request page: where it is
// filed, and whether this person's roles may file it.
type kindPlace struct {
	Kind accounts.Kind
	Key  string // message: where it is filed
	Link string // the page it is filed on, if not this one
	May  bool
}

type newRequestData struct {
	Kinds     []accounts.Kind // the account kinds of the form here
	Roles     []accounts.Role
	Account   bool // the account form is shown
	Places    []kindPlace
	FormError *formError // the account form shown again
}

// newRequest lists every kind of request with its form (account
// requests) or the page it is filed on.
func (c *Console) newRequest(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	c.render(w, http.StatusOK, "newrequest", c.view(r, a, "newrequest.title", newRequestOf(a)))
	return nil
}

// newRequestOf is the new-request page's data for a.
func newRequestOf(a service.Actor) newRequestData {
	may := func(act service.Action) bool { return a.Restricted == "" && service.Permits(a.Roles, act) }
	d := newRequestData{
		Kinds:   []accounts.Kind{accounts.KindAccountCreate, accounts.KindAccountChange, accounts.KindAccountDisable, accounts.KindUnlock},
		Roles:   accounts.Roles,
		Account: may(service.ActFileAccountRequest)}
	for _, k := range accounts.Kinds {
		p := kindPlace{Kind: k}
		switch k {
		case accounts.KindAccountCreate, accounts.KindAccountChange, accounts.KindAccountDisable, accounts.KindUnlock:
			p.Key, p.Link, p.May = "newrequest.here", "#new-request", may(service.ActFileAccountRequest)
		case accounts.KindDestruction:
			p.Key, p.Link, p.May = "newrequest.on_dataset", "/datasets", may(service.ActRequestDestruction)
		case accounts.KindExport, accounts.KindEmergencyUse, accounts.KindExceptionalRead:
			p.Key, p.Link, p.May = "newrequest.on_dataset", "/datasets", may(service.ActFileDataRequest)
		case accounts.KindHandover:
			p.Key, p.Link, p.May = "newrequest.on_handover", "/handovers/new", may(service.ActFileHandover)
		case accounts.KindPrune:
			p.Key, p.Link, p.May = "newrequest.on_ledger", "/ledger#prune-form", may(service.ActPruneLedger)
		default:
			p.Key = "newrequest.cli"
		}
		d.Places = append(d.Places, p)
	}
	return d
}
