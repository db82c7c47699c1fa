package daemon

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"custodian/accounts"
	"custodian/configs"
	"custodian/internal/notifytest"
	"custodian/internal/synth"
	"custodian/service"
)

// TestMetricsOverHTTPSAndAccountNotifications: /metrics on the HTTPS
// listener serves an account with the metrics role (HTTP basic
// credentials, as Prometheus sends) and refuses an unauthenticated scrape,
// a wrong password and another role; the approval and lock gauges follow
// the requests and accounts; a filed request mails the approvers' route,
// a decision the requester's, a lock the admins'.
func TestMetricsOverHTTPSAndAccountNotifications(t *testing.T) {
	s, w := notifytest.NewSMTP(t), notifytest.NewWebhook(t)
	s.Start(t)
	f := newFixture(t, nil)
	f.cfg.Notify = notifyConfig(t, s, w)
	f.cfg.Notify.Routes = []configs.NotifyRoute{
		{Kinds: []string{"approval.waiting"}, Email: []string{"supervisors@example.org"}},
		{Kinds: []string{"approval.decided"}, Email: []string{"requesters@example.org"}},
		{Kinds: []string{"account.locked"}, Email: []string{"admins@example.org"}},
	}
	certFile, keyFile, roots := selfSignedPair(t, t.TempDir())
	addr := freePort(t)
	f.cfg.Listen = &configs.Listen{Address: addr, CertFile: certFile, KeyFile: keyFile}
	f.serve(t)
	ctx := context.Background()
	admin, sup := f.as(t, "adam"), f.as(t, "sue")

	// The monitoring account, through request → approval → execution.
	q, err := admin.FileAccountRequest(ctx, service.AccountRequest{Kind: accounts.KindAccountCreate, Username: "prometheus",
		Account: &accounts.AccountSpec{FullName: "Monitoring", EmployeeID: "SYS-1", Roles: []accounts.Role{accounts.RoleMetrics}}, Reason: "scrape the metrics"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sup.Approve(ctx, q.ID, "monitoring agreed by the unit"); err != nil {
		t.Fatal(err)
	}
	x, err := admin.ExecuteRequest(ctx, q.ID)
	if err != nil {
		t.Fatal(err)
	}
	anon := NewClient(f.cfg.SocketPath())
	if _, err := anon.Login(ctx, service.LoginRequest{Username: "prometheus", Password: x.Issued.Password, NewPassword: "Scrape-Secret-77"}); err != nil {
		t.Fatal(err)
	}
	// A request waiting: one open approval.
	if _, err := admin.FileAccountRequest(ctx, service.AccountRequest{Kind: accounts.KindAccountDisable, Username: "cora", Reason: "contract ends early"}); err != nil {
		t.Fatal(err)
	}
	// An account locked.
	for range 5 {
		anon.Login(ctx, service.LoginRequest{Username: "dora", Password: "Wrong-Password-9"})
	}

	if st, err := sup.Status(ctx); err != nil || st.Daemon == nil || st.Daemon.PendingApprovals != 1 || st.Daemon.AccountsLocked != 1 || st.Vault == nil || !st.Vault.Sealed {
		t.Errorf("status: %+v %v", st.Daemon, err)
	}

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	get := func(user, pw string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/metrics", nil)
		if user != "" {
			req.SetBasicAuth(user, pw)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("", ""); code != http.StatusUnauthorized {
		t.Errorf("unauthenticated scrape: %d", code)
	}
	if code, _ := get("prometheus", "Wrong-Password-1"); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", code)
	}
	if code, body := get("officer.a", f.pw["officer.a"]); code != http.StatusForbidden || !strings.Contains(body, "role:") {
		t.Errorf("an officer scraping: %d %s", code, body)
	}
	for range 2 { // the second scrape reuses the session
		code, body := get("prometheus", "Scrape-Secret-77")
		if code != http.StatusOK || !strings.Contains(body, "custodian_approvals_pending 1") || !strings.Contains(body, "custodian_accounts_locked 1") {
			t.Fatalf("scrape: %d\n%s", code, body)
		}
	}
	evs := eventsVia(t, f.as(t, "auditor.a"))
	if n := countEvents(evs, "login.succeeded"); n < 1 {
		t.Fatal("the scrape's login must be on the ledger")
	}
	logins := 0
	for _, ev := range evs {
		if ev.Type == "login.succeeded" && ev.Details["username"] == "prometheus" {
			logins++
		}
	}
	if logins != 2 { // the first login (password change) and one for the scrapes
		t.Errorf("%d logins of the metrics account, want 2: a scraper logs in once per session", logins)
	}
	waitFor(t, "the three mails", func() bool { return len(s.Mails()) >= 4 })
	to := map[string]int{}
	for _, m := range s.Mails() {
		to[m.To]++
		if strings.Contains(m.Body, "Scrape-Secret") || strings.Contains(m.Body, "Wrong-Password") {
			t.Fatal("a password in a mail")
		}
	}
	if to["supervisors@example.org"] != 2 || to["requesters@example.org"] != 1 || to["admins@example.org"] != 1 {
		t.Errorf("mails by recipient: %v", to)
	}
}

// TestDailyNotices: once a day the daemon mails that datasets are past
// their retention (dataset IDs, no file names) and who is under the
// yearly training hours.
func TestDailyNotices(t *testing.T) {
	s, w := notifytest.NewSMTP(t), notifytest.NewWebhook(t)
	s.Start(t)
	f := newFixture(t, nil)
	f.cfg.Notify = notifyConfig(t, s, w)
	f.cfg.Notify.Routes = []configs.NotifyRoute{
		{Kinds: []string{"retention.due"}, Email: []string{"officers@example.org"}},
		{Kinds: []string{"training.low"}, Email: []string{"supervisors@example.org"}},
	}
	j, _ := f.cfg.Job("extract")
	j.Retention = configs.Retention{Days: 1}
	f.put(t, synth.FileSpec{Name: "HR_1.txt", Options: synth.Options{Records: 5, Seed: 1}})
	cl, _, stop := f.serve(t)
	res, err := cl.Run(context.Background(), "extract", nil)
	if err != nil || res.Failed() {
		t.Fatalf("%+v %v", res, err)
	}
	id := res.Files[0].DatasetID
	stop()
	// Three days later.
	_, _, _ = f.serveWith(t, func(d *Daemon) {
		d.Service.Now = func() time.Time { return time.Now().Add(72 * time.Hour) }
	})
	waitFor(t, "the two notices", func() bool { return len(s.Mails()) >= 2 })
	var retention, training string
	for _, m := range s.Mails() {
		switch m.To {
		case "officers@example.org":
			retention = m.Body
		case "supervisors@example.org":
			training = m.Body
		}
	}
	if !strings.Contains(retention, id) || strings.Contains(retention, "HR_1.txt") {
		t.Errorf("retention notice: %q", retention)
	}
	if !strings.Contains(training, "officer.a") || strings.Contains(training, "auditor.a") {
		t.Errorf("training notice: %q", training)
	}
}
