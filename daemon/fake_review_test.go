package daemon

import (
	"context"
	"time"

	"custodian/service"
)

// The fake API's review workbench (routes_test.go).

func init() {
	for k, v := range map[string]string{
		"POST /v1/reviews":                           `{"period": "2026", "seed": "s"}`,
		"POST /v1/reviews/{id}/findings":             `{"record": 1, "verdict": "justified", "note": "a note long enough"}`,
		"POST /v1/reviews/{id}/investigations/close": `{"record": 1, "note": "an outcome long enough"}`,
		"POST /v1/reviews/{id}/close":                `{}`,
		"POST /v1/access/cosign":                     `{"period": "2026"}`,
		"POST /v1/training":                          `{"username": "officer.a", "hours": "3", "date": "2026-01-05", "course": "privacy"}`,
		"POST /v1/audit/archive":                     `{"before": "2020-01-01T00:00:00Z"}`,
		"POST /v1/requests/prune":                    `{"before": "2020-01-01T00:00:00Z", "archive_sha256": "00", "reason": "a reason long enough"}`,
	} {
		routeBodies[k] = v
	}
	reviewMethods = map[service.Action][]string{
		service.ActRunReview:      {"StartReview", "RecordFinding", "CloseInvestigation", "CloseReview"},
		service.ActReadReview:     {"Reviews", "ShowReview", "ReviewReport"},
		service.ActCosignAccess:   {"CosignAccess"},
		service.ActReadAccess:     {"AccessRecords"},
		service.ActRecordTraining: {"RecordTraining"},
		service.ActReadTraining:   {"TrainingReport"},
		service.ActExportLedger:   {"ArchiveLedger"},
		service.ActPruneLedger:    {"FilePruneRequest"},
	}
}

// reviewMethods are the service methods of the review routes, by action.
var reviewMethods map[service.Action][]string

func (f *fakeAPI) StartReview(context.Context, service.Actor, service.ReviewStart) (service.Review, error) {
	f.call("StartReview")
	return service.Review{}, nil
}
func (f *fakeAPI) Reviews(context.Context, service.Actor) ([]service.Review, error) {
	f.call("Reviews")
	return nil, nil
}
func (f *fakeAPI) ShowReview(context.Context, service.Actor, string) (service.Review, error) {
	f.call("ShowReview")
	return service.Review{}, nil
}
func (f *fakeAPI) RecordFinding(context.Context, service.Actor, string, service.ReviewStep) (service.Review, error) {
	f.call("RecordFinding")
	return service.Review{}, nil
}
func (f *fakeAPI) CloseInvestigation(context.Context, service.Actor, string, service.ReviewStep) (service.Review, error) {
	f.call("CloseInvestigation")
	return service.Review{}, nil
}
func (f *fakeAPI) CloseReview(context.Context, service.Actor, string) (service.Review, error) {
	f.call("CloseReview")
	return service.Review{}, nil
}
func (f *fakeAPI) ReviewReport(context.Context, service.Actor, string, string, string) ([]byte, error) {
	f.call("ReviewReport")
	return nil, nil
}
func (f *fakeAPI) CosignAccess(context.Context, service.Actor, service.AccessQuery) (service.Cosigned, error) {
	f.call("CosignAccess")
	return service.Cosigned{}, nil
}
func (f *fakeAPI) AccessRecords(context.Context, service.Actor, service.AccessQuery) ([]service.AccessRecord, error) {
	f.call("AccessRecords")
	return nil, nil
}
func (f *fakeAPI) RecordTraining(context.Context, service.Actor, service.TrainingRecord) (service.Training, error) {
	f.call("RecordTraining")
	return service.Training{}, nil
}
func (f *fakeAPI) TrainingReport(context.Context, service.Actor, int) ([]service.TrainingShort, error) {
	f.call("TrainingReport")
	return nil, nil
}
func (f *fakeAPI) ArchiveLedger(context.Context, service.Actor, time.Time) (service.Archived, error) {
	f.call("ArchiveLedger")
	return service.Archived{}, nil
}
func (f *fakeAPI) FilePruneRequest(context.Context, service.Actor, service.PruneRequest) (service.RequestView, error) {
	f.call("FilePruneRequest")
	return service.RequestView{}, nil
}
