package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"custodian/accounts"
	"custodian/audit"
	"custodian/service"
)

// verifySvc is the part of the service the verification pages call; the
// rest of Service is left nil (a call to it would panic the test). Its
// VerifyLedger reports progress, then waits until the test lets it end.
type verifySvc struct {
	Service
	progress chan [2]int64 // reported by the "verification"
	finish   chan *audit.Report
	calls    int
}

func (f *verifySvc) Authenticate(o service.Origin, token string) (service.Actor, error) {
	return service.Actor{Name: token, Roles: []accounts.Role{accounts.RoleAuditor}}, nil
}
func (f *verifySvc) Peek(o service.Origin, token string) (service.Actor, error) {
	return f.Authenticate(o, token)
}
func (f *verifySvc) Allow(service.Actor, service.Action, string) error { return nil }
func (f *verifySvc) IdleLimit() time.Duration                          { return time.Minute }
func (f *verifySvc) VerifyLedger(ctx context.Context, a service.Actor, opts audit.VerifyOptions) (*audit.Report, error) {
	f.calls++
	for p := range f.progress {
		opts.Progress(p[0], p[1])
	}
	return <-f.finish, nil
}

// TestVerifyProgressPage: the POST answers 303 at once while the
// verification runs; the page shows a <progress> with the reported
// value and maximum and "n of N events" and refreshes itself; a second
// POST by the same person goes to the running verification instead of
// starting another; when the service returns, the page shows the report
// and no longer refreshes. Steps are driven by channels, not by time.
func TestVerifyProgressPage(t *testing.T) {
	svc := &verifySvc{progress: make(chan [2]int64), finish: make(chan *audit.Report)}
	started := make(chan struct{})
	ended := make(chan struct{})
	c := New(svc, Options{Go: func(fn func(ctx context.Context)) {
		go func() { close(started); fn(context.Background()); close(ended) }()
	}})
	h := c.Handler()
	do := func(method, path, who string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "https://console.test"+path+"?lang=en", nil)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		r.AddCookie(&http.Cookie{Name: CookieName, Value: who})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := do(http.MethodPost, "/ledger/verify", "ann")
	loc := w.Header().Get("Location")
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/ledger/verify/") {
		t.Fatalf("POST: %d %q", w.Code, loc)
	}
	<-started
	svc.progress <- [2]int64{250_000, 1_000_000}
	svc.progress <- [2]int64{500_000, 1_000_000} // the first has been stored once the second is taken
	body := readBody(t, do(http.MethodGet, loc, "ann"))
	for _, want := range []string{`<meta http-equiv="refresh" content="2; url=/ledger/verify/`, `?auto=1">`, `<progress id="verify-progress" max="1000000" value="`, "of 1000000 events", Message("en", "verify.running")} {
		if !strings.Contains(body, want) {
			t.Errorf("running page lacks %q:\n%s", want, body)
		}
	}
	if !strings.Contains(body, `value="250000"`) && !strings.Contains(body, `value="500000"`) {
		t.Errorf("the page must show the progress reported: %s", body)
	}
	if strings.Contains(body, `id="verify-report"`) {
		t.Error("a running verification shows a report")
	}
	// Same person again: the running one.
	if w := do(http.MethodPost, "/ledger/verify", "ann"); w.Header().Get("Location") != loc {
		t.Errorf("a second POST while running: %q, want %q", w.Header().Get("Location"), loc)
	}
	// Another person may not see it.
	if w := do(http.MethodGet, loc, "bob"); w.Code != http.StatusNotFound {
		t.Errorf("another person's GET: %d, want 404", w.Code)
	}
	close(svc.progress)
	svc.finish <- &audit.Report{OK: false, Events: 1_000_000, CheckpointSize: 999_999, FirstBad: 7,
		Problems: []audit.Problem{{Index: 7, Kind: audit.ProblemDecode, Detail: "not JSON"}}}
	<-ended
	body = readBody(t, do(http.MethodGet, loc, "ann"))
	for _, want := range []string{`id="verify-report"`, `id="verify-outcome">` + Message("en", "ledger.failed"), "1000000", "event 7 [decode] not JSON", `href="/ledger"`} {
		if !strings.Contains(body, want) {
			t.Errorf("finished page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `http-equiv="refresh"`) || strings.Contains(body, "<progress") {
		t.Error("a finished verification's page must stop refreshing")
	}
	if svc.calls != 1 {
		t.Errorf("%d verifications ran, want 1", svc.calls)
	}
}

func readBody(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	b, err := io.ReadAll(w.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestVerificationsBounded: at most maxVerifications finished
// verifications are kept (the oldest go first); running ones are never
// dropped.
func TestVerificationsBounded(t *testing.T) {
	var vs verifications
	running := &verification{ID: "running", By: "ann", Started: time.Now()}
	vs.add(running)
	for i := range 3 * maxVerifications {
		vs.add(&verification{ID: fmt.Sprint(i), By: "ann", Started: time.Now(), finished: true})
	}
	finished := 0
	for _, v := range vs.m {
		if v.finished {
			finished++
		}
	}
	if finished != maxVerifications || len(vs.order) != maxVerifications+1 {
		t.Fatalf("%d finished kept (%d in order), want %d", finished, len(vs.order), maxVerifications)
	}
	if _, ok := vs.get("running"); !ok {
		t.Fatal("a running verification was dropped")
	}
	if _, ok := vs.get(fmt.Sprint(3*maxVerifications - 1)); !ok {
		t.Fatal("the newest finished verification was dropped")
	}
	if _, ok := vs.get("0"); ok {
		t.Fatal("the oldest finished verification was kept")
	}
	if vs.running("ann") != running {
		t.Fatal("ann's running verification is not found")
	}
}

// peekSvc tells which of Authenticate and Peek a request used.
type peekSvc struct {
	verifySvc
	used []string
}

func (f *peekSvc) Authenticate(o service.Origin, token string) (service.Actor, error) {
	f.used = append(f.used, "authenticate")
	return f.verifySvc.Authenticate(o, token)
}
func (f *peekSvc) Peek(o service.Origin, token string) (service.Actor, error) {
	f.used = append(f.used, "peek")
	return f.verifySvc.Authenticate(o, token)
}

// TestSelfRefreshIsNotUse (clause 五(三)): a progress page's own refresh
// (GET ?auto=1, the URL its meta refresh names) is checked with
// Service.Peek, which does not keep the session alive; a person's own
// GET or POST uses Authenticate.
func TestSelfRefreshIsNotUse(t *testing.T) {
	svc := &peekSvc{}
	h := New(svc, Options{}).Handler()
	for _, c := range []struct{ method, path, want string }{
		{http.MethodGet, "/ledger/verify/nope?auto=1", "peek"},
		{http.MethodGet, "/ledger/verify/nope", "authenticate"},
		{http.MethodPost, "/logout?auto=1", "authenticate"},
	} {
		svc.used = nil
		r := httptest.NewRequest(c.method, "https://console.test"+c.path, nil)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		r.AddCookie(&http.Cookie{Name: CookieName, Value: "ann"})
		func() {
			defer func() { _ = recover() }() // the fake has no Logout; only the check matters
			h.ServeHTTP(httptest.NewRecorder(), r)
		}()
		if len(svc.used) == 0 || svc.used[0] != c.want {
			t.Errorf("%s %s used %v, want %s", c.method, c.path, svc.used, c.want)
		}
	}
}
