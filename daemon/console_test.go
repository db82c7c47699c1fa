package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"custodian/accounts"
	"custodian/audit"
	"custodian/configs"
	"custodian/internal/synth"
	"custodian/service"
	"custodian/web"
)

// consoleFixture is a serving daemon with its HTTPS listener (a generated
// certificate), and so its web console.
type consoleFixture struct {
	*fixture
	d     *Daemon
	base  string
	roots *x509.CertPool
}

func newConsole(t *testing.T, setup func(*Daemon)) *consoleFixture {
	t.Helper()
	f := newFixture(t, nil)
	certFile, keyFile, roots := selfSignedPair(t, t.TempDir())
	addr := freePort(t)
	f.cfg.Listen = &configs.Listen{Address: addr, CertFile: certFile, KeyFile: keyFile}
	_, d, _ := f.serveWith(t, setup)
	return &consoleFixture{fixture: f, d: d, base: "https://" + addr, roots: roots}
}

// browser is an HTTP client with a cookie jar that trusts the test
// certificate and does not follow redirects.
func (cf *consoleFixture) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cf.roots}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// login logs user in through the console's form and returns their browser.
func (cf *consoleFixture) login(t *testing.T, user string) *http.Client {
	t.Helper()
	b := cf.browser(t)
	resp := cf.post(t, b, "/login", url.Values{"username": {user}, "password": {cf.pw[user]}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("console login %s: %s", user, resp.Status)
	}
	return b
}

func (cf *consoleFixture) get(t *testing.T, b *http.Client, path string) (*http.Response, string) {
	t.Helper()
	resp, err := b.Get(cf.base + path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func (cf *consoleFixture) post(t *testing.T, b *http.Client, path string, form url.Values, header ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, cf.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func (cf *consoleFixture) ledgerSize(t *testing.T) int64 {
	t.Helper()
	n, err := cf.d.Ledger.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// seed runs the job on a file of synthetic people (one quarantined by a
// wrong trailer) and files an account request, so that every page has
// something to show; it returns a dataset ID, the request ID and national
// IDs from the file's records.
func (cf *consoleFixture) seed(t *testing.T) (dsID, reqID string, nationalIDs []string) {
	t.Helper()
	cf.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 20, Seed: 7}},
		synth.FileSpec{Name: "HR_2.txt", Options: synth.Options{Records: 5, Seed: 8, TrailerDelta: 1}})
	ctx := context.Background()
	res, err := cf.as(t, "officer.a").Run(ctx, "extract", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range res.Files {
		if o.DatasetID != "" {
			dsID = o.DatasetID
		}
	}
	q, err := cf.as(t, "adam").FileAccountRequest(ctx, service.AccountRequest{Kind: accounts.KindAccountCreate, Username: "olga2",
		Account: &accounts.AccountSpec{FullName: "Olga Two", EmployeeID: "E-2", Unit: "test-unit", Roles: []accounts.Role{accounts.RoleOfficer}},
		Reason:  "a new transfer officer"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"HR_1.txt", "HR_2.txt"} {
		b, err := os.ReadFile(filepath.Join(cf.root, "outbox", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range regexp.MustCompile(`[A-Z][12]\d{8}`).FindAllString(string(b), -1) {
			if synth.ValidID(tok) {
				nationalIDs = append(nationalIDs, tok)
			}
		}
	}
	if dsID == "" || len(nationalIDs) == 0 {
		t.Fatalf("seed: dataset %q, %d national IDs", dsID, len(nationalIDs))
	}
	return dsID, q.ID, nationalIDs
}

// getPaths are the console's GET routes with their wildcards filled in.
func getPaths(dsID, reqID string) map[string]string {
	out := map[string]string{}
	for _, rt := range web.Routes() {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		if method != http.MethodGet {
			continue
		}
		path = strings.NewReplacer("{$}", "", "{id}", dsID, "{username}", "sue", "{index}", "1", "{name}", "extract").Replace(path)
		switch {
		case strings.HasPrefix(rt.Pattern, "GET /requests/{id}"):
			path = "/requests/" + reqID
		case strings.HasPrefix(rt.Pattern, "GET /runs/"):
			path = "/runs/0000000000000000"
		case rt.Pattern == "GET /static/":
			path = "/static/app.css"
		}
		out[rt.Pattern] = path
	}
	return out
}

// TestConsoleRoutesAreGETorPOST: every route reads with GET or changes
// with POST, and every page but login, language and static files names
// the action the role matrix must allow.
func TestConsoleRoutesAreGETorPOST(t *testing.T) {
	public := []string{"GET /login", "POST /login", "POST /lang", "GET /static/"}
	for _, rt := range web.Routes() {
		method, _, _ := strings.Cut(rt.Pattern, " ")
		if method != http.MethodGet && method != http.MethodPost {
			t.Errorf("%s: only GET and POST", rt.Pattern)
		}
		if (rt.Action == "") != slices.Contains(public, rt.Pattern) {
			t.Errorf("%s: action %q", rt.Pattern, rt.Action)
		}
		if rt.Action != "" && !slices.Contains(service.Actions, rt.Action) {
			t.Errorf("%s: %q is not an action of the matrix", rt.Pattern, rt.Action)
		}
	}
}

// TestConsoleSecurity: every answer (pages, refusals, static files, not
// found, the login form) carries the security headers; the session cookie
// is Secure, HttpOnly and SameSite=Strict; cross-origin POSTs are refused
// and change nothing; GETs never change the ledger (a refused one adds
// only its refusal); the console is not on the Unix socket.
func TestConsoleSecurity(t *testing.T) {
	cf := newConsole(t, nil)
	dsID, reqID, _ := cf.seed(t)
	want := map[string]string{
		"Content-Security-Policy":   "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
		"Strict-Transport-Security": "max-age=63072000; includeSubDomains",
		"X-Frame-Options":           "DENY",
		"Referrer-Policy":           "no-referrer",
		"Cache-Control":             "no-store",
	}
	check := func(what string, resp *http.Response) {
		t.Helper()
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", what, k, got, v)
			}
		}
	}
	anon := cf.browser(t)
	for _, p := range []string{"/login", "/", "/nope", "/static/app.js", "/datasets"} {
		resp, _ := cf.get(t, anon, p)
		check("anonymous GET "+p, resp)
	}
	// The session cookie.
	resp := cf.post(t, cf.browser(t), "/login", url.Values{"username": {"sue"}, "password": {cf.pw["sue"]}})
	check("POST /login", resp)
	ck := resp.Header.Get("Set-Cookie")
	for _, attr := range []string{web.CookieName + "=", "Path=/", "Secure", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(ck, attr) {
			t.Errorf("session cookie %q lacks %s", ck, attr)
		}
	}
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %s", resp.Status)
	}

	// GETs change nothing: every person, every page (allowed or not).
	paths := getPaths(dsID, reqID)
	browsers := map[string]*http.Client{}
	for _, p := range testPeople {
		browsers[p.Username] = cf.login(t, p.Username)
	}
	for _, p := range testPeople {
		for pattern, path := range paths {
			rt := routeOf(pattern)
			before := cf.ledgerSize(t)
			resp, _ := cf.get(t, browsers[p.Username], path)
			check(p.Username+" GET "+path, resp)
			after := cf.ledgerSize(t)
			if rt.Action == "" || service.Permits(p.Roles, rt.Action) {
				if after != before {
					t.Errorf("%s GET %s (%s) changed the ledger: %d → %d", p.Username, path, resp.Status, before, after)
				}
				continue
			}
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s GET %s: %s, want 403", p.Username, path, resp.Status)
			}
			evs, _ := cf.d.Ledger.Events(before, 0)
			if len(evs) != 1 || evs[0].Type != audit.EvAccessRefused || evs[0].Actor != p.Username {
				t.Errorf("%s GET %s: a refused page must add exactly its refusal, got %+v", p.Username, path, evs)
			}
		}
	}

	// Cross-origin POSTs are refused before anything happens.
	sue := browsers["sue"]
	before := cf.ledgerSize(t)
	for _, h := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.example"}} {
		resp := cf.post(t, sue, "/requests/"+reqID+"/approve", url.Values{"reason": {"forged from another site"}}, h...)
		check("cross-origin POST", resp)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-origin POST with %s: %s", h[0], resp.Status)
		}
		resp = cf.post(t, cf.browser(t), "/login", url.Values{"username": {"sue"}, "password": {cf.pw["sue"]}}, h...)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-origin login with %s: %s", h[0], resp.Status)
		}
	}
	if after := cf.ledgerSize(t); after != before {
		t.Errorf("cross-origin POSTs changed the ledger: %d → %d", before, after)
	}
	q, _ := cf.as(t, "sue").Request(context.Background(), reqID)
	if q.State != string(accounts.RequestPending) {
		t.Fatalf("a cross-origin approval took effect: %s", q.State)
	}
	// The same POST from the console's own page works.
	resp = cf.post(t, sue, "/requests/"+reqID+"/approve", url.Values{"reason": {"appointment letter seen"}}, "Sec-Fetch-Site", "same-origin", "Origin", cf.base)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("same-origin approval: %s", resp.Status)
	}
	// The socket serves the API only.
	if _, err := cf.as(t, "sue").do(context.Background(), http.MethodGet, "/login", nil); err == nil {
		t.Error("the Unix socket must not serve the console")
	}
}

func routeOf(pattern string) web.Route {
	for _, rt := range web.Routes() {
		if rt.Pattern == pattern {
			return rt
		}
	}
	return web.Route{}
}

// TestConsolePagesPerRole: each person's navigation shows exactly the
// pages their role may use, their home page exactly their sections, and a
// page they may not use answers 403 whether linked or typed.
func TestConsolePagesPerRole(t *testing.T) {
	cf := newConsole(t, nil)
	dsID, reqID, _ := cf.seed(t)
	navs := map[string][]string{
		"officer.a": {"/", "/jobs", "/datasets", "/requests", "/account"},
		"cora":      {"/", "/jobs", "/datasets", "/requests", "/account"},
		"sue":       {"/", "/jobs", "/datasets", "/requests", "/accounts", "/ledger", "/reviews", "/training", "/account"},
		"auditor.a": {"/", "/jobs", "/datasets", "/requests", "/accounts", "/ledger", "/reviews", "/training", "/account"},
		"adam":      {"/", "/jobs", "/requests", "/accounts", "/training", "/account"},
		"dora":      {"/", "/jobs", "/requests", "/accounts", "/reviews", "/training", "/account"},
	}
	sections := map[string][]string{
		"officer.a": {"h-officer"},
		"cora":      {"h-officer"},
		"sue":       {"h-inbox"},
		"auditor.a": {"h-audit"},
		"adam":      {"h-admin", "h-mine"},
		"dora":      {"h-inbox"},
	}
	allSections := []string{"h-officer", "h-inbox", "h-admin", "h-audit"}
	navRE := regexp.MustCompile(`<nav aria-label="[^"]*"><ul>(.*?)</ul></nav>`)
	hrefRE := regexp.MustCompile(`href="([^"]*)"`)
	for user, wantNav := range navs {
		b := cf.login(t, user)
		_, body := cf.get(t, b, "/")
		m := navRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("%s: no navigation on the home page", user)
		}
		var got []string
		for _, h := range hrefRE.FindAllStringSubmatch(m[1], -1) {
			got = append(got, h[1])
		}
		if !slices.Equal(got, wantNav) {
			t.Errorf("%s: navigation %v, want %v", user, got, wantNav)
		}
		for _, s := range allSections {
			if has := strings.Contains(body, `id="`+s+`"`); has != slices.Contains(sections[user], s) {
				t.Errorf("%s: home section %s shown = %v", user, s, has)
			}
		}
		if !strings.Contains(body, `action="/logout"`) {
			t.Errorf("%s: no log out button", user)
		}
		for _, path := range []string{"/jobs", "/datasets", "/datasets/" + dsID, "/requests", "/requests/" + reqID, "/accounts", "/ledger", "/ledger/log", "/account", "/jobs/extract/history"} {
			resp, body := cf.get(t, b, path)
			allowed := slices.Contains(wantNav, path) || map[string]bool{
				"/datasets/" + dsID: user != "adam", "/requests/" + reqID: true,
				"/ledger/log":           user == "sue" || user == "auditor.a",
				"/jobs/extract/history": user != "adam" && user != "dora"}[path]
			if (resp.StatusCode == http.StatusOK) != allowed {
				t.Errorf("%s GET %s: %s (allowed %v)", user, path, resp.Status, allowed)
			}
			if allowed && !strings.Contains(body, `action="/logout"`) {
				t.Errorf("%s GET %s: no log out button", user, path)
			}
		}
	}
	// Buttons: the supervisor sees approve on another's request; the
	// requester (adam) sees cancel, not approve; the auditor neither.
	for user, want := range map[string][2]bool{"sue": {true, false}, "adam": {false, true}, "auditor.a": {false, false}} {
		_, body := cf.get(t, cf.login(t, user), "/requests/"+reqID)
		if got := [2]bool{strings.Contains(body, `id="approve"`), strings.Contains(body, `id="cancel"`)}; got != want {
			t.Errorf("%s on %s: approve, cancel buttons %v, want %v", user, reqID, got, want)
		}
	}
}

// TestConsoleRequesterCannotApprove: a supervisor's own request has no
// approve button, and a forged POST is refused by the service (and
// recorded); another person's approval and an admin's execution work
// through the forms, and the issued password is shown once.
func TestConsoleRequesterCannotApprove(t *testing.T) {
	cf := newConsole(t, nil)
	sue, adam := cf.login(t, "sue"), cf.login(t, "adam")
	resp := cf.post(t, sue, "/requests/account", url.Values{"kind": {"account-create"}, "username": {"pat"}, "full_name": {"Pat Auditor"},
		"employee_id": {"E-77"}, "unit": {"test-unit"}, "roles": {"auditor"}, "reason": {"new internal auditor"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/requests/R") {
		t.Fatalf("filing: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	id := strings.TrimPrefix(strings.Split(resp.Header.Get("Location"), "?")[0], "/requests/")
	_, body := cf.get(t, sue, "/requests/"+id)
	if strings.Contains(body, `id="approve"`) || !strings.Contains(body, `id="cancel"`) {
		t.Fatal("the requester must see cancel, not approve")
	}
	before := cf.ledgerSize(t)
	resp = cf.post(t, sue, "/requests/"+id+"/approve", url.Values{"reason": {"approving my own request"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a forged self-approval: %s", resp.Status)
	}
	evs, _ := cf.d.Ledger.Events(before, 0)
	if len(evs) != 1 || evs[0].Type != audit.EvAccessRefused {
		t.Fatalf("the refusal must be recorded: %+v", evs)
	}
	// adam files, sue approves, adam carries it out.
	resp = cf.post(t, adam, "/requests/account", url.Values{"kind": {"account-create"}, "username": {"quinn"}, "full_name": {"Quinn Officer"},
		"employee_id": {"E-78"}, "unit": {"test-unit"}, "roles": {"officer"}, "reason": {"new transfer officer"}})
	id = strings.TrimPrefix(strings.Split(resp.Header.Get("Location"), "?")[0], "/requests/")
	if resp := cf.post(t, sue, "/requests/"+id+"/approve", url.Values{"reason": {"appointment letter seen"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("approval: %s", resp.Status)
	}
	req, _ := http.NewRequest(http.MethodPost, cf.base+"/requests/"+id+"/execute", nil)
	r2, err := adam.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != http.StatusOK || !strings.Contains(string(b), "quinn") || !strings.Contains(string(b), `class="issued"`) {
		t.Fatalf("execution: %s", r2.Status)
	}
	if r2.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("the issued password's page must not be stored")
	}
}

// TestConsoleNoRecordContents: no page, download or listing shows the
// contents of a registry record: the national IDs in the seeded files
// appear in no body any person can fetch.
func TestConsoleNoRecordContents(t *testing.T) {
	cf := newConsole(t, nil)
	dsID, reqID, ids := cf.seed(t)
	paths := getPaths(dsID, reqID)
	extra := []string{"/ledger/log?format=csv", "/ledger/log?dataset=" + dsID, "/datasets?state=quarantined", "/ledger/proofs/3"}
	// A run started in the console: its page lists each file's outcome.
	officer := cf.login(t, "officer.a")
	cf.put(t, synth.FileSpec{Name: "HR_3.txt", Options: synth.Options{Records: 10, Seed: 9}})
	b3, _ := os.ReadFile(filepath.Join(cf.root, "outbox", "HR_3.txt"))
	for _, tok := range regexp.MustCompile(`[A-Z][12]\d{8}`).FindAllString(string(b3), -1) {
		if synth.ValidID(tok) {
			ids = append(ids, tok)
		}
	}
	resp := cf.post(t, officer, "/jobs/extract/run", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("run now: %s", resp.Status)
	}
	runPath := resp.Header.Get("Location")
	waitFor(t, "the console's run to finish", func() bool {
		_, body := cf.get(t, officer, runPath)
		return strings.Contains(body, `id="run-state">`+msgOf("zh-TW", "run.done"))
	})
	for _, p := range testPeople {
		b := cf.login(t, p.Username)
		all := append(slices.Collect(mapsValues(paths)), extra...)
		if p.Username == "officer.a" {
			all = append(all, runPath)
		}
		for _, path := range all {
			for _, lang := range []string{"", "?lang=en"} {
				if strings.Contains(path, "?") && lang != "" {
					lang = "&lang=en"
				}
				_, body := cf.get(t, b, path+lang)
				for _, id := range ids {
					if strings.Contains(body, id) {
						t.Fatalf("%s GET %s shows a record's national ID", p.Username, path)
					}
				}
			}
		}
	}
}

func mapsValues(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// msgOf is a catalog message as the page shows it (HTML-escaped).
func msgOf(lang, key string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(web.Message(lang, key))
}

// TestConsoleLanguages: zh-TW by default, English by ?lang= or the
// chosen language's cookie; dates are ROC dates in zh-TW.
func TestConsoleLanguages(t *testing.T) {
	cf := newConsole(t, nil)
	anon := cf.browser(t)
	_, body := cf.get(t, anon, "/login")
	if !strings.Contains(body, `<html lang="zh-Hant-TW">`) || !strings.Contains(body, "帳號") || !strings.Contains(body, "登入") {
		t.Fatal("the login page must be zh-TW by default")
	}
	_, body = cf.get(t, anon, "/login?lang=en")
	if !strings.Contains(body, `<html lang="en">`) || !strings.Contains(body, "Username") {
		t.Fatal("?lang=en must give English")
	}
	sue := cf.login(t, "sue")
	_, body = cf.get(t, sue, "/account")
	if !strings.Contains(body, "我的帳號") || !regexp.MustCompile(`\d{3}/\d{2}/\d{2} \d{2}:\d{2}`).MatchString(body) {
		t.Fatal("zh-TW pages show ROC dates")
	}
	resp := cf.post(t, sue, "/lang", url.Values{"lang": {"en"}, "back": {"/account"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
		t.Fatalf("choosing English: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	_, body = cf.get(t, sue, "/account")
	if !strings.Contains(body, "My account") || !regexp.MustCompile(`\d{4}-\d{2}-\d{2} \d{2}:\d{2}`).MatchString(body) {
		t.Fatal("after choosing English, pages are in English")
	}
}
