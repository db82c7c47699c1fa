package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"custodian/service"
)

// TestSessionCLI: `session list` shows the person's sessions with the
// current one marked; `session revoke ID` ends another one at once (its
// client is refused), exits 2 on a malformed ID and 1 (not found) on an
// unknown one.
func TestSessionCLI(t *testing.T) {
	cfgPath, _ := demoInstall(t)
	serveInProcess(t, cfgPath)
	other := demoClient(t, cfgPath, "demo.officer") // a second session, elsewhere
	demoLogin(t, cfgPath, "demo.officer")
	out, _, err := runSplit(t, "session", "list", "--config", cfgPath, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var ss []service.SessionView
	if err := json.Unmarshal([]byte(out), &ss); err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 {
		t.Fatalf("want 2 sessions, got %+v", ss)
	}
	var elsewhere string
	for _, s := range ss {
		if !s.Current {
			elsewhere = s.ID
		}
	}
	if elsewhere == "" {
		t.Fatalf("no session other than the current one: %+v", ss)
	}
	if out, err = runCLI(t, "session", "list", "--config", cfgPath); err != nil || !strings.Contains(out, elsewhere) || !strings.Contains(out, "*") {
		t.Fatalf("session list: %v\n%s", err, out)
	}
	if _, _, err := runSplit(t, "session", "revoke", "xyz", "--config", cfgPath); exitCode(err) != 2 {
		t.Fatalf("a malformed ID: exit %d (%v)", exitCode(err), err)
	}
	if _, _, err := runSplit(t, "session", "revoke", "0123456789abcdef", "--config", cfgPath); exitCode(err) != 1 {
		t.Fatalf("an unknown ID: exit %d (%v)", exitCode(err), err)
	}
	if out, _, err = runSplit(t, "session", "revoke", elsewhere, "--config", cfgPath); err != nil || !strings.Contains(out, elsewhere) {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	if _, err := other.Whoami(t.Context()); err == nil {
		t.Fatal("the revoked session still works")
	}
	if _, err := runCLI(t, "whoami", "--config", cfgPath); err != nil {
		t.Fatalf("the current session ended too: %v", err)
	}
}
