package daemon

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestConsoleHomeWaitingAndReviews: the home page shows each person what
// was approved for them to carry out (the receiver of an approved
// hand-over sees it; its approver and requester do not), and shows the
// auditor the open sampling review; the requests page filters by kind.
func TestConsoleHomeWaitingAndReviews(t *testing.T) {
	cf := newConsole(t, nil)
	st := cf.lifecycle(t, true)
	link := `href="/requests/` + st.Handover + `"`
	for user, want := range map[string]bool{"otto": true, "sue": false, "officer.a": false} {
		_, body := cf.get(t, cf.login(t, user), "/?lang=en")
		waiting := strings.Contains(body, `id="h-waiting"`) && strings.Contains(body, link)
		if waiting != want {
			t.Errorf("%s: the approved hand-over waits on the home page = %v, want %v", user, waiting, want)
		}
	}
	// The requests page filters by kind.
	_, list := cf.get(t, cf.login(t, "sue"), "/requests?kind=handover&lang=en")
	if !strings.Contains(list, `href="/requests/`+st.Handover+`"`) || strings.Contains(list, `href="/requests/`+st.Pending+`"`) ||
		!strings.Contains(list, `<option value="handover" selected>`) {
		t.Errorf("the requests page filtered by hand-over:\n%s", list)
	}
	_, body := cf.get(t, cf.login(t, "auditor.a"), "/?lang=en")
	i := strings.Index(body, `id="h-audit"`)
	if i < 0 || !strings.Contains(body[i:], `href="/reviews/`+st.Review+`"`) || !strings.Contains(body[i:], "Open sampling reviews") {
		t.Errorf("the auditor's home lacks the open review %s", st.Review)
	}
}

// TestConsoleAccountFormComesBack: an account request the service finds
// invalid (a reason too short) comes back beside the form with the
// service's message and what was typed, ticked roles included; nothing
// is filed.
func TestConsoleAccountFormComesBack(t *testing.T) {
	cf := newConsole(t, nil)
	adam := cf.login(t, "adam")
	before := cf.ledgerSize(t)
	req, _ := http.NewRequest(http.MethodPost, cf.base+"/requests/account?lang=en", strings.NewReader(url.Values{"kind": {"account-create"},
		"username": {"quinn"}, "full_name": {"Quinn Officer"}, "employee_id": {"E-77"}, "roles": {"officer"}, "reason": {"short"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := adam.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, `id="form-error"`) || !strings.Contains(page, "reason") {
		t.Fatalf("the form must come back with the message: %s\n%s", resp.Status, page)
	}
	for _, want := range []string{`value="quinn"`, `value="Quinn Officer"`, `value="E-77"`, `value="officer" checked`, `value="account-create" selected`, ">short</textarea>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the form lacks what was typed: %s", want)
		}
	}
	if strings.Contains(page, `value="auditor" checked`) {
		t.Error("a role that was not ticked comes back ticked")
	}
	qs, err := cf.as(t, "sue").Requests(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Subject == "quinn" {
			t.Fatalf("an invalid request was filed: %+v", q)
		}
	}
	if after := cf.ledgerSize(t); after != before {
		t.Errorf("the ledger grew by %d events for an invalid form", after-before)
	}
}
