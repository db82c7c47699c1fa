package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"custodian/accounts"
	"custodian/proof"
	"custodian/service"
)

// This file holds the pages of the data's later life: destruction
// (request, approval in full, run with the unsealed key, certificate),
// hand-over (inventory with its signatures, acceptance), sampling reviews
// (sample, findings, investigations, report), training and consistency
// proofs. Each calls one service method, which decides.

// destructionItem is one dataset of a destruction request as the approval
// page shows it: what would be erased, by its metadata.
type destructionItem struct {
	ID    string
	Found bool
	D     service.DatasetView
}

// requestExtra is what the request page shows beyond the request itself
// for a destruction or a hand-over.
type requestExtra struct {
	Items      []destructionItem
	TotalSize  int64
	Destroy    bool // the run button: the person may carry it out now
	Sealed     bool // the daemon holds no vault key
	Accept     bool // the hand-over's accept button
	HasCert    bool
	IsHandover bool
}

// extra fills in a destruction's datasets (each through Service.Dataset,
// so only for those who may see datasets) and the buttons the service's
// rules admit.
func (c *Console) extra(r *http.Request, a service.Actor, q service.RequestView) (*requestExtra, error) {
	switch q.Kind {
	case accounts.KindDestruction:
		x := &requestExtra{HasCert: q.Details["certificate_event"] != "" && service.Permits(a.Roles, service.ActReadCertificate)}
		if service.Permits(a.Roles, service.ActShowDataset) {
			for _, id := range strings.Fields(q.Details["datasets"]) {
				det, err := c.svc.Dataset(r.Context(), a, id)
				it := destructionItem{ID: id, Found: err == nil, D: det.Dataset}
				x.Items = append(x.Items, it)
				x.TotalSize += det.Dataset.Size
			}
		}
		if c.svc.MayCarryOut(a, q, service.ActDestroy) {
			x.Destroy = true
			st, err := c.svc.Status(r.Context(), a)
			if err != nil {
				return nil, err
			}
			x.Sealed = st.Vault == nil || st.Vault.Sealed
		}
		return x, nil
	case accounts.KindHandover:
		return &requestExtra{IsHandover: true, Accept: c.svc.MayCarryOut(a, q, service.ActAcceptHandover)}, nil
	}
	return nil, nil
}

func (c *Console) fileDestruction(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	ids := []string{r.PathValue("id")}
	for _, id := range strings.Fields(r.PostFormValue("more")) {
		ids = append(ids, id)
	}
	q, err := c.svc.FileDestruction(r.Context(), a, service.DestructionRequest{Datasets: ids, Reason: r.PostFormValue("reason")})
	if err != nil {
		return err
	}
	seeOther(w, r, "/requests/"+url.PathEscape(q.ID), "filed")
	return nil
}

// runDestruction carries out an approved destruction with the key an
// officer unsealed into the daemon: the console never asks for the vault
// passphrase, and a sealed daemon refuses (the service says so).
func (c *Console) runDestruction(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := c.svc.RunDestruction(r.Context(), a, id, service.DestroyOptions{}); err != nil {
		return err
	}
	seeOther(w, r, "/certificates/"+url.PathEscape(id), "destroyed")
	return nil
}

type certificateData struct {
	C         service.Certificate
	TotalSize int64
	Approvers []string
	ProofLink bool
}

func (c *Console) certificate(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	cert, err := c.svc.DestructionCertificate(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	d := certificateData{C: cert, ProofLink: service.Permits(a.Roles, service.ActReadLedger)}
	for _, it := range cert.Items {
		d.TotalSize += it.Size
	}
	for _, s := range strings.Split(cert.ApprovedBy, "; ") {
		if s = strings.TrimSpace(s); s != "" {
			d.Approvers = append(d.Approvers, s)
		}
	}
	c.render(w, http.StatusOK, "certificate", c.view(r, a, "cert.title", d))
	return nil
}

func (c *Console) newHandover(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	c.render(w, http.StatusOK, "newhandover", c.view(r, a, "handover.new", nil))
	return nil
}

func (c *Console) fileHandover(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	q, err := c.svc.FileHandover(r.Context(), a, service.HandoverRequest{From: strings.TrimSpace(r.PostFormValue("from")),
		To: strings.TrimSpace(r.PostFormValue("to")), Reason: r.PostFormValue("reason")})
	if err != nil {
		return err
	}
	seeOther(w, r, "/handovers/"+url.PathEscape(q.ID), "filed")
	return nil
}

type handoverData struct {
	H         service.Handover
	TotalSize int64
	Accept    bool
}

func (c *Console) handover(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	h, err := c.svc.HandoverView(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	d := handoverData{H: h, Accept: c.svc.MayCarryOut(a, h.Request, service.ActAcceptHandover)}
	for _, it := range h.Inventory {
		d.TotalSize += it.Size
	}
	c.render(w, http.StatusOK, "handover", c.view(r, a, "handover.title", d))
	return nil
}

func (c *Console) acceptHandover(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := c.svc.AcceptHandover(r.Context(), a, id); err != nil {
		return err
	}
	seeOther(w, r, "/handovers/"+url.PathEscape(id), "accepted")
	return nil
}

type reviewsData struct {
	List  []service.Review
	Start bool
}

func (c *Console) reviews(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	list, err := c.svc.Reviews(r.Context(), a)
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "reviews", c.view(r, a, "nav.reviews", reviewsData{List: list, Start: service.Permits(a.Roles, service.ActRunReview)}))
	return nil
}

func (c *Console) startReview(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	req := service.ReviewStart{Period: strings.TrimSpace(r.PostFormValue("period")), Rate: strings.TrimSpace(r.PostFormValue("rate")),
		Seed: strings.TrimSpace(r.PostFormValue("seed"))}
	if s := strings.TrimSpace(r.PostFormValue("min_per_person")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: min_per_person: %q is not 0 or more", service.ErrInvalid, s)
		}
		req.MinPerPerson = n
	}
	v, err := c.svc.StartReview(r.Context(), a, req)
	if err != nil {
		return err
	}
	seeOther(w, r, "/reviews/"+url.PathEscape(v.ID), "done")
	return nil
}

type reviewData struct {
	R      service.Review
	Run    bool // may record findings and close (open review, auditor)
	Proofs bool
	Open   int
	Done   int
}

func (c *Console) review(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	v, err := c.svc.ShowReview(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	d := reviewData{R: v, Run: v.Closed == nil && service.Permits(a.Roles, service.ActRunReview), Proofs: service.Permits(a.Roles, service.ActReadLedger),
		Open: len(v.OpenInvestigations())}
	for _, s := range v.Sample {
		if s.Finding != nil {
			d.Done++
		}
	}
	c.render(w, http.StatusOK, "review", c.view(r, a, "review.title", d))
	return nil
}

func record(r *http.Request) (int64, error) {
	s := r.PostFormValue("record")
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: record: %q is not a ledger index", service.ErrInvalid, s)
	}
	return n, nil
}

func (c *Console) recordFinding(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	n, err := record(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := c.svc.RecordFinding(r.Context(), a, id, service.ReviewStep{Record: n, Verdict: r.PostFormValue("verdict"), Note: r.PostFormValue("note")}); err != nil {
		return err
	}
	seeOther(w, r, "/reviews/"+url.PathEscape(id)+"#rec-"+strconv.FormatInt(n, 10), "recorded")
	return nil
}

func (c *Console) closeInvestigation(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	n, err := record(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := c.svc.CloseInvestigation(r.Context(), a, id, service.ReviewStep{Record: n, Note: r.PostFormValue("outcome")}); err != nil {
		return err
	}
	seeOther(w, r, "/reviews/"+url.PathEscape(id), "closed")
	return nil
}

func (c *Console) closeReview(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	id := r.PathValue("id")
	if _, err := c.svc.CloseReview(r.Context(), a, id); err != nil {
		return err
	}
	seeOther(w, r, "/reviews/"+url.PathEscape(id), "closed")
	return nil
}

// reviewReport serves the report the service renders (the same HTML as
// `custodian review report`), in the page's language. Its one inline
// style element is allowed by its hash, nothing else: no script at all.
func (c *Console) reviewReport(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	lang := c.lang(r).Code
	if r.URL.Query().Get("format") == "csv" {
		b, err := c.svc.ReviewReport(r.Context(), a, r.PathValue("id"), service.FormatCSV, lang)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="review-%s.csv"`, r.PathValue("id")))
		_, _ = w.Write(b)
		return nil
	}
	b, err := c.svc.ReviewReport(r.Context(), a, r.PathValue("id"), service.FormatHTML, lang)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Security-Policy", ReportCSP(b))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b)
	return nil
}

// ReportCSP is the Content-Security-Policy of a rendered report: its
// style elements by their SHA-256, no script, nothing from elsewhere.
func ReportCSP(page []byte) string {
	var hashes []string
	rest := page
	for {
		_, after, ok := bytes.Cut(rest, []byte("<style>"))
		if !ok {
			break
		}
		body, tail, ok := bytes.Cut(after, []byte("</style>"))
		if !ok {
			break
		}
		sum := sha256.Sum256(body)
		hashes = append(hashes, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
		rest = tail
	}
	style := "'none'"
	if len(hashes) > 0 {
		style = strings.Join(hashes, " ")
	}
	return "default-src 'none'; style-src " + style + "; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

type trainingData struct {
	Year   int
	Years  []int
	Short  []service.TrainingShort
	Record bool
	Min    int
	Today  string
}

func (c *Console) training(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	now := time.Now().In(c.opts.Location)
	year := now.Year()
	if s := r.URL.Query().Get("year"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%w: year: %q is not a year", service.ErrInvalid, s)
		}
		year = n
	}
	short, err := c.svc.TrainingReport(r.Context(), a, year)
	if err != nil {
		return err
	}
	d := trainingData{Year: year, Short: short, Record: service.Permits(a.Roles, service.ActRecordTraining), Min: service.MinTrainingHours,
		Today: now.Format(time.DateOnly)}
	for y := now.Year(); y > now.Year()-5; y-- {
		d.Years = append(d.Years, y)
	}
	c.render(w, http.StatusOK, "training", c.view(r, a, "nav.training", d))
	return nil
}

func (c *Console) recordTraining(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	if err := form(w, r); err != nil {
		return err
	}
	f := r.PostForm
	t, err := c.svc.RecordTraining(r.Context(), a, service.TrainingRecord{Username: strings.TrimSpace(f.Get("username")),
		Hours: strings.TrimSpace(f.Get("hours")), Date: strings.TrimSpace(f.Get("date")), Course: strings.TrimSpace(f.Get("course")),
		CertificateSHA256: strings.TrimSpace(f.Get("certificate_sha256"))})
	if err != nil {
		return err
	}
	year := t.Date
	if len(year) >= 4 {
		year = year[:4]
	}
	seeOther(w, r, "/training?year="+url.QueryEscape(year), "recorded")
	return nil
}

// consistency downloads the consistency proof from an old checkpoint (the
// signed note text, as downloaded from the ledger page) to the current
// one, as `custodian audit prove --consistency` writes it.
func (c *Console) consistency(w http.ResponseWriter, r *http.Request, a service.Actor) error {
	old := strings.ReplaceAll(r.URL.Query().Get("old"), "\r\n", "\n")
	if old != "" && !strings.HasSuffix(old, "\n") {
		old += "\n"
	}
	p, err := c.svc.ProveConsistency(r.Context(), a, old, "")
	if err != nil {
		return err
	}
	b, err := proof.Encode(p)
	if err != nil {
		return err
	}
	oldSize, _ := proof.CheckpointSize([]byte(old))
	newSize, _ := proof.CheckpointSize([]byte(p.New))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="consistency-%d-%d.json"`, oldSize, newSize))
	_, _ = w.Write(b)
	return nil
}
