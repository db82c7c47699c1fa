package daemon

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"custodian/service"
)

// StartReview draws a review's sample.
func (c *Client) StartReview(ctx context.Context, req service.ReviewStart) (service.Review, error) {
	var v service.Review
	return v, c.postJSON(ctx, "/v1/reviews", req, &v)
}

// Reviews lists the reviews (without samples).
func (c *Client) Reviews(ctx context.Context) ([]service.Review, error) {
	var vs []service.Review
	return vs, c.getJSON(ctx, "/v1/reviews", &vs)
}

// ShowReview returns a review with its sample and findings.
func (c *Client) ShowReview(ctx context.Context, id string) (service.Review, error) {
	var v service.Review
	return v, c.getJSON(ctx, "/v1/reviews/"+url.PathEscape(id), &v)
}

// RecordFinding records a finding on a sampled record.
func (c *Client) RecordFinding(ctx context.Context, id string, f service.ReviewStep) (service.Review, error) {
	var v service.Review
	return v, c.postJSON(ctx, "/v1/reviews/"+url.PathEscape(id)+"/findings", f, &v)
}

// CloseInvestigation closes an anomaly's investigation with its outcome.
func (c *Client) CloseInvestigation(ctx context.Context, id string, st service.ReviewStep) (service.Review, error) {
	var v service.Review
	return v, c.postJSON(ctx, "/v1/reviews/"+url.PathEscape(id)+"/investigations/close", st, &v)
}

// CloseReview closes a review.
func (c *Client) CloseReview(ctx context.Context, id string) (service.Review, error) {
	var v service.Review
	return v, c.postJSON(ctx, "/v1/reviews/"+url.PathEscape(id)+"/close", struct{}{}, &v)
}

// ReviewReport returns a review's report.
func (c *Client) ReviewReport(ctx context.Context, id, format, lang string) ([]byte, error) {
	v := url.Values{"format": {format}}
	if lang != "" {
		v.Set("lang", lang)
	}
	resp, err := c.do(ctx, http.MethodGet, "/v1/reviews/"+url.PathEscape(id)+"/report?"+v.Encode(), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// CosignAccess co-signs access records.
func (c *Client) CosignAccess(ctx context.Context, q service.AccessQuery) (service.Cosigned, error) {
	var out service.Cosigned
	return out, c.postJSON(ctx, "/v1/access/cosign", q, &out)
}

// AccessRecords lists access records.
func (c *Client) AccessRecords(ctx context.Context, q service.AccessQuery) ([]service.AccessRecord, error) {
	v := url.Values{"period": {q.Period}}
	if q.User != "" {
		v.Set("user", q.User)
	}
	if q.Uncosigned {
		v.Set("uncosigned", "true")
	}
	var out []service.AccessRecord
	return out, c.getJSON(ctx, "/v1/access?"+v.Encode(), &out)
}

// RecordTraining records training hours.
func (c *Client) RecordTraining(ctx context.Context, req service.TrainingRecord) (service.Training, error) {
	var t service.Training
	return t, c.postJSON(ctx, "/v1/training", req, &t)
}

// TrainingReport lists designated staff short of training in year.
func (c *Client) TrainingReport(ctx context.Context, year int) ([]service.TrainingShort, error) {
	var out []service.TrainingShort
	return out, c.getJSON(ctx, "/v1/training/report?year="+strconv.Itoa(year), &out)
}

// ArchiveLedger returns an archive of the events before before.
func (c *Client) ArchiveLedger(ctx context.Context, before time.Time) (service.Archived, error) {
	var out service.Archived
	return out, c.postJSON(ctx, "/v1/audit/archive", ArchiveRequest{Before: before}, &out)
}

// FilePruneRequest files a prune request.
func (c *Client) FilePruneRequest(ctx context.Context, req service.PruneRequest) (service.RequestView, error) {
	var q service.RequestView
	return q, c.postJSON(ctx, "/v1/requests/prune", req, &q)
}
