package daemon

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"custodian/accounts"
	"custodian/audit"
	"custodian/configs"
	"custodian/service"
)

// filedID is the request ID of a Post/Redirect/Get to a new request's
// page with the filed flash, or "" (and a test error).
func filedID(t *testing.T, what string, resp *http.Response) string {
	t.Helper()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/requests/R") || !strings.HasSuffix(loc, "?m=filed") {
		t.Errorf("%s: %s, Location %q; want a redirect to the new request's page", what, resp.Status, loc)
		return ""
	}
	return strings.TrimSuffix(strings.TrimPrefix(loc, "/requests/"), "?m=filed")
}

// TestConsoleVerifyWithProgress: "Verify now" starts the verification in
// the daemon and redirects (303) to its page, which refreshes itself
// until it shows the finished report (ok, the ledger's size); the service
// records audit.verified as before; another auditor, and the same auditor
// with an unknown ID, get a not-found page; a supervisor (no audit.verify)
// is refused.
func TestConsoleVerifyWithProgress(t *testing.T) {
	cf := newConsole(t, nil)
	cf.seed(t)
	cf.addPerson(t, "ava", "Ava Auditor", accounts.RoleAuditor)
	aud := cf.login(t, "auditor.a")
	before := cf.ledgerSize(t)
	resp := cf.post(t, aud, "/ledger/verify", nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/ledger/verify/") {
		t.Fatalf("verify now: %s %q", resp.Status, loc)
	}
	var body string
	waitFor(t, "the verification's report", func() bool {
		var r *http.Response
		r, body = cf.get(t, aud, loc+"?lang=en")
		if r.StatusCode != http.StatusOK {
			t.Fatalf("verification page: %s", r.Status)
		}
		if !strings.Contains(body, `id="verify-report"`) {
			// Still running: the page refreshes itself and shows progress.
			if !strings.Contains(body, `<meta http-equiv="refresh"`) || !strings.Contains(body, `<progress id="verify-progress"`) {
				t.Fatalf("a running verification's page must refresh itself and show its progress: %s", body)
			}
			return false
		}
		return true
	})
	if !strings.Contains(body, `id="verify-outcome">`+msgOf("en", "ledger.ok")) || strings.Contains(body, `http-equiv="refresh"`) {
		t.Fatalf("the finished page must show the report and stop refreshing: %s", body)
	}
	if !strings.Contains(body, msgOf("en", "ledger.size")+" "+itoa(before)) {
		t.Errorf("the report must name the %d events verified: %s", before, body)
	}
	evs, err := cf.d.Ledger.Events(before, 0)
	if err != nil {
		t.Fatal(err)
	}
	var verified []audit.Event
	for _, ev := range evs {
		if ev.Type == audit.EvAuditVerified {
			verified = append(verified, ev)
		}
	}
	if len(verified) != 1 || verified[0].Actor != "auditor.a" || verified[0].Details["ok"] != "true" || verified[0].Details["events"] != itoa(before) {
		t.Fatalf("the verification must be recorded once, by its auditor: %+v", verified)
	}
	// Only its starter sees it.
	if r, _ := cf.get(t, cf.login(t, "ava"), loc); r.StatusCode != http.StatusNotFound {
		t.Errorf("another auditor's GET %s: %s, want 404", loc, r.Status)
	}
	if r, _ := cf.get(t, aud, "/ledger/verify/0000000000000000"); r.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown verification: %s, want 404", r.Status)
	}
	if r, _ := cf.get(t, cf.login(t, "sue"), loc); r.StatusCode != http.StatusForbidden {
		t.Errorf("a supervisor's GET %s: %s, want 403", loc, r.Status)
	}
	if r := cf.post(t, cf.login(t, "sue"), "/ledger/verify", nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("a supervisor's verify now: %s, want 403", r.Status)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestConsoleFilesDataRequests: an officer files an export, an emergency
// use and an exceptional read through the dataset page's forms, each
// landing (Post/Redirect/Get) on the new request's page, which says how
// it is carried out; the requests hold the right kind and details. An
// invalid form comes back with the service's explanation and what was
// typed; a role without the action (a supervisor) gets 403 and nothing is
// filed; the forms render in both languages, the exceptional read only
// for quarantined or held data.
func TestConsoleFilesDataRequests(t *testing.T) {
	cf := newConsole(t, nil)
	cf.seed(t)
	ctx := context.Background()
	off := cf.as(t, "officer.a")
	all, err := off.Datasets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var dsID, quarID string
	for _, d := range all {
		switch audit.State(d.State) {
		case audit.StateQuarantined:
			quarID = d.ID
		case audit.StateVerified:
			dsID = d.ID
		}
	}
	if quarID == "" || dsID == "" {
		t.Fatal("the seed has no verified or no quarantined dataset")
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	recipient := id.Recipient().String()
	b := cf.login(t, "officer.a")

	// The forms, in both languages; the exceptional read only where it
	// makes sense.
	for _, lang := range []string{"zh-TW", "en"} {
		_, body := cf.get(t, b, "/datasets/"+dsID+"?lang="+lang)
		for _, want := range []string{`id="export-form"`, `id="emergency-form"`, `for="ex-recipient"`, `for="em-case"`, `for="ex-purpose"`, msgOf(lang, "datareq.file_export"), msgOf(lang, "datareq.cli")} {
			if !strings.Contains(body, want) {
				t.Errorf("dataset page (%s) lacks %s", lang, want)
			}
		}
		if strings.Contains(body, `id="exceptional-form"`) {
			t.Errorf("a verified dataset's page (%s) offers an exceptional read", lang)
		}
		_, body = cf.get(t, b, "/datasets/"+quarID+"?lang="+lang)
		if !strings.Contains(body, `id="exceptional-form"`) || !strings.Contains(body, msgOf(lang, "datareq.file_exceptional")) {
			t.Errorf("a quarantined dataset's page (%s) lacks the exceptional-read form", lang)
		}
	}
	for _, user := range []string{"sue", "auditor.a"} {
		if _, body := cf.get(t, cf.login(t, user), "/datasets/"+dsID); strings.Contains(body, `id="export-form"`) || strings.Contains(body, `id="emergency-form"`) {
			t.Errorf("%s is shown a data request form", user)
		}
	}

	// An export.
	resp := cf.post(t, b, "/datasets/"+dsID+"/export", url.Values{"recipient": {recipient}, "purpose": {"vaccination"},
		"case": {"C-2026-7"}, "reason": {"the clinic's vaccination list"}})
	ex := filedID(t, "export", resp)
	// An emergency use.
	resp = cf.post(t, b, "/datasets/"+dsID+"/data-request", url.Values{"kind": {"emergency-use"}, "purpose": {"communicable-disease"},
		"case": {"OUTBREAK-7"}, "reason": {"measles contact tracing"}})
	em := filedID(t, "emergency use", resp)
	// An exceptional read of the quarantined dataset.
	resp = cf.post(t, b, "/datasets/"+quarID+"/data-request", url.Values{"kind": {"exceptional-read"}, "purpose": {"vaccination"},
		"case": {"C-2026-8"}, "reason": {"check the short file by hand"}})
	xr := filedID(t, "exceptional read", resp)
	for _, c := range []struct {
		id, subject string
		kind        accounts.Kind
		details     map[string]string
		carry       string
	}{
		{ex, dsID, accounts.KindExport, map[string]string{"recipient": recipient, "recipient_fingerprint": service.RecipientFingerprint(recipient), "purpose": "vaccination", "case": "C-2026-7"},
			"custodian export run " + ex + " --out FILE"},
		{em, dsID, accounts.KindEmergencyUse, map[string]string{"purpose": "communicable-disease", "case": "OUTBREAK-7"},
			"custodian dataset read " + dsID + " --purpose communicable-disease --case OUTBREAK-7"},
		{xr, quarID, accounts.KindExceptionalRead, map[string]string{"purpose": "vaccination", "case": "C-2026-8"},
			"custodian dataset read " + quarID + " --purpose vaccination --case C-2026-8"},
	} {
		if c.id == "" {
			continue
		}
		q, err := off.Request(ctx, c.id)
		if err != nil {
			t.Fatal(err)
		}
		if q.Kind != c.kind || q.Subject != c.subject || q.Requester != "officer.a" || q.State != string(accounts.RequestPending) {
			t.Errorf("%s: %+v", c.kind, q)
		}
		for k, v := range c.details {
			if q.Details[k] != v {
				t.Errorf("%s: details[%s] = %q, want %q", c.kind, k, q.Details[k], v)
			}
		}
		_, body := cf.get(t, b, "/requests/"+c.id+"?m=filed")
		if !strings.Contains(body, `id="carry-out"`) || !strings.Contains(body, c.carry) || !strings.Contains(body, msgOf("zh-TW", "flash.filed")) {
			t.Errorf("%s's page must say it is filed and how it is carried out (%s)", c.kind, c.carry)
		}
	}

	// Mistakes come back beside the form, with what was typed.
	before := cf.ledgerSize(t)
	resp, body := postBody(t, cf, b, "/datasets/"+dsID+"/export", url.Values{"recipient": {"not-a-key"}, "purpose": {"vaccination"},
		"case": {"C-9"}, "reason": {"the clinic's vaccination list"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="form-error"`) || !strings.Contains(body, "age X25519 recipient") ||
		!strings.Contains(body, `value="not-a-key"`) || !strings.Contains(body, "the clinic&#39;s vaccination list</textarea>") {
		t.Errorf("a bad recipient: %s, the form must come back with the explanation and what was typed", resp.Status)
	}
	resp, body = postBody(t, cf, b, "/datasets/"+dsID+"/data-request", url.Values{"kind": {"emergency-use"}, "purpose": {"vaccination"},
		"case": {"C-9"}, "reason": {"short"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="form-error"`) || !strings.Contains(body, "reason") {
		t.Errorf("a short reason: %s", resp.Status)
	}
	if after := cf.ledgerSize(t); after != before {
		t.Errorf("invalid forms changed the ledger: %d → %d", before, after)
	}

	// A role without the action: 403, recorded, nothing filed.
	sue := cf.login(t, "sue")
	reqs, _ := cf.as(t, "sue").Requests(ctx, false)
	for path, form := range map[string]url.Values{
		"/datasets/" + dsID + "/export":       {"recipient": {recipient}, "purpose": {"vaccination"}, "case": {"C-1"}, "reason": {"a supervisor tries"}},
		"/datasets/" + dsID + "/data-request": {"kind": {"emergency-use"}, "purpose": {"vaccination"}, "case": {"C-1"}, "reason": {"a supervisor tries"}},
	} {
		before := cf.ledgerSize(t)
		if r := cf.post(t, sue, path, form); r.StatusCode != http.StatusForbidden {
			t.Errorf("a supervisor's POST %s: %s, want 403", path, r.Status)
		}
		evs, _ := cf.d.Ledger.Events(before, 0)
		if len(evs) != 1 || evs[0].Type != audit.EvAccessRefused {
			t.Errorf("POST %s: the refusal must be recorded, and nothing else: %+v", path, evs)
		}
	}
	if after, _ := cf.as(t, "sue").Requests(ctx, false); len(after) != len(reqs) {
		t.Errorf("refused forms filed requests: %d → %d", len(reqs), len(after))
	}
}

// postBody posts a form and returns the answer with its body.
func postBody(t *testing.T, cf *consoleFixture, b *http.Client, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, cf.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestConsoleFilesPrune: an auditor files a ledger prune from the ledger
// page (the events before a date more than five years back, named by the
// archive that holds them), landing on the request's page; the request
// holds the date and the archive's SHA-256. A malformed date comes back
// beside the form; a supervisor (no audit.prune) is refused. The clock is
// the service's, moved six years on after the installation's first
// events.
func TestConsoleFilesPrune(t *testing.T) {
	var offset atomic.Int64
	f := newFixture(t, nil)
	// Accounts unused and passwords unchanged for six years stay usable
	// here (the rules are tested where they are made).
	f.cfg.Accounts.DisableUnusedAfter.Duration = 10 * 365 * 24 * time.Hour
	f.cfg.Accounts.Password.MaxAge.Duration = 10 * 365 * 24 * time.Hour
	certFile, keyFile, roots := selfSignedPair(t, t.TempDir())
	addr := freePort(t)
	f.cfg.Listen = &configs.Listen{Address: addr, CertFile: certFile, KeyFile: keyFile}
	_, d, _ := f.serveWith(t, func(d *Daemon) {
		d.Service.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	})
	cf := &consoleFixture{fixture: f, d: d, base: "https://" + addr, roots: roots}
	cf.seed(t)
	ctx := context.Background()
	// Six years later; the sessions of then have ended.
	offset.Store(int64(6 * 365 * 24 * time.Hour))
	for _, user := range []string{"auditor.a", "sue"} {
		res, err := NewClient(cf.cfg.SocketPath()).Login(ctx, service.LoginRequest{Username: user, Password: cf.pw[user]})
		if err != nil {
			t.Fatal(err)
		}
		cf.clients[user] = NewClient(cf.cfg.SocketPath()).WithToken(res.Token)
	}
	before := time.Now().In(service.ReportZone).AddDate(0, 0, 1)
	day := before.Format(time.DateOnly)
	cut, _ := time.ParseInLocation(time.DateOnly, day, service.ReportZone)
	arc, err := cf.as(t, "auditor.a").ArchiveLedger(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	aud := cf.login(t, "auditor.a")
	for _, lang := range []string{"zh-TW", "en"} {
		_, body := cf.get(t, aud, "/ledger?lang="+lang)
		for _, want := range []string{`id="prune-form"`, `for="prune-before"`, `for="prune-sha"`, `for="prune-reason"`, msgOf(lang, "prune.file")} {
			if !strings.Contains(body, want) {
				t.Errorf("ledger page (%s) lacks %s", lang, want)
			}
		}
	}
	if _, body := cf.get(t, cf.login(t, "sue"), "/ledger"); strings.Contains(body, `id="prune-form"`) {
		t.Error("a supervisor is shown the prune form")
	}
	resp, body := postBody(t, cf, aud, "/ledger/prune", url.Values{"before": {"last year"}, "archive_sha256": {arc.SHA256}, "reason": {"retention period over"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="form-error"`) || !strings.Contains(body, `value="`+arc.SHA256+`"`) {
		t.Errorf("a malformed date: %s", resp.Status)
	}
	resp = cf.post(t, aud, "/ledger/prune", url.Values{"before": {day}, "archive_sha256": {arc.SHA256}, "reason": {"retention period over"}})
	id := filedID(t, "prune", resp)
	if id == "" {
		t.FailNow()
	}
	q, err := cf.as(t, "auditor.a").Request(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if q.Kind != accounts.KindPrune || q.Requester != "auditor.a" || q.Details["archive_sha256"] != arc.SHA256 ||
		q.Details["before"] != cut.UTC().Format(time.RFC3339) || q.Details["count"] != itoa(arc.Count) {
		t.Fatalf("prune request: %+v", q)
	}
	if r := cf.post(t, cf.login(t, "sue"), "/ledger/prune", url.Values{"before": {day}, "archive_sha256": {arc.SHA256}, "reason": {"retention period over"}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("a supervisor's prune: %s, want 403", r.Status)
	}
}

// TestConsoleNewRequestPage: /requests/new lists every kind of request
// with where it is filed, linked for the kinds the person's roles may
// file; the account form is there only for those who file account
// requests; the page says that reads and exports are carried out with
// the command line; both languages.
func TestConsoleNewRequestPage(t *testing.T) {
	cf := newConsole(t, nil)
	links := map[string]map[accounts.Kind]string{
		"officer.a": {accounts.KindDestruction: "/datasets", accounts.KindExport: "/datasets", accounts.KindEmergencyUse: "/datasets",
			accounts.KindExceptionalRead: "/datasets", accounts.KindHandover: "/handovers/new"},
		"auditor.a": {accounts.KindPrune: "/ledger#prune-form"},
		"adam": {accounts.KindAccountCreate: "#new-request", accounts.KindAccountChange: "#new-request", accounts.KindAccountDisable: "#new-request",
			accounts.KindUnlock: "#new-request"},
	}
	for user, want := range links {
		b := cf.login(t, user)
		for _, lang := range []string{"zh-TW", "en"} {
			resp, body := cf.get(t, b, "/requests/new?lang="+lang)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %s", user, resp.Status)
			}
			for _, k := range accounts.Kinds {
				row := between(body, `<tr id="kind-`+string(k)+`">`, "</tr>")
				if !strings.Contains(row, msgOf(lang, "kind."+string(k))) {
					t.Errorf("%s (%s): kind %s not listed", user, lang, k)
				}
				link, may := want[k]
				if has := strings.Contains(row, `<a href="`+link+`">`); may && !has {
					t.Errorf("%s (%s): %s should link %s: %s", user, lang, k, link, row)
				}
				if !may && (strings.Contains(row, "<a ") || !strings.Contains(row, msgOf(lang, "newrequest.not_yours"))) {
					t.Errorf("%s (%s): %s is not theirs to file: %s", user, lang, k, row)
				}
			}
			if has := strings.Contains(body, `id="new-request"`); has != (user == "adam") {
				t.Errorf("%s (%s): account form shown = %v", user, lang, has)
			}
			if !strings.Contains(body, `id="carry-out">`+msgOf(lang, "datareq.cli")) {
				t.Errorf("%s (%s): the page must say reads and exports are carried out with the command line", user, lang)
			}
		}
	}
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i+len(from):]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return s
}

// TestConsoleLogNewestFirst: the audit log page lists newest first by
// default and oldest first with order=asc; following each order's "next
// page" links shows every event exactly once (unfiltered, and filtered by
// actor); the CSV download follows the page's order.
func TestConsoleLogNewestFirst(t *testing.T) {
	cf := newConsole(t, nil)
	if err := cf.d.Ledger.Update(func(tx *audit.Tx) error {
		for i := range 260 {
			actor := "system:pager"
			if i%3 == 0 {
				actor = "system:other"
			}
			if _, err := tx.Append(audit.Event{Actor: actor, Type: audit.EvDaemonStarted}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	aud := cf.login(t, "auditor.a")
	n := cf.ledgerSize(t)
	all, err := cf.d.Ledger.Events(0, int(n))
	if err != nil {
		t.Fatal(err)
	}
	rowRE := regexp.MustCompile(`<tr><td>(\d+)</td>`)
	nextRE := regexp.MustCompile(`<a id="page-next" href="([^"]+)">`)
	firstRE := regexp.MustCompile(`<a id="page-first" href="([^"]+)">`)
	walk := func(path string) []int64 {
		t.Helper()
		var got []int64
		for pages := 0; path != ""; pages++ {
			if pages > 10 {
				t.Fatalf("%s: paging does not end", path)
			}
			resp, body := cf.get(t, aud, path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %s", path, resp.Status)
			}
			for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
				i, _ := strconv.ParseInt(m[1], 10, 64)
				got = append(got, i)
			}
			// A later page links the first one: the same search, no "from".
			if f := firstRE.FindStringSubmatch(body); (f != nil) != (pages > 0) || (f != nil && strings.Contains(f[1], "from=")) {
				t.Fatalf("%s (page %d): the first-page link is %v", path, pages+1, f)
			}
			path = ""
			if m := nextRE.FindStringSubmatch(body); m != nil {
				path = strings.ReplaceAll(m[1], "&amp;", "&")
			}
		}
		return got
	}
	for _, c := range []struct {
		query string
		keep  func(audit.Event) bool
	}{
		{"", func(audit.Event) bool { return true }},
		{"actor=system%3Apager", func(ev audit.Event) bool { return ev.Actor == "system:pager" }},
	} {
		var asc []int64
		for _, ev := range all {
			if c.keep(ev) {
				asc = append(asc, ev.Index)
			}
		}
		desc := slices.Clone(asc)
		slices.Reverse(desc)
		if got := walk("/ledger/log?" + c.query); !slices.Equal(got, desc) {
			t.Errorf("%q newest first (the default): %d events %v…, want %d %v…", c.query, len(got), head(got), len(desc), head(desc))
		}
		if got := walk("/ledger/log?order=asc&" + c.query); !slices.Equal(got, asc) {
			t.Errorf("%q oldest first: %d events %v…, want %d %v…", c.query, len(got), head(got), len(asc), head(asc))
		}
	}
	_, body := cf.get(t, aud, "/ledger/log?lang=en")
	if !strings.Contains(body, `<option value="desc" selected>`+msgOf("en", "log.newest")) || !strings.Contains(body, `<label for="l-order">`) {
		t.Error("the log page must offer the order, newest first selected")
	}
	for order, first := range map[string]int64{"": n - 1, "&order=asc": 0, "&order=asc&from=7": 7, "&from=7": 7} {
		_, csv := cf.get(t, aud, "/ledger/log?format=csv"+order)
		lines := strings.Split(csv, "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[1], strconv.FormatInt(first, 10)+",") {
			t.Errorf("CSV %q: first row %q, want event %d", order, lines[1], first)
		}
	}
}

func head(s []int64) []int64 { return s[:min(len(s), 5)] }
