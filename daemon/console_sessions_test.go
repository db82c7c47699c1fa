package daemon

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestConsoleSessions: "my account" lists the person's live sessions (the
// console's and the command line's), in both languages; ending another
// one from the page ends it at once, and ending this one is a logout.
// Another person's session cannot be ended by posting its ID.
func TestConsoleSessions(t *testing.T) {
	cf := newConsole(t, nil)
	b1 := cf.login(t, "sue")
	b2 := cf.login(t, "sue")
	resp, body := cf.get(t, b1, "/account")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("my account: %s", resp.Status)
	}
	ids := regexp.MustCompile(`/account/sessions/([0-9a-f]{16})/revoke`).FindAllStringSubmatch(body, -1)
	if len(ids) < 2 || !strings.Contains(body, "目前這一個") {
		t.Fatalf("my account lists %d sessions, want at least 2 with the current one marked:\n%s", len(ids), body)
	}
	// The session b1 does not hold is the one to end: find b2's by its page.
	_, body2 := cf.get(t, b2, "/account?lang=en")
	if !strings.Contains(body2, "Active sessions") {
		t.Fatalf("English page:\n%s", body2)
	}
	cur2 := regexp.MustCompile(`<code>([0-9a-f]{16})</code> <strong>`).FindStringSubmatch(body2)
	if cur2 == nil {
		t.Fatalf("no current session marked:\n%s", body2)
	}
	// Another person cannot end it.
	adam := cf.login(t, "adam")
	if resp := cf.post(t, adam, "/account/sessions/"+cur2[1]+"/revoke", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("adam ending sue's session: %s", resp.Status)
	}
	if resp, _ := cf.get(t, b2, "/account"); resp.StatusCode != http.StatusOK {
		t.Fatalf("sue's session ended by adam's attempt: %s", resp.Status)
	}
	// Sue ends it from her first browser.
	resp = cf.post(t, b1, "/account/sessions/"+cur2[1]+"/revoke", nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "session_ended") {
		t.Fatalf("revoke: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	if resp, _ := cf.get(t, b2, "/account"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("the ended session still works: %s", resp.Status)
	}
	// Ending the current session logs out.
	_, body = cf.get(t, b1, "/account")
	cur1 := regexp.MustCompile(`<code>([0-9a-f]{16})</code> <strong>`).FindStringSubmatch(body)
	resp = cf.post(t, b1, "/account/sessions/"+cur1[1]+"/revoke", nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("ending the current session: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	if resp, _ := cf.get(t, b1, "/account"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logged out, yet: %s", resp.Status)
	}
}
