package daemon

import (
	"strings"
	"testing"
)

// TestConsoleHomeWaitingAndReviews: the home page shows each person what
// was approved for them to carry out (the receiver of an approved
// hand-over sees it; its approver and requester do not), and shows the
// auditor the open sampling review.
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
	_, body := cf.get(t, cf.login(t, "auditor.a"), "/?lang=en")
	i := strings.Index(body, `id="h-audit"`)
	if i < 0 || !strings.Contains(body[i:], `href="/reviews/`+st.Review+`"`) || !strings.Contains(body[i:], "Open sampling reviews") {
		t.Errorf("the auditor's home lacks the open review %s", st.Review)
	}
}
