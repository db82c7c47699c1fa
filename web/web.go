package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"custodian/accounts"
	"custodian/audit"
	"custodian/proof"
	"custodian/service"
	"custodian/transfer"
)

// Service is what the console may call: the service layer's use cases
// (the same the API calls) and its questions about sessions and steps.
type Service interface {
	Status(ctx context.Context, a service.Actor) (service.Status, error)
	RunJob(ctx context.Context, a service.Actor, job, trigger string, progress func(transfer.Progress)) (*transfer.RunResult, error)
	PauseJob(ctx context.Context, a service.Actor, job, reason string) (service.Pause, error)
	ResumeJob(ctx context.Context, a service.Actor, job, reason string) (service.Pause, error)
	DatasetPage(ctx context.Context, a service.Actor, q service.DatasetQuery) (service.DatasetPage, error)
	Dataset(ctx context.Context, a service.Actor, id string) (service.DatasetDetail, error)
	Release(ctx context.Context, a service.Actor, id, reason string) (service.DatasetView, error)
	Repull(ctx context.Context, a service.Actor, id, reason string) (transfer.FileOutcome, error)
	VerifyLedger(ctx context.Context, a service.Actor, opts audit.VerifyOptions) (*audit.Report, error)
	Checkpoint(ctx context.Context, a service.Actor) (service.Checkpoint, error)
	KeptCheckpoints(ctx context.Context, a service.Actor) ([]proof.Kept, error)
	SearchEvents(ctx context.Context, a service.Actor, q service.EventQuery) (service.EventPage, error)
	ProveEvent(ctx context.Context, a service.Actor, index int64) (proof.Inclusion, error)

	Login(ctx context.Context, o service.Origin, req service.LoginRequest) (service.LoginResult, error)
	Authenticate(o service.Origin, token string) (service.Actor, error)
	Peek(o service.Origin, token string) (service.Actor, error)
	Logout(ctx context.Context, a service.Actor, token string) error
	Sessions(ctx context.Context, a service.Actor) ([]service.SessionView, error)
	RevokeSession(ctx context.Context, a service.Actor, id string) error
	Whoami(ctx context.Context, a service.Actor) (service.Whoami, error)
	ChangePassword(ctx context.Context, a service.Actor, old, pw string) error
	EnrollTOTP(ctx context.Context, a service.Actor) (service.TOTPEnrolment, error)
	ConfirmTOTP(ctx context.Context, a service.Actor, code string) error
	Accounts(ctx context.Context, a service.Actor) ([]service.AccountView, error)
	Account(ctx context.Context, a service.Actor, username string) (service.AccountView, error)
	FileAccountRequest(ctx context.Context, a service.Actor, req service.AccountRequest) (service.RequestView, error)
	Requests(ctx context.Context, a service.Actor, pending bool) ([]service.RequestView, error)
	Request(ctx context.Context, a service.Actor, id string) (service.RequestView, error)
	Approve(ctx context.Context, a service.Actor, id, reason string) (service.RequestView, error)
	Reject(ctx context.Context, a service.Actor, id, reason string) (service.RequestView, error)
	CancelRequest(ctx context.Context, a service.Actor, id string) (service.RequestView, error)
	ExecuteRequest(ctx context.Context, a service.Actor, id string) (service.Executed, error)

	Allow(a service.Actor, act service.Action, page string) error
	IdleLimit() time.Duration
	MayStep(a service.Actor, q service.RequestView, step service.Step) bool
	MayCarryOut(a service.Actor, q service.RequestView, act service.Action) bool

	// Destruction, hand-over, reviews, training, consistency proofs
	// (pages in lifecycle.go).
	FileDestruction(ctx context.Context, a service.Actor, req service.DestructionRequest) (service.RequestView, error)
	RunDestruction(ctx context.Context, a service.Actor, id string, opts service.DestroyOptions) (service.Certificate, error)
	DestructionCertificate(ctx context.Context, a service.Actor, id string) (service.Certificate, error)
	FileHandover(ctx context.Context, a service.Actor, req service.HandoverRequest) (service.RequestView, error)
	HandoverView(ctx context.Context, a service.Actor, id string) (service.Handover, error)
	AcceptHandover(ctx context.Context, a service.Actor, id string) (service.Handover, error)
	StartReview(ctx context.Context, a service.Actor, req service.ReviewStart) (service.Review, error)
	Reviews(ctx context.Context, a service.Actor) ([]service.Review, error)
	ShowReview(ctx context.Context, a service.Actor, id string) (service.Review, error)
	RecordFinding(ctx context.Context, a service.Actor, id string, f service.ReviewStep) (service.Review, error)
	CloseInvestigation(ctx context.Context, a service.Actor, id string, st service.ReviewStep) (service.Review, error)
	CloseReview(ctx context.Context, a service.Actor, id string) (service.Review, error)
	ReviewReport(ctx context.Context, a service.Actor, id, format, lang string) ([]byte, error)
	RecordTraining(ctx context.Context, a service.Actor, req service.TrainingRecord) (service.Training, error)
	TrainingReport(ctx context.Context, a service.Actor, year int) ([]service.TrainingShort, error)
	ProveConsistency(ctx context.Context, a service.Actor, oldCP, newCP string) (proof.Consistency, error)

	// A job's configuration history (jobhistory.go).
	JobHistory(ctx context.Context, a service.Actor, job string) ([]service.JobChange, error)
	// Requests about data and the ledger (requests.go).
	FileExport(ctx context.Context, a service.Actor, req service.ExportRequest) (service.RequestView, error)
	FileDataRequest(ctx context.Context, a service.Actor, req service.DataRequest) (service.RequestView, error)
	FilePruneRequest(ctx context.Context, a service.Actor, req service.PruneRequest) (service.RequestView, error)
}

var _ Service = (*service.Service)(nil)

//go:embed templates static
var files embed.FS

// Options are the daemon's parts the console needs.
type Options struct {
	// Go runs long work (a job run) that belongs to the daemon: it must
	// call fn with a context that ends when the daemon stops, and the
	// daemon must wait for it. Nil runs fn on a background goroutine.
	Go func(fn func(ctx context.Context))
	// OnError, if set, is told of every failed request (the daemon logs
	// it and watches for ledger trouble).
	OnError func(path string, a service.Actor, code int, err error)
	// Location is the time zone dates are shown in; nil is time.Local.
	Location *time.Location
}

// Console serves the web console.
type Console struct {
	svc   Service
	opts  Options
	pages map[string]*template.Template
	runs  runs
	// verifs are the ledger verifications started here (verify.go).
	verifs verifications
}

// CookieName is the session cookie: __Host- binds it to this origin, path
// / and Secure.
const CookieName = "__Host-custodian"

const langCookie = "__Host-custodian-lang"

// New returns the console over svc.
func New(svc Service, opts Options) *Console {
	if opts.Location == nil {
		opts.Location = time.Local
	}
	return &Console{svc: svc, opts: opts, pages: pages}
}

// pages are the parsed templates, by page name: the layout with one page
// each. They are embedded, so a template that does not parse is a bug
// that every test finds.
var pages = parsePages()

func parsePages() map[string]*template.Template {
	out := map[string]*template.Template{}
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html"))
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		name := strings.TrimPrefix(n, "templates/")
		if name == "layout.html" {
			continue
		}
		out[strings.TrimSuffix(name, ".html")] = template.Must(template.Must(base.Clone()).ParseFS(files, n))
	}
	return out
}

// Route is one of the console's routes: the method and pattern, and the
// action the page needs ("" for the public ones: login, language, static
// files).
type Route struct {
	Pattern string
	Action  service.Action
}

type route struct {
	Route
	serve func(c *Console, w http.ResponseWriter, r *http.Request, a service.Actor) error
}

// routes is the whole console. Every GET only reads; every change is a
// POST.
var routes = []route{
	{Route{"GET /{$}", service.ActSelf}, (*Console).home},
	{Route{"GET /login", ""}, nil},
	{Route{"POST /login", ""}, nil},
	{Route{"POST /lang", ""}, nil},
	{Route{"GET /static/", ""}, nil},
	{Route{"POST /logout", service.ActSelf}, (*Console).logout},
	{Route{"GET /account", service.ActSelf}, (*Console).myAccount},
	{Route{"POST /account/password", service.ActSelf}, (*Console).changePassword},
	{Route{"POST /account/totp", service.ActSelf}, (*Console).enrollTOTP},
	{Route{"POST /account/totp/confirm", service.ActSelf}, (*Console).confirmTOTP},
	{Route{"POST /account/sessions/{id}/revoke", service.ActSelf}, (*Console).revokeSession},

	{Route{"GET /jobs", service.ActStatus}, (*Console).jobs},
	{Route{"POST /jobs/{name}/run", service.ActRunJob}, (*Console).runJob},
	{Route{"POST /jobs/{name}/pause", service.ActPauseJob}, (*Console).pauseJob},
	{Route{"POST /jobs/{name}/resume", service.ActPauseJob}, (*Console).resumeJob},
	{Route{"GET /runs/{id}", service.ActRunJob}, (*Console).runPage},

	{Route{"GET /datasets", service.ActListDatasets}, (*Console).datasets},
	{Route{"GET /datasets/{id}", service.ActShowDataset}, (*Console).dataset},
	{Route{"POST /datasets/{id}/release", service.ActRelease}, (*Console).release},
	{Route{"POST /datasets/{id}/repull", service.ActRepull}, (*Console).repull},

	{Route{"GET /requests", service.ActReadRequests}, (*Console).requests},
	{Route{"GET /requests/new", service.ActReadRequests}, (*Console).newRequest},
	{Route{"POST /requests/account", service.ActFileAccountRequest}, (*Console).fileRequest},
	{Route{"GET /requests/{id}", service.ActReadRequests}, (*Console).request},
	{Route{"POST /requests/{id}/approve", service.ActDecideRequest}, (*Console).approve},
	{Route{"POST /requests/{id}/reject", service.ActDecideRequest}, (*Console).reject},
	{Route{"POST /requests/{id}/cancel", service.ActCancelRequest}, (*Console).cancel},
	{Route{"POST /requests/{id}/execute", service.ActExecuteRequest}, (*Console).execute},

	{Route{"GET /accounts", service.ActReadAccounts}, (*Console).accountsPage},
	{Route{"GET /accounts/{username}", service.ActReadAccounts}, (*Console).accountPage},

	{Route{"GET /ledger", service.ActReadLedger}, (*Console).ledger},
	{Route{"POST /ledger/verify", service.ActVerifyLedger}, (*Console).verify},
	{Route{"GET /ledger/verify/{id}", service.ActVerifyLedger}, (*Console).verifyPage},
	{Route{"GET /ledger/checkpoint", service.ActReadLedger}, (*Console).checkpoint},
	{Route{"GET /ledger/log", service.ActReadLedger}, (*Console).log},
	{Route{"GET /ledger/proofs/{index}", service.ActReadLedger}, (*Console).proof},
	{Route{"GET /ledger/consistency", service.ActReadLedger}, (*Console).consistency},

	{Route{"POST /datasets/{id}/destroy", service.ActRequestDestruction}, (*Console).fileDestruction},
	{Route{"POST /requests/{id}/destroy", service.ActDestroy}, (*Console).runDestruction},
	{Route{"GET /certificates/{id}", service.ActReadCertificate}, (*Console).certificate},

	{Route{"GET /handovers/new", service.ActFileHandover}, (*Console).newHandover},
	{Route{"POST /handovers", service.ActFileHandover}, (*Console).fileHandover},
	{Route{"GET /handovers/{id}", service.ActReadHandover}, (*Console).handover},
	{Route{"POST /handovers/{id}/accept", service.ActAcceptHandover}, (*Console).acceptHandover},

	{Route{"GET /reviews", service.ActReadReview}, (*Console).reviews},
	{Route{"POST /reviews", service.ActRunReview}, (*Console).startReview},
	{Route{"GET /reviews/{id}", service.ActReadReview}, (*Console).review},
	{Route{"GET /reviews/{id}/report", service.ActReadReview}, (*Console).reviewReport},
	{Route{"POST /reviews/{id}/findings", service.ActRunReview}, (*Console).recordFinding},
	{Route{"POST /reviews/{id}/investigations", service.ActRunReview}, (*Console).closeInvestigation},
	{Route{"POST /reviews/{id}/close", service.ActRunReview}, (*Console).closeReview},

	{Route{"GET /training", service.ActReadTraining}, (*Console).training},
	{Route{"POST /training", service.ActRecordTraining}, (*Console).recordTraining},

	{Route{"GET /jobs/{name}/history", service.ActJobHistory}, (*Console).jobHistory},
	// Requests about data and the ledger (requests.go).
	{Route{"POST /datasets/{id}/export", service.ActFileDataRequest}, (*Console).fileExport},
	{Route{"POST /datasets/{id}/data-request", service.ActFileDataRequest}, (*Console).fileDataRequest},
	{Route{"POST /ledger/prune", service.ActPruneLedger}, (*Console).filePrune},
}

// Routes lists the console's routes (tests enumerate them).
func Routes() []Route {
	out := make([]Route, len(routes))
	for i, rt := range routes {
		out[i] = rt.Route
	}
	return out
}

// navItem is a link of the navigation bar, shown to those whose roles
// the matrix allows its action.
type navItem struct {
	Path, Key string
	Action    service.Action
}

var nav = []navItem{
	{"/", "nav.home", service.ActSelf},
	{"/jobs", "nav.jobs", service.ActStatus},
	{"/datasets", "nav.datasets", service.ActListDatasets},
	{"/requests", "nav.requests", service.ActReadRequests},
	{"/accounts", "nav.accounts", service.ActReadAccounts},
	{"/ledger", "nav.ledger", service.ActReadLedger},
	{"/reviews", "nav.reviews", service.ActReadReview},
	{"/training", "nav.training", service.ActReadTraining},
	{"/account", "nav.myaccount", service.ActSelf},
}

// Handler returns the console's handler: security headers on every
// response, then cross-origin protection, then the routes.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		switch rt.Pattern {
		case "GET /login":
			mux.HandleFunc(rt.Pattern, c.loginPage)
		case "POST /login":
			mux.HandleFunc(rt.Pattern, c.login)
		case "POST /lang":
			mux.HandleFunc(rt.Pattern, c.setLang)
		case "GET /static/":
			mux.Handle(rt.Pattern, http.FileServerFS(files))
		default:
			mux.HandleFunc(rt.Pattern, c.authed(rt))
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.problem(w, r, service.Actor{}, fmt.Errorf("%w: no page %s", service.ErrNotFound, r.URL.Path))
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.problem(w, r, service.Actor{}, fmt.Errorf("%w: cross-origin request refused", service.ErrForbidden))
	}))
	return secure(cop.Handler(mux))
}

// CSP is the Content-Security-Policy of every response: only this
// origin's script, style and images; no inline script or style; no
// framing; forms post only here.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", CSP)
		hd.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

func origin(r *http.Request) service.Origin {
	return service.Origin{Via: "https", Remote: r.RemoteAddr, UID: -1}
}

func token(r *http.Request) string {
	if ck, err := r.Cookie(CookieName); err == nil {
		return ck.Value
	}
	return ""
}

// authed wraps a page that needs a session: the service finds the person
// behind the cookie and allows the route's action before the page runs.
func (c *Console) authed(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth := c.svc.Authenticate
		if r.Method == http.MethodGet && r.URL.Query().Get("auto") == "1" {
			auth = c.svc.Peek // a page refreshing itself is not the person's use
		}
		a, err := auth(origin(r), token(r))
		if err != nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?m=ended&next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.problem(w, r, a, err)
			return
		}
		if a.Restricted != "" && rt.Action != service.ActSelf {
			http.Redirect(w, r, "/account", http.StatusSeeOther)
			return
		}
		if err := c.svc.Allow(a, rt.Action, rt.Pattern); err != nil {
			c.problem(w, r, a, err)
			return
		}
		if err := rt.serve(c, w, r, a); err != nil {
			c.problem(w, r, a, err)
		}
	}
}

// view is what every page's template gets.
type view struct {
	L      *Lang
	Me     service.Actor
	Nav    []navItem
	Path   string
	IdleMS int64
	Title  string
	Msg    string // a message key shown above the page
	Data   any
}

func (c *Console) view(r *http.Request, a service.Actor, title string, data any) *view {
	v := &view{L: c.lang(r), Me: a, Path: r.URL.Path, Title: title, Data: data, Msg: msgKey(r.URL.Query().Get("m"))}
	if a.Name != "" {
		v.IdleMS = c.svc.IdleLimit().Milliseconds()
		if !a.IdleEnds.IsZero() { // what is left of it (less after self-refreshes)
			v.IdleMS = max(0, time.Until(a.IdleEnds).Milliseconds())
		}
		for _, n := range nav {
			if a.Restricted != "" && n.Action != service.ActSelf {
				continue
			}
			if service.Permits(a.Roles, n.Action) {
				v.Nav = append(v.Nav, n)
			}
		}
	}
	return v
}

// msgKey admits only known message names from the query (?m=...).
func msgKey(m string) string {
	switch m {
	case "ended", "idle", "bye", "done", "password", "filed", "released", "approved", "rejected", "cancelled", "verified", "destroyed", "accepted", "recorded", "closed", "session_ended":
		return "flash." + m
	}
	return ""
}

// can reports whether the page's person may perform act (for links and
// buttons; the service decides again when it is used).
func (v *view) Can(act string) bool {
	return v.Me.Restricted == "" && service.Permits(v.Me.Roles, service.Action(act))
}

func (c *Console) render(w http.ResponseWriter, code int, page string, v *view) {
	t, ok := c.pages[page]
	if !ok {
		http.Error(w, "no template "+page, http.StatusInternalServerError)
		return
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout.html", v); err != nil {
		http.Error(w, "template: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

// problem renders a refusal or failure as a page, with its code's title
// in the page's language and the service's explanation.
func (c *Console) problem(w http.ResponseWriter, r *http.Request, a service.Actor, err error) {
	p := service.ProblemOf(err)
	if c.opts.OnError != nil {
		c.opts.OnError(r.URL.Path, a, p.Status, err)
	}
	c.render(w, p.Status, "error", c.view(r, a, "error.title", p))
}

// seeOther answers a POST with a redirect to a page (Post/Redirect/Get).
func seeOther(w http.ResponseWriter, r *http.Request, path, msg string) {
	if msg != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "m=" + msg
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// localPath admits a same-site path to return to after a form.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return "/"
	}
	return p
}

// runs are the job runs started here, kept in memory for their pages.
type runs struct {
	mu sync.Mutex
	m  map[string]*run
	n  int
}

type run struct {
	ID, Job, By string
	Started     time.Time

	mu       sync.Mutex
	progress map[string]transfer.Progress
	order    []string
	result   *transfer.RunResult
	err      error
	done     bool
}

// errLoginKind maps a failed login to its message name.
func errLoginKind(err error) string {
	switch {
	case errors.Is(err, service.ErrPasswordChange):
		return "login.change"
	case errors.Is(err, accounts.ErrTOTPRequired):
		return "login.need_totp"
	case errors.Is(err, accounts.ErrLocked):
		return "login.locked"
	case errors.Is(err, accounts.ErrDisabled):
		return "login.disabled"
	case errors.Is(err, service.ErrInvalid):
		return "login.invalid"
	case errors.Is(err, service.ErrUnauthenticated):
		return "login.failed"
	}
	return "login.unavailable"
}
