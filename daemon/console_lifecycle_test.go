package daemon

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"custodian/accounts"
	"custodian/audit"
	"custodian/internal/synth"
	"custodian/proof"
	"custodian/service"
	"custodian/web"
)

// addPerson makes an account through the four-eyes flow (adam files, sue
// approves, adam carries it out), sets its password at the first login
// and logs it in on the socket; cf.pw holds the password for the console.
func (f *fixture) addPerson(t *testing.T, user, fullName string, role accounts.Role) *Client {
	t.Helper()
	return f.addPersonIn(t, user, fullName, "test-unit", role)
}

// addPersonIn is addPerson for a person of the given unit.
func (f *fixture) addPersonIn(t *testing.T, user, fullName, unit string, role accounts.Role) *Client {
	t.Helper()
	ctx := context.Background()
	q, err := f.as(t, "adam").FileAccountRequest(ctx, service.AccountRequest{Kind: accounts.KindAccountCreate, Username: user,
		Account: &accounts.AccountSpec{FullName: fullName, EmployeeID: "E-" + user, Unit: unit, Roles: []accounts.Role{role}},
		Reason:  "a second " + string(role)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.as(t, "sue").Approve(ctx, q.ID, "appointment letter seen"); err != nil {
		t.Fatal(err)
	}
	x, err := f.as(t, "adam").ExecuteRequest(ctx, q.ID)
	if err != nil || x.Issued == nil {
		t.Fatalf("%+v %v", x, err)
	}
	pw := "Test-Password-" + strings.ToUpper(user[:2]) + "7"
	res, err := NewClient(f.cfg.SocketPath()).Login(ctx, service.LoginRequest{Username: user, Password: x.Issued.Password, NewPassword: pw})
	if err != nil {
		t.Fatal(err)
	}
	cl := NewClient(f.cfg.SocketPath()).WithToken(res.Token)
	f.clients[user] = cl
	f.pw[user] = pw
	return cl
}

// lifeState is what lifecycle seeds: a destroyed dataset with its
// certificate, a pending destruction, a hand-over approved and waiting
// for its receiver, an open review with a sample, a training record.
type lifeState struct {
	Datasets    []string // verified datasets, oldest first
	Destroyed   string   // the executed destruction request
	Pending     string   // a destruction request waiting for approvals
	PendingDS   string   // its dataset
	Handover    string   // an approved hand-over from officer.a to otto
	Review      string   // an open review of this year
	Sampled     []int64  // its sampled records
	Unsealed    bool
	NationalIDs []string
}

// lifecycle seeds cf with the data's later life, through the API (the
// console's own pages are what the tests drive). Second supervisor sam
// and second officer otto are added.
func (cf *consoleFixture) lifecycle(t *testing.T, handover bool) lifeState {
	t.Helper()
	ctx := context.Background()
	_, _, ids := cf.seed(t) // HR_1 (verified), HR_2 (quarantined), an account request
	cf.put(t, synth.FileSpec{Name: "HR_3.txt", Options: synth.Options{Records: 8, Seed: 11}},
		synth.FileSpec{Name: "HR_4.txt", Options: synth.Options{Records: 6, Seed: 12}})
	off := cf.as(t, "officer.a")
	if _, err := off.Run(ctx, "extract", nil); err != nil {
		t.Fatal(err)
	}
	cf.addPerson(t, "sam", "Sam Supervisor", accounts.RoleSupervisor)
	var st lifeState
	st.NationalIDs = ids
	all, err := off.Datasets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		if d.State == string(audit.StateVerified) {
			st.Datasets = append(st.Datasets, d.ID)
		}
	}
	if len(st.Datasets) < 3 {
		t.Fatalf("want 3 verified datasets: %+v", all)
	}
	if _, err := off.Unseal(ctx, []byte("a long test passphrase")); err != nil {
		t.Fatal(err)
	}
	st.Unsealed = true
	for i := range 2 {
		if _, err := off.ReadDataset(ctx, st.Datasets[0], service.ReadRequest{Purpose: "vaccination", Case: "C-" + strconv.Itoa(i)}, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
	}
	// An executed destruction.
	q, err := off.FileDestruction(ctx, service.DestructionRequest{Datasets: []string{st.Datasets[1]}, Reason: "retention period ended"})
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"sue", "sam"} {
		if _, err := cf.as(t, who).Approve(ctx, q.ID, "retention schedule checked"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := off.RunDestruction(ctx, q.ID, service.DestroyOptions{}); err != nil {
		t.Fatal(err)
	}
	st.Destroyed = q.ID
	// A pending one.
	st.PendingDS = st.Datasets[2]
	q, err = off.FileDestruction(ctx, service.DestructionRequest{Datasets: []string{st.PendingDS}, Reason: "retention period ended too"})
	if err != nil {
		t.Fatal(err)
	}
	st.Pending = q.ID
	if handover {
		cf.addPerson(t, "otto", "Otto Officer", accounts.RoleOfficer)
		h, err := off.FileHandover(ctx, service.HandoverRequest{From: "officer.a", To: "otto", Reason: "officer.a moves to another unit"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cf.as(t, "sue").Approve(ctx, h.ID, "transfer order seen"); err != nil {
			t.Fatal(err)
		}
		st.Handover = h.ID
	}
	rv, err := cf.as(t, "auditor.a").StartReview(ctx, service.ReviewStart{Period: strconv.Itoa(time.Now().In(service.ReportZone).Year()), Rate: "100%", Seed: "console"})
	if err != nil {
		t.Fatal(err)
	}
	st.Review = rv.ID
	st.Sampled = rv.Indexes()
	if len(st.Sampled) != 2 {
		t.Fatalf("the review must sample both reads: %+v", rv.Sample)
	}
	if _, err := cf.as(t, "sue").RecordTraining(ctx, service.TrainingRecord{Username: "officer.a", Hours: "1.5",
		Date: time.Now().In(service.ReportZone).Format(time.DateOnly), Course: "personal data protection"}); err != nil {
		t.Fatal(err)
	}
	return st
}

// lifePaths are the console's GET routes filled in from the seeded state.
func lifePaths(st lifeState) map[string]string {
	out := map[string]string{}
	for _, rt := range web.Routes() {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		if method != http.MethodGet {
			continue
		}
		switch {
		case strings.HasPrefix(rt.Pattern, "GET /runs/"):
			continue // a run's page is its starter's, tested with the run
		case strings.HasPrefix(rt.Pattern, "GET /ledger/verify/"):
			continue // a verification's page is its starter's: TestConsoleVerifyWithProgress
		case rt.Pattern == "GET /static/":
			path = "/static/app.css"
		case strings.HasPrefix(rt.Pattern, "GET /certificates/"):
			path = "/certificates/" + st.Destroyed
		case strings.HasPrefix(rt.Pattern, "GET /handovers/{id}"):
			path = "/handovers/" + st.Handover
		case strings.HasPrefix(rt.Pattern, "GET /reviews/{id}"):
			path = strings.Replace(path, "{id}", st.Review, 1)
		case strings.HasPrefix(rt.Pattern, "GET /requests/{id}"):
			path = "/requests/" + st.Pending
		case rt.Pattern == "GET /ledger/consistency":
			continue // needs a checkpoint: TestConsoleConsistencyProof
		}
		path = strings.NewReplacer("{$}", "", "{id}", st.Datasets[0], "{username}", "sue", "{index}", "1", "{name}", "extract").Replace(path)
		out[rt.Pattern] = path
	}
	return out
}

// rawKey finds a catalog key shown instead of its message.
var rawKey = regexp.MustCompile(`>\s*((?:nav|cert|destroy|handover|review|training|verdict|ledger|request|dataset|kind|rstate|dstate|flash|code|verify|datareq|prune|newrequest|log)\.[a-z_.-]+)\s*<`)

// TestConsoleLifecyclePagesInBothLanguages: with every kind of state seeded
// (a certificate, a pending destruction, a hand-over, a review, training),
// every page answers each person in zh-TW and in English, with no
// message key left untranslated, and exactly the people the role matrix
// allows get it (the others a 403); no page shows a record's contents.
func TestConsoleLifecyclePagesInBothLanguages(t *testing.T) {
	cf := newConsole(t, nil)
	st := cf.lifecycle(t, true)
	paths := lifePaths(st)
	people := append(slices.Clone(testPeople), service.BootstrapAccount{Username: "sam", Roles: []accounts.Role{accounts.RoleSupervisor}})
	for _, p := range people {
		b := cf.login(t, p.Username)
		for pattern, path := range paths {
			rt := routeOf(pattern)
			for _, lang := range []string{"zh-TW", "en"} {
				sep := "?"
				if strings.Contains(path, "?") {
					sep = "&"
				}
				resp, body := cf.get(t, b, path+sep+"lang="+lang)
				allowed := rt.Action == "" || service.Permits(p.Roles, rt.Action)
				switch {
				case allowed && resp.StatusCode != http.StatusOK:
					t.Errorf("%s GET %s (%s): %s", p.Username, path, lang, resp.Status)
				case !allowed && resp.StatusCode != http.StatusForbidden:
					t.Errorf("%s GET %s (%s): %s, want 403", p.Username, path, lang, resp.Status)
				}
				if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					continue
				}
				if m := rawKey.FindStringSubmatch(body); m != nil && !audit.EventType(m[1]).Known() {
					t.Errorf("%s GET %s (%s) shows a message key: %s", p.Username, path, lang, m[1])
				}
				wantLang := map[string]string{"zh-TW": `lang="zh-Hant-TW"`, "en": `lang="en"`}[lang]
				if strings.HasPrefix(pattern, "GET /reviews/{id}/report") && resp.StatusCode == http.StatusOK {
					wantLang = map[string]string{"zh-TW": `lang="zh-TW"`, "en": `lang="en"`}[lang]
				}
				if !strings.Contains(body, wantLang) {
					t.Errorf("%s GET %s (%s): not in %s", p.Username, path, lang, lang)
				}
				for _, id := range st.NationalIDs {
					if strings.Contains(body, id) {
						t.Fatalf("%s GET %s shows a record's national ID", p.Username, path)
					}
				}
			}
		}
	}
	// The hand-over: only its receiver may accept, and the inventory then
	// shows who accepted.
	_, body := cf.get(t, cf.login(t, "officer.a"), "/handovers/"+st.Handover)
	if strings.Contains(body, `id="accept"`) || !strings.Contains(body, st.Datasets[0]) {
		t.Error("the giver must see the inventory and no accept button")
	}
	if resp := cf.post(t, cf.login(t, "officer.a"), "/handovers/"+st.Handover+"/accept", nil); resp.StatusCode == http.StatusSeeOther {
		t.Fatal("the giver accepted their own hand-over")
	}
	otto := cf.login(t, "otto")
	if _, body := cf.get(t, otto, "/handovers/"+st.Handover); !strings.Contains(body, `id="accept"`) {
		t.Fatal("the receiver must see the accept button")
	}
	if resp := cf.post(t, otto, "/handovers/"+st.Handover+"/accept", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("accept: %s", resp.Status)
	}
	_, body = cf.get(t, otto, "/handovers/"+st.Handover)
	if !strings.Contains(body, "Otto Officer (otto)") || strings.Contains(body, `id="accept"`) {
		t.Error("after acceptance the inventory names the receiver and offers no second acceptance")
	}
	// The configuration still names officer.a for the job: the page says
	// which jobs to change.
	if !strings.Contains(body, `id="handover-jobs"`) || !strings.Contains(body, cf.cfg.Jobs[0].Name) {
		t.Error("after acceptance the page must name the jobs whose officer is still the giver")
	}
}

// TestConsoleDestructionApprovalShowsAll: the approval page of a
// destruction shows, in full, each dataset's name, size, SHA-256 and
// custodian; the requester sees no approve button and a forged approval
// is refused; the run button is the requester's alone, and a sealed vault
// is said so, with no button and a refused POST; the certificate names
// the requester, both approvers and the executor.
func TestConsoleDestructionApprovalShowsAll(t *testing.T) {
	cf := newConsole(t, nil)
	st := cf.lifecycle(t, false)
	ctx := context.Background()
	ds, err := cf.as(t, "sue").Dataset(ctx, st.PendingDS)
	if err != nil {
		t.Fatal(err)
	}
	sue, off, sam := cf.login(t, "sue"), cf.login(t, "officer.a"), cf.login(t, "sam")
	_, body := cf.get(t, sue, "/requests/"+st.Pending)
	for _, want := range []string{`id="destruction-items"`, ds.Dataset.ID, ds.Dataset.RemotePath, ds.Dataset.SHA256, ">" + strconv.FormatInt(ds.Dataset.Size, 10) + "<",
		">" + ds.Dataset.Custodian + "<", `id="approve"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the approval page lacks %q", want)
		}
	}
	_, body = cf.get(t, off, "/requests/"+st.Pending)
	if strings.Contains(body, `id="approve"`) || strings.Contains(body, `id="destroy"`) {
		t.Error("the requester must see neither approve nor, before the approvals, destroy")
	}
	before := cf.ledgerSize(t)
	if resp := cf.post(t, off, "/requests/"+st.Pending+"/approve", url.Values{"reason": {"approving my own destruction"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a forged self-approval: %s", resp.Status)
	}
	if evs, _ := cf.d.Ledger.Events(before, 0); len(evs) != 1 || evs[0].Type != audit.EvAccessRefused {
		t.Fatalf("the refusal must be recorded: %+v", evs)
	}
	for _, b := range []*http.Client{sue, sam} {
		if resp := cf.post(t, b, "/requests/"+st.Pending+"/approve", url.Values{"reason": {"retention schedule checked"}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("approval: %s", resp.Status)
		}
	}
	// Sealed: said so, no button, and the POST is refused with nothing erased.
	if _, err := cf.as(t, "officer.a").Seal(ctx); err != nil {
		t.Fatal(err)
	}
	_, body = cf.get(t, off, "/requests/"+st.Pending)
	if !strings.Contains(body, `id="vault-sealed"`) || strings.Contains(body, `id="destroy"`) {
		t.Error("a sealed vault must be said, with no destroy button")
	}
	if resp := cf.post(t, off, "/requests/"+st.Pending+"/destroy", nil); resp.StatusCode == http.StatusSeeOther {
		t.Fatal("a destruction ran while sealed")
	}
	if _, err := cf.as(t, "officer.a").Unseal(ctx, []byte("a long test passphrase")); err != nil {
		t.Fatal(err)
	}
	_, body = cf.get(t, sue, "/requests/"+st.Pending)
	if strings.Contains(body, `id="destroy"`) {
		t.Error("a supervisor must not see the destroy button")
	}
	if resp := cf.post(t, sue, "/requests/"+st.Pending+"/destroy", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a supervisor's destroy POST: %s", resp.Status)
	}
	_, body = cf.get(t, off, "/requests/"+st.Pending)
	if !strings.Contains(body, `id="destroy"`) {
		t.Fatal("the requester must see the destroy button once approved and unsealed")
	}
	resp := cf.post(t, off, "/requests/"+st.Pending+"/destroy", nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/certificates/"+st.Pending) {
		t.Fatalf("run: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	_, body = cf.get(t, cf.login(t, "auditor.a"), "/certificates/"+st.Pending+"?lang=en")
	for _, want := range []string{"officer.a", "sue (supervisor)", "sam (supervisor)", ds.Dataset.SHA256, "passed"} {
		if !strings.Contains(body, want) {
			t.Errorf("the certificate lacks %q", want)
		}
	}
	if got, _ := cf.as(t, "sue").Dataset(ctx, st.PendingDS); got.Dataset.State != string(audit.StateDestroyed) {
		t.Errorf("the dataset is %s after the console's run", got.Dataset.State)
	}
}

// TestConsoleReviewAndTraining: an auditor starts a review, records a
// justified and an anomalous finding, cannot close with the investigation
// open, closes it and the review; the report is the service's HTML under a
// CSP that allows its style by hash only; a supervisor records training
// and the yearly report lists who is short. Others are refused.
func TestConsoleReviewAndTraining(t *testing.T) {
	cf := newConsole(t, nil)
	st := cf.lifecycle(t, false)
	aud := cf.login(t, "auditor.a")
	resp := cf.post(t, aud, "/reviews", url.Values{"period": {strconv.Itoa(time.Now().In(service.ReportZone).Year())}, "rate": {"100%"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/reviews/") {
		t.Fatalf("start: %s", resp.Status)
	}
	for _, who := range []string{"sue", "adam", "officer.a"} {
		if resp := cf.post(t, cf.login(t, who), "/reviews/"+st.Review+"/close", nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s closing a review: %s", who, resp.Status)
		}
	}
	id := st.Review
	rec := func(i int) string { return strconv.FormatInt(st.Sampled[i], 10) }
	if resp := cf.post(t, aud, "/reviews/"+id+"/findings", url.Values{"record": {rec(0)}, "verdict": {"justified"}, "note": {"case C-0 file checked"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("finding: %s", resp.Status)
	}
	if resp := cf.post(t, aud, "/reviews/"+id+"/findings", url.Values{"record": {rec(1)}, "verdict": {"anomaly"}, "note": {"no case file for C-1"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("anomaly: %s", resp.Status)
	}
	_, body := cf.get(t, aud, "/reviews/"+id)
	if !strings.Contains(body, `id="inv-close-`+rec(1)+`"`) || strings.Contains(body, `id="finding-`+rec(0)+`"`) {
		t.Error("the review page must offer closing the open investigation and no second finding")
	}
	if resp := cf.post(t, aud, "/reviews/"+id+"/close", nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("closing with an open investigation: %s", resp.Status)
	}
	if resp := cf.post(t, aud, "/reviews/"+id+"/investigations", url.Values{"record": {rec(1)}, "outcome": {"case file found misfiled"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("investigation: %s", resp.Status)
	}
	if resp := cf.post(t, aud, "/reviews/"+id+"/close", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("close: %s", resp.Status)
	}
	rv, err := cf.as(t, "auditor.a").ShowReview(context.Background(), id)
	if err != nil || rv.Closed == nil || rv.Closed.By != "auditor.a" {
		t.Fatalf("the review must be closed through the console: %+v %v", rv.Closed, err)
	}
	resp, body = cf.get(t, aud, "/reviews/"+id+"/report?lang=en")
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "case file found misfiled") || !strings.Contains(csp, "style-src 'sha256-") ||
		strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "script-src") || csp != web.ReportCSP([]byte(body)) {
		t.Fatalf("report: %s, CSP %q", resp.Status, csp)
	}

	// Training: a supervisor records, the report lists who is short.
	sue := cf.login(t, "sue")
	year := time.Now().In(service.ReportZone).Year()
	resp = cf.post(t, sue, "/training", url.Values{"username": {"officer.a"}, "hours": {"2"}, "date": {time.Now().In(service.ReportZone).Format(time.DateOnly)}, "course": {"records management"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("training: %s", resp.Status)
	}
	_, body = cf.get(t, sue, "/training?year="+strconv.Itoa(year))
	if strings.Contains(body, "<td>officer.a</td>") || !strings.Contains(body, "<td>sam</td>") {
		t.Error("officer.a has 3.5 hours and is not short; sam has none")
	}
	for _, who := range []string{"auditor.a", "officer.a"} {
		if resp := cf.post(t, cf.login(t, who), "/training", url.Values{"username": {"sam"}, "hours": {"3"}, "date": {"2026-01-02"}, "course": {"x course"}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s recording training: %s", who, resp.Status)
		}
	}
}

// TestConsoleConsistencyProof: the checkpoint an auditor downloaded
// earlier, given back later, yields a consistency proof to the current
// checkpoint that proof.Check verifies; a made-up checkpoint is refused.
func TestConsoleConsistencyProof(t *testing.T) {
	cf := newConsole(t, nil)
	cf.seed(t)
	aud := cf.login(t, "auditor.a")
	resp, old := cf.get(t, aud, "/ledger/checkpoint")
	if resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	cf.put(t, synth.FileSpec{Name: "HR_9.txt", Options: synth.Options{Records: 4, Seed: 9}})
	if _, err := cf.as(t, "officer.a").Run(context.Background(), "extract", nil); err != nil {
		t.Fatal(err)
	}
	resp, body := cf.get(t, aud, "/ledger/consistency?old="+url.QueryEscape(old))
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Disposition"), "consistency-") {
		t.Fatalf("consistency: %s %s", resp.Status, body)
	}
	r, err := proof.Check([]byte(body), proof.Options{})
	if err != nil {
		t.Fatalf("the downloaded proof does not verify: %v", err)
	}
	if r.Old.N >= r.New.N {
		t.Errorf("the proof must cover the growth: %d → %d", r.Old.N, r.New.N)
	}
	if resp, _ := cf.get(t, aud, "/ledger/consistency?old="+url.QueryEscape("not a checkpoint\n")); resp.StatusCode == http.StatusOK {
		t.Error("a made-up checkpoint must be refused")
	}
	if resp, _ := cf.get(t, cf.login(t, "officer.a"), "/ledger/consistency?old="+url.QueryEscape(old)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an officer's consistency proof: %s", resp.Status)
	}
}
