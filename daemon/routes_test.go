package daemon

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"custodian/accounts"
	"custodian/audit"
	"custodian/backup"
	"custodian/configs"
	"custodian/proof"
	"custodian/service"
	"custodian/transfer"
)

// fakeAPI records which service methods a handler calls.
type fakeAPI struct{ calls []string }

func (f *fakeAPI) call(name string) { f.calls = append(f.calls, name) }

func (f *fakeAPI) Status(context.Context, service.Actor) (service.Status, error) {
	f.call("Status")
	return service.Status{}, nil
}
func (f *fakeAPI) RunJob(context.Context, service.Actor, string, string, func(transfer.Progress)) (*transfer.RunResult, error) {
	f.call("RunJob")
	return &transfer.RunResult{}, nil
}
func (f *fakeAPI) Datasets(context.Context, service.Actor) ([]service.DatasetView, error) {
	f.call("Datasets")
	return nil, nil
}
func (f *fakeAPI) Dataset(context.Context, service.Actor, string) (service.DatasetDetail, error) {
	f.call("Dataset")
	return service.DatasetDetail{}, nil
}
func (f *fakeAPI) Release(context.Context, service.Actor, string, string) (service.DatasetView, error) {
	f.call("Release")
	return service.DatasetView{}, nil
}
func (f *fakeAPI) Repull(context.Context, service.Actor, string, string) (transfer.FileOutcome, error) {
	f.call("Repull")
	return transfer.FileOutcome{}, nil
}
func (f *fakeAPI) VerifyLedger(context.Context, service.Actor, audit.VerifyOptions) (*audit.Report, error) {
	f.call("VerifyLedger")
	return &audit.Report{}, nil
}
func (f *fakeAPI) ExportLedger(context.Context, service.Actor, io.Writer) (int64, error) {
	f.call("ExportLedger")
	return 0, nil
}
func (f *fakeAPI) Checkpoint(context.Context, service.Actor) (service.Checkpoint, error) {
	f.call("Checkpoint")
	return service.Checkpoint{}, nil
}
func (f *fakeAPI) Events(context.Context, service.Actor, int64, int) ([]service.EventView, error) {
	f.call("Events")
	return nil, nil
}
func (f *fakeAPI) ScrubPlan(context.Context, service.Actor) (service.ScrubPlan, error) {
	f.call("ScrubPlan")
	return service.ScrubPlan{}, nil
}
func (f *fakeAPI) RecordScrub(context.Context, service.Actor, service.ScrubReport) (service.Recorded, error) {
	f.call("RecordScrub")
	return service.Recorded{}, nil
}
func (f *fakeAPI) RefuseScrub(context.Context, service.Actor, string) error {
	f.call("RefuseScrub")
	return nil
}
func (f *fakeAPI) ProveEvent(context.Context, service.Actor, int64) (proof.Inclusion, error) {
	f.call("ProveEvent")
	return proof.Inclusion{}, nil
}
func (f *fakeAPI) ProveConsistency(context.Context, service.Actor, string, string) (proof.Consistency, error) {
	f.call("ProveConsistency")
	return proof.Consistency{}, nil
}
func (f *fakeAPI) KeptCheckpoints(context.Context, service.Actor) ([]proof.Kept, error) {
	f.call("KeptCheckpoints")
	return nil, nil
}
func (f *fakeAPI) SearchEvents(context.Context, service.Actor, service.EventQuery) (service.EventPage, error) {
	f.call("SearchEvents")
	return service.EventPage{}, nil
}

func (f *fakeAPI) Sessions(context.Context, service.Actor) ([]service.SessionView, error) {
	f.call("Sessions")
	return nil, nil
}
func (f *fakeAPI) RevokeSession(context.Context, service.Actor, string) error {
	f.call("RevokeSession")
	return nil
}
func (f *fakeAPI) PauseJob(context.Context, service.Actor, string, string) (service.Pause, error) {
	f.call("PauseJob")
	return service.Pause{}, nil
}
func (f *fakeAPI) ResumeJob(context.Context, service.Actor, string, string) (service.Pause, error) {
	f.call("ResumeJob")
	return service.Pause{}, nil
}

func (f *fakeAPI) Login(context.Context, service.Origin, service.LoginRequest) (service.LoginResult, error) {
	f.call("Login")
	return service.LoginResult{}, nil
}
func (f *fakeAPI) Logout(context.Context, service.Actor, string) error { f.call("Logout"); return nil }
func (f *fakeAPI) Whoami(context.Context, service.Actor) (service.Whoami, error) {
	f.call("Whoami")
	return service.Whoami{}, nil
}
func (f *fakeAPI) ChangePassword(context.Context, service.Actor, string, string) error {
	f.call("ChangePassword")
	return nil
}
func (f *fakeAPI) EnrollTOTP(context.Context, service.Actor) (service.TOTPEnrolment, error) {
	f.call("EnrollTOTP")
	return service.TOTPEnrolment{}, nil
}
func (f *fakeAPI) ConfirmTOTP(context.Context, service.Actor, string) error {
	f.call("ConfirmTOTP")
	return nil
}
func (f *fakeAPI) Accounts(context.Context, service.Actor) ([]service.AccountView, error) {
	f.call("Accounts")
	return nil, nil
}
func (f *fakeAPI) Account(context.Context, service.Actor, string) (service.AccountView, error) {
	f.call("Account")
	return service.AccountView{}, nil
}
func (f *fakeAPI) FileAccountRequest(context.Context, service.Actor, service.AccountRequest) (service.RequestView, error) {
	f.call("FileAccountRequest")
	return service.RequestView{}, nil
}
func (f *fakeAPI) Requests(context.Context, service.Actor, bool) ([]service.RequestView, error) {
	f.call("Requests")
	return nil, nil
}
func (f *fakeAPI) Request(context.Context, service.Actor, string) (service.RequestView, error) {
	f.call("Request")
	return service.RequestView{}, nil
}
func (f *fakeAPI) Approve(context.Context, service.Actor, string, string) (service.RequestView, error) {
	f.call("Approve")
	return service.RequestView{}, nil
}
func (f *fakeAPI) Reject(context.Context, service.Actor, string, string) (service.RequestView, error) {
	f.call("Reject")
	return service.RequestView{}, nil
}
func (f *fakeAPI) CancelRequest(context.Context, service.Actor, string) (service.RequestView, error) {
	f.call("CancelRequest")
	return service.RequestView{}, nil
}
func (f *fakeAPI) ExecuteRequest(context.Context, service.Actor, string) (service.Executed, error) {
	f.call("ExecuteRequest")
	return service.Executed{}, nil
}

// routeBodies are well-formed bodies of the POST routes that take more
// than a reason.
var routeBodies = map[string]string{
	"POST /v1/login":                    `{"username": "officer.a", "password": "Some-Password-1"}`,
	"POST /v1/backup":                   `{"out": "/nonexistent/backup"}`,
	"POST /v1/audit/verify":             `{}`,
	"POST /v1/audit/proofs/consistency": `{"old": "not a checkpoint"}`,
	"POST /v1/account/password":         `{"password": "Some-Password-1", "new_password": "Other-Password-2"}`,
	"POST /v1/account/totp/confirm":     `{"code": "123456"}`,
	"POST /v1/requests/account":         `{"kind": "unlock", "username": "olga", "reason": "a reason long enough"}`,
	"POST /v1/destructions":             `{"datasets": ["ds-000000000001"], "reason": "a reason long enough"}`,
	"POST /v1/destructions/{id}/run":    `{"passphrase": "bm90IHRoZSBwYXNzcGhyYXNl", "rotate": false}`,
	"POST /v1/vault/rotate":             `{"passphrase": "bm90IHRoZSBwYXNzcGhyYXNl"}`,
}

func (f *fakeAPI) FileDestruction(context.Context, service.Actor, service.DestructionRequest) (service.RequestView, error) {
	f.call("FileDestruction")
	return service.RequestView{}, nil
}
func (f *fakeAPI) RunDestruction(context.Context, service.Actor, string, service.DestroyOptions) (service.Certificate, error) {
	f.call("RunDestruction")
	return service.Certificate{}, nil
}
func (f *fakeAPI) DestructionCertificate(context.Context, service.Actor, string) (service.Certificate, error) {
	f.call("DestructionCertificate")
	return service.Certificate{}, nil
}
func (f *fakeAPI) RotateVault(context.Context, service.Actor, service.RotateRequest) (service.Rotation, error) {
	f.call("RotateVault")
	return service.Rotation{}, nil
}
func (f *fakeAPI) ExpiringDatasets(context.Context, service.Actor) ([]service.Expiring, error) {
	f.call("ExpiringDatasets")
	return nil, nil
}

func (f *fakeAPI) Backup(context.Context, service.Actor, string, func(backup.Progress)) (*backup.Result, error) {
	f.call("Backup")
	return &backup.Result{}, nil
}

// routeRequest makes a well-formed request for a route pattern.
func routeRequest(pattern string) *http.Request {
	method, path, _ := strings.Cut(pattern, " ")
	path = strings.NewReplacer("{name}", "extract", "{id}", "ds-000000000001", "{username}", "someone.else").Replace(path)
	body := ""
	if method == http.MethodPost {
		body = `{"reason": "a reason long enough"}`
		if b, ok := routeBodies[pattern]; ok {
			body = b
		}
	}
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer test-token")
	return r.WithContext(context.WithValue(r.Context(), peerKey{}, service.Origin{Via: "socket", HostUser: "custodian", UID: 1000}))
}

// everyone is an authenticated actor holding every role, so that only the
// service's own rules refuse.
func everyone(o service.Origin, token string) (service.Actor, error) {
	return service.Actor{Name: "officer.a", Roles: accounts.Roles, Session: "test", Origin: o}, nil
}

// TestRoutesAreThin: every route calls exactly one service method, the one
// whose action it declares, and nothing else. The handlers hold the API
// interface only (no ledger), so they cannot append an event themselves.
func TestRoutesAreThin(t *testing.T) {
	for _, f := range reflect.VisibleFields(reflect.TypeOf(handlers{})) {
		if f.Type == reflect.TypeOf(&audit.Ledger{}) || f.Type == reflect.TypeOf(&service.Service{}) {
			t.Fatalf("handlers.%s gives the transport direct access to %s", f.Name, f.Type)
		}
	}
	method := map[service.Action][]string{
		service.ActStatus: {"Status"}, service.ActRunJob: {"RunJob"}, service.ActListDatasets: {"Datasets"},
		service.ActShowDataset: {"Dataset"}, service.ActRelease: {"Release"}, service.ActRepull: {"Repull"},
		service.ActVerifyLedger: {"VerifyLedger"}, service.ActExportLedger: {"ExportLedger"},
		service.ActReadLedger: {"Checkpoint", "Events"}, service.ActScrubPlan: {"ScrubPlan"},
		service.ActRecordScrub: {"RecordScrub"},
		actLogin:               {"Login"}, service.ActSelf: {"Logout", "Whoami", "ChangePassword", "EnrollTOTP", "ConfirmTOTP", "Sessions", "RevokeSession"},
		service.ActReadAccounts: {"Accounts", "Account"}, service.ActFileAccountRequest: {"FileAccountRequest"},
		service.ActReadRequests: {"Requests", "Request"}, service.ActDecideRequest: {"Approve", "Reject"},
		service.ActCancelRequest: {"CancelRequest"}, service.ActExecuteRequest: {"ExecuteRequest"},
		service.ActBackup: {"Backup"}, service.ActPauseJob: {"PauseJob", "ResumeJob"},
		// Destruction, retention and rotation (api_destroy.go).
		service.ActRequestDestruction: {"FileDestruction"}, service.ActDestroy: {"RunDestruction"},
		service.ActReadCertificate: {"DestructionCertificate"}, service.ActRotateVault: {"RotateVault"},
		service.ActExpiring: {"ExpiringDatasets"},
	}
	// The auditor's reads (api_audit.go).
	method[service.ActReadLedger] = append(method[service.ActReadLedger], "SearchEvents", "ProveEvent", "ProveConsistency", "KeptCheckpoints")
	// The review workbench (api_review.go) and the data lifecycle (api_lifecycle.go).
	for _, extra := range []map[service.Action][]string{reviewMethods, lifecycleMethods, jobHistoryMethods} {
		for act, ms := range extra {
			method[act] = append(method[act], ms...)
		}
	}
	seen := map[service.Action]bool{}
	for _, rt := range routes {
		f := &fakeAPI{}
		h := &handlers{api: f, auth: everyone, runCtx: context.Background(), wg: &sync.WaitGroup{}}
		w := httptest.NewRecorder()
		h.mux().ServeHTTP(w, routeRequest(rt.pattern))
		if w.Code/100 != 2 {
			t.Errorf("%s: status %d: %s", rt.pattern, w.Code, w.Body)
		}
		if len(f.calls) != 1 {
			t.Errorf("%s: %d service calls %v, want exactly one", rt.pattern, len(f.calls), f.calls)
			continue
		}
		ok := false
		for _, m := range method[rt.action] {
			ok = ok || m == f.calls[0]
		}
		if !ok {
			t.Errorf("%s declares %s but calls %s", rt.pattern, rt.action, f.calls[0])
		}
		seen[rt.action] = true
	}
	// /metrics is served outside the API's route table, on the HTTPS
	// listener only, with basic credentials (TestMetricsOverHTTPSAndAccountNotifications).
	seen[service.ActScrapeMetrics] = true
	for _, a := range service.Actions {
		if !seen[a] {
			t.Errorf("action %s has no route", a)
		}
	}
}

// TestEveryRouteAuthorizesOnce: against the real service, every route
// leads to exactly one authorization decision, for its declared action,
// whether the action then succeeds or is refused.
func TestEveryRouteAuthorizesOnce(t *testing.T) {
	skey, _, err := audit.GenerateSigningKey("custodian-test")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := audit.NewSigner(skey)
	l, err := audit.Open(filepath.Join(t.TempDir(), "ledger.db"), audit.Options{Signer: signer, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := &configs.Config{DataDir: t.TempDir()}
	var decisions []service.Action
	svc := &service.Service{Ledger: l, Runner: &transfer.Runner{Config: cfg, Ledger: l, Log: zerolog.Nop()}, Logger: zerolog.Nop(),
		Authorize: func(a service.Actor, act service.Action, r service.Resource) error {
			decisions = append(decisions, act)
			return service.Authorize(a, act, r)
		}}
	for _, rt := range routes {
		decisions = nil
		h := &handlers{api: svc, auth: everyone, runCtx: context.Background(), wg: &sync.WaitGroup{}}
		w := httptest.NewRecorder()
		h.mux().ServeHTTP(w, routeRequest(rt.pattern))
		if rt.public {
			if len(decisions) != 0 {
				t.Errorf("%s is public (login) but asked for authorization %v", rt.pattern, decisions)
			}
			continue
		}
		if len(decisions) != 1 || decisions[0] != rt.action {
			t.Errorf("%s (status %d): authorization decisions %v, want exactly [%s]", rt.pattern, w.Code, decisions, rt.action)
		}
	}
}
